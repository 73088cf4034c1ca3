"""Token-id inputs on the relevance page: words to show, and what a deleted token is replaced with."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

# A deleted token becomes this id unless the dataset names its own (`pad_id`): id 0 is padding in most vocabularies.
PAD_ID = 0


def is_tokens(x: torch.Tensor) -> bool:
    """Integer (N, T) inputs: token ids."""
    return not x.is_floating_point() and x.dim() == 2


def vocabulary(data: Any) -> tuple[str, ...] | None:
    """The dataset's vocabulary (id -> word), when it has one."""
    vocab = getattr(data, "vocab", None) if data is not None else None
    return None if vocab is None else tuple(str(w) for w in vocab)


def words(ids: np.ndarray, vocab: tuple[str, ...] | None) -> tuple[tuple[str, ...], ...]:
    """Each sample's tokens as words (ids where no vocabulary names them)."""
    def word(i: int) -> str:
        return vocab[i] if vocab is not None and 0 <= i < len(vocab) else str(i)

    return tuple(tuple(word(int(i)) for i in row) for row in np.asarray(ids))


def pad_id(data: Any) -> int:
    """The id a deleted token is replaced with."""
    return int(getattr(data, "pad_id", PAD_ID) or PAD_ID) if data is not None else PAD_ID
