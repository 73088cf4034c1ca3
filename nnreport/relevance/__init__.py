"""Relevance heatmaps: `attribute(model, inputs, target, method="lrp", **options)`.

Methods (`method=`) and their options:

- ``gradient``: ∂y/∂x (signed). ``saliency``: |∂y/∂x|. ``sensitivity``: (∂y/∂x)² (Simonyan; Samek's
  sensitivity analysis).
- ``deconvnet``: ReLU backward passes positive gradients only (Zeiler & Fergus).
- ``guided_backprop``: ReLU backward keeps positive gradients at active units (Springenberg et al.).
- ``input_x_gradient``: x·∂y/∂x.
- ``integrated_gradients``: ``steps=32``, ``baseline=0.0`` (Sundararajan et al.).
- ``smoothgrad``: mean |gradient| under noise; ``samples=16``, ``noise=0.15`` (× value range), ``seed=0``.
- ``gradcam``: at the last 2-D convolution, upsampled to the input (Selvaraju et al.); image inputs only.
- ``occlusion``: score drop per occluded patch; ``patch=4``, ``stride=2``, ``baseline=0.0``.
- ``lrp``: ``composite`` in epsilon_plus_flat (default), epsilon_gamma_box, epsilon_alpha2_beta1,
  epsilon_plus; or ``rule`` = one of zero, epsilon, gamma, alpha2_beta1, alpha1_beta0, zplus, flat,
  wsquare, zbox on every layer; ``epsilon=1e-6``, ``gamma=0.25``, ``low``/``high`` (z^B bounds; default:
  the batch's min and max); ``attention`` = attnlrp (default: relevance through softmax into queries and
  keys, AttnLRP) or cp (queries and keys held constant, CP-LRP). Transformer operations get their own
  rules under every composite: LayerNorm/RMSNorm identity (std constant), products of two activations
  ε with a uniform split, softmax AttnLRP; nn.MultiheadAttention and scaled_dot_product_attention are
  written out. ``composite="epsilon"``: ε on every linear layer (transformers); ``epsilon_box``: plus z^B
  on the input layer (ViT patch embeddings).
- Token ids (integer inputs): ``lrp``, ``input_x_gradient`` and ``integrated_gradients`` (path in embedding
  space from the zero embedding) attribute at the embedding output and sum
  over the embedding dimension (relevance shaped like the ids).

`target`: a class index, one index per sample, or None for the predicted class. The model is never
changed: every method runs on a private canonical copy (BatchNorm folded into the preceding layer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

__all__ = ["attribute", "explain", "prepare"]


def prepare(model: nn.Module, example: torch.Tensor, device: str | None = None) -> Any:
    """The canonical private copy of `model` that the methods run on (reuse it across calls), on `device`
    (None: where the model is)."""
    from nnreport.device import model_device, same_device
    from nnreport.relevance.lrp.canonizers import canonicalize

    if device is not None and not same_device(model_device(model), device):
        import copy

        model = copy.deepcopy(model).to(device)  # moved once; the caller's model stays where it is
    return canonicalize(model, (example[:1].to(device or model_device(model)),))


def explain(model: nn.Module | Any, inputs: Any, target: Any = None, method: str = "lrp", *,
            device: str | None = None, **options: Any) -> Any:
    """Like `attribute`, but returns the full Explanation (relevance tensor, scores, LRP audit and notes)."""
    import numpy as np
    import torch

    from nnreport.device import model_device, resolve_device
    from nnreport.relevance.lrp.canonizers import Canonical
    from nnreport.relevance.methods import explain as run

    x = torch.as_tensor(np.asarray(inputs) if not isinstance(inputs, torch.Tensor) else inputs).detach()
    if not x.is_floating_point() and x.dtype not in (torch.int64, torch.int32):
        raise TypeError("attribution needs floating-point inputs or integer token ids")
    if isinstance(model, Canonical):
        canon = model
        x = x.to(model_device(canon.model))
    else:
        # The canonical copy is private, so it can be moved without touching the caller's model.
        x = x.to(resolve_device(device) if device is not None else model_device(model))
        canon = prepare(model, x, device=str(x.device))
    return run(canon, x, target, method, **options)


def attribute(model: nn.Module, inputs: Any, target: Any = None, method: str = "lrp", *, device: str | None = None,
              **options: Any) -> np.ndarray:
    """Relevance of each input element for `target`, as a numpy array shaped like `inputs`. `device`:
    auto, cpu, cuda, cuda:N or mps (default: where the model is)."""
    return explain(model, inputs, target, method, device=device, **options).relevance.detach().cpu().numpy()
