"""Built-in data: every set loads offline, deterministically, with the documented shapes."""

from __future__ import annotations

import numpy as np
import pytest

from nnreport.datasets import builtin_names, load_builtin, make_shapes


@pytest.mark.parametrize("name", builtin_names())
def test_builtin_loads_and_is_deterministic(name: str) -> None:
    a = load_builtin(name, 0)
    load_builtin.cache_clear()
    b = load_builtin(name, 0)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert a.has_labels and a.num_classes == len(a.class_names)
    assert a.x_train.dtype == np.float32 and np.isfinite(a.x_train).all()
    assert set(np.unique(a.y_test)) <= set(range(a.num_classes))
    assert a.description


def test_kinds_and_shapes() -> None:
    assert load_builtin("digits").input_shape == (1, 16, 16)
    assert load_builtin("shapes").input_shape == (3, 32, 32)
    assert all(load_builtin(n).kind == "points" and load_builtin(n).input_shape == (2,)
               for n in ("moons", "circles", "xor", "spiral", "gauss"))
    assert load_builtin("iris").input_shape == (4,) and load_builtin("cars").kind == "tabular"


def test_digits_are_normalised_and_displayable() -> None:
    d = load_builtin("digits")
    assert abs(float(d.x_train.mean())) < 0.05 and abs(float(d.x_train.std()) - 1) < 0.05
    shown = d.to_display(d.x_test[:5])
    assert shown.min() >= 0 and shown.max() <= 1


def test_shapes_masks_cover_the_object() -> None:
    images, labels, masks = make_shapes(40, seed=3)
    assert images.shape == (40, 3, 32, 32) and masks.shape == (40, 32, 32)
    for img, mask in zip(images, masks, strict=True):
        assert 15 < mask.sum() < 32 * 32 * 0.6
        inside = img[:, mask]
        # The object is one flat colour; the textured background is not.
        assert inside.std(axis=1).max() < 1e-5 and img[:, ~mask].std(axis=1).max() > 0.02
    assert set(labels) == {0, 1, 2, 3}
    assert load_builtin("shapes").masks_test.shape == (500, 32, 32)
