"""The model card's facts (parameter counts and sizes, input and output specs, the data), measured once
on the resolved subject."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nnreport.checks import class_path, nonfinite_note
from nnreport.datasets import Dataset
from nnreport.inspection import ModelInfo, TensorSpec
from nnreport.subject import Subject

if TYPE_CHECKING:
    import torch


def describe_model(subject: Subject, inputs: tuple[torch.Tensor, ...], data: Dataset | None, model_spec: str) -> ModelInfo:
    """The model card's facts: parameter counts and sizes, input and output specs, the data."""
    import torch

    from nnreport import scoped

    model = subject.model
    params = list(model.parameters())
    with scoped.eval_mode(model), torch.no_grad():
        out = model(*inputs)
    return ModelInfo(
        name=subject.name or type(model).__name__,
        class_name=class_path(type(model)),
        num_params=sum(p.numel() for p in params),
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        param_bytes=sum(p.numel() * p.element_size() for p in params),
        buffer_bytes=sum(b.numel() * b.element_size() for b in model.buffers()),
        inputs=tuple(TensorSpec(f"input {i}", tuple(t.shape), str(t.dtype).replace("torch.", "")) for i, t in enumerate(inputs)),
        outputs=tuple(_output_specs(out, "output")),
        model_spec=model_spec,
        data_name=data.name if data else None,
        data_description=data.description if data else "",
        data_kind=data.kind if data else None,
        num_train=len(data.x_train) if data else 0,
        num_test=len(data.x_test) if data else 0,
        class_names=_class_names(subject, data),
        nonfinite=nonfinite_note(inputs, out, data),
        data_notes=data.card_notes() if data else (),
    )


def _output_specs(out: Any, name: str) -> list[TensorSpec]:
    import torch

    if isinstance(out, torch.Tensor):
        return [TensorSpec(name, tuple(out.shape), str(out.dtype).replace("torch.", ""))]
    if isinstance(out, dict):
        return [s for k, v in out.items() for s in _output_specs(v, f"{name}[{k!r}]")]
    if isinstance(out, (tuple, list)):
        return [s for i, v in enumerate(out) for s in _output_specs(v, f"{name}[{i}]")]
    return []


def _class_names(subject: Subject, data: Dataset | None) -> tuple[str, ...] | None:
    if subject.class_names is not None:
        return tuple(str(c) for c in subject.class_names)
    return data.class_names if data is not None else None
