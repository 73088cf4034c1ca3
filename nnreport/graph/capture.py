"""Capture the dataflow graph: torch.export (non-strict) first, an eager op recorder as fallback.

Both produce the same raw records (op calls with module-call chains, tensor edges and folded
parameters), which `nnreport.graph.transform.build_graph` turns into a `Graph`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import operator
import os
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils import _pytree as pytree

from nnreport import scoped
from nnreport.graph.ir import NodeKind

Call = tuple[str, str, str]  # (group id, module path, module type)


@dataclass
class RawOp:
    id: str
    op: str
    kind: NodeKind  # "op", "input", "output"
    chain: tuple[Call, ...]  # module calls from the outermost to the innermost, the model excluded
    inputs: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)  # (producer id, shape)
    shapes: tuple[tuple[int, ...], ...] = ()
    dtypes: tuple[str, ...] = ()
    params: dict[str, tuple[int, ...]] = field(default_factory=dict)  # folded parameter name -> shape
    source: str = ""
    label: str = ""


@dataclass
class RawGraph:
    ops: list[RawOp]
    capture: str
    note: str
    batch: int
    param_sizes: dict[str, int]


# "auto" skips torch.export for models with more submodules than this: export's tracing costs grow with
# the model far faster than the eager recorder's. Measured on a 720-block GPT-style stack (6.5k modules,
# 9.4k ops, loaded 2-core machine): torch.export 40 s of CPU, the eager recorder 2.6 s, same graph.
EXPORT_MAX_MODULES = 2000


def capture(model: nn.Module, inputs: tuple[torch.Tensor, ...], method: str = "auto") -> RawGraph:
    """Capture with torch.export, or with the eager recorder when export fails (or when asked, or
    when "auto" meets a model too large for export to be quick)."""
    inputs = tuple(t[:1] if isinstance(t, torch.Tensor) and t.dim() > 0 else t for t in inputs)
    note = ""
    modules = sum(1 for _ in model.modules())
    if method == "auto" and modules > EXPORT_MAX_MODULES:
        method = "eager"
        note = (f"torch.export was skipped for this large model ({modules} modules; it takes about 15 times "
                "longer than the eager recorder at this size), so the eager recorder was used.")
    if method in ("auto", "export"):
        try:
            with _quiet(), scoped.untouched(model), scoped.eval_mode(model):
                return _from_export(model, inputs)
        except Exception as exc:  # export refuses many models; the recorder takes them all
            if method == "export":
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            note = f"torch.export failed ({type(exc).__name__}: {first[:200]}), so the eager recorder was used."
    with _quiet(), scoped.untouched(model), scoped.eval_mode(model), torch.no_grad():
        graph = _from_eager(model, inputs)
    graph.note = note or "captured by the eager recorder (module hooks and a TorchFunctionMode)."
    return graph


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Export logs and warns a lot; an analysis must not print."""
    logger = logging.getLogger("torch")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _tensor_meta(values: list[Any]) -> tuple[tuple[tuple[int, ...], ...], tuple[str, ...]]:
    ts = [v for v in values if isinstance(v, torch.Tensor)]
    return tuple(tuple(int(d) for d in t.shape) for t in ts), tuple(str(t.dtype).replace("torch.", "") for t in ts)


def _op_name(target: Any) -> str:
    if target is operator.getitem:
        return "getitem"
    schema = getattr(target, "_schema", None)
    name = schema.name.split("::")[-1] if schema is not None else getattr(target, "__name__", str(target))
    name = name.strip("_") if name.startswith("__") else name
    return name[:-1] if name.endswith("_") and not name.endswith("__") else name


def _user_frame(stack: str) -> str:
    """The innermost frame outside torch of a stack trace, as 'file.py:line in func'."""
    frames = [ln.strip() for ln in stack.splitlines() if ln.strip().startswith("File ")]
    skip = (os.path.dirname(torch.__file__), os.path.dirname(__file__), contextlib.__file__)
    for line in reversed(frames):
        try:
            path = line.split('"')[1]
        except IndexError:
            continue
        if not path.startswith(skip):
            rest = line.split('"', 2)[2].strip(", ")
            return f"{os.path.basename(path)}:{rest.replace('line ', '').replace(', in ', ' in ')}"
    return ""


def _output_names(out: Any) -> list[str]:
    leaves, _ = pytree.tree_flatten_with_path(out)
    if len(leaves) == 1 and not leaves[0][0]:
        return ["output"]
    return ["output" + pytree.keystr(path) for path, _ in leaves]


def _from_export(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> RawGraph:
    ep = torch.export.export(model, inputs, strict=False)
    sig = ep.graph_signature
    folded = {**sig.inputs_to_parameters, **sig.inputs_to_buffers, **sig.inputs_to_lifted_tensor_constants}
    user_inputs = list(sig.user_inputs)
    ops: list[RawOp] = []
    ids: dict[str, str] = {}
    shapes: dict[str, list[tuple[int, ...]]] = {}
    sizes = {name: p.numel() for name, p in model.named_parameters()}
    for node in ep.graph.nodes:
        val = node.meta.get("val")
        vals = list(val) if isinstance(val, (tuple, list)) else [val]
        shp, dts = _tensor_meta(vals)
        if node.op == "placeholder":
            if node.name in user_inputs:
                k = user_inputs.index(node.name)
                ids[node.name] = f"n{len(ops)}"
                shapes[node.name] = list(shp)
                ops.append(RawOp(ids[node.name], "input", "input", (), shapes=shp, dtypes=dts,
                                 label="input" if len(user_inputs) == 1 else f"input {k}"))
            else:
                shapes[node.name] = list(shp)
            continue
        if node.op == "output":
            names = _output_names(pytree.tree_unflatten(list(range(len(node.args[0]))), ep.call_spec.out_spec))
            for k, arg in enumerate(node.args[0]):
                if isinstance(arg, torch.fx.Node) and arg.name in ids:
                    shp1 = tuple(shapes[arg.name][:1])
                    ops.append(RawOp(f"n{len(ops)}", "output", "output", (), [(ids[arg.name], shp1[0] if shp1 else ())],
                                     shapes=shp1, label=names[k] if k < len(names) else f"output {k}"))
            continue
        if node.op != "call_function":
            continue
        op = RawOp(f"n{len(ops)}", _op_name(node.target), "op", _export_chain(node),
                   shapes=shp, dtypes=dts, source=_user_frame(node.meta.get("stack_trace") or ""))
        index = node.args[1] if node.target is operator.getitem and len(node.args) > 1 else 0
        for arg in node.all_input_nodes:
            if arg.name in folded:
                op.params[folded[arg.name]] = tuple(shapes.get(arg.name, [()])[0])
            elif arg.name in ids:
                produced = shapes.get(arg.name) or [()]
                pick = index if (isinstance(index, int) and node.target is operator.getitem and index < len(produced)) else 0
                op.inputs.append((ids[arg.name], produced[pick]))
        ids[node.name] = op.id
        shapes[node.name] = list(shp)
        ops.append(op)
    batch = int(inputs[0].shape[0]) if inputs and isinstance(inputs[0], torch.Tensor) and inputs[0].dim() else 1
    return RawGraph(ops, "export", "captured by torch.export (non-strict).", batch, sizes)


def _export_chain(node: torch.fx.Node) -> tuple[Call, ...]:
    stack = node.meta.get("nn_module_stack") or {}
    chain = []
    for key, (path, kind) in stack.items():
        if not path:
            continue
        call = key.split("@", 1)
        gid = path + (f"@{call[1]}" if len(call) > 1 else "")
        type_name = kind.rsplit(".", 1)[-1] if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
        chain.append((gid, path, type_name))
    return tuple(chain)


class _Recorder(TorchFunctionMode):
    """Records every torch function call; tensors link ops by identity (kept alive while recording)."""

    def __init__(self, params: dict[int, str], ops: list[RawOp], stack: list[Call]) -> None:
        super().__init__()
        self.params = params
        self.ops = ops
        self.stack = stack
        self.produced: dict[int, tuple[str, torch.Tensor]] = {}

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        outs = [t for t in pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]
        if not outs:
            return out  # size(), dim(), shape: plumbing with no tensor to link
        name = getattr(func, "__name__", "op")
        if name == "__get__":
            name = "getattr"
        chain = tuple(c for c in self.stack if c[0])
        op = RawOp(f"n{len(self.ops)}", _op_name(func) if name != "getattr" else name, "op", chain)
        op.shapes, op.dtypes = _tensor_meta(outs)
        op.source = _user_frame("".join(traceback.format_stack(limit=12)))
        for t in pytree.tree_leaves((args, kwargs)):
            if not isinstance(t, torch.Tensor):
                continue
            if id(t) in self.params:
                op.params[self.params[id(t)]] = tuple(t.shape)
            elif id(t) in self.produced:
                op.inputs.append((self.produced[id(t)][0], tuple(t.shape)))
        for t in outs:
            self.produced[id(t)] = (op.id, t)
        self.ops.append(op)
        return out


def _from_eager(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> RawGraph:
    params = {id(t): name for name, t in model.named_parameters()}
    params.update({id(t): name for name, t in model.named_buffers() if t is not None})
    paths = {id(m): name for name, m in model.named_modules(remove_duplicate=False)}
    ops: list[RawOp] = []
    stack: list[Call] = []
    calls: dict[str, int] = {}

    def pre(module: nn.Module, args: Any) -> None:
        path = paths.get(id(module), "")
        if module is model or not path:
            stack.append(("", "", ""))
            return
        k = calls.get(path, 0)
        calls[path] = k + 1
        stack.append((path + (f"@{k}" if k else ""), path, type(module).__name__))

    def post(module: nn.Module, args: Any, output: Any) -> None:
        stack.pop()

    recorder = _Recorder(params, ops, stack)
    for k, t in enumerate(inputs):
        op = RawOp(f"n{len(ops)}", "input", "input", (), label="input" if len(inputs) == 1 else f"input {k}")
        op.shapes, op.dtypes = _tensor_meta([t])
        recorder.produced[id(t)] = (op.id, t)
        ops.append(op)
    with scoped.hooks() as h:
        for m in model.modules():
            h.forward_pre(m, pre)
            h.forward(m, post)
        with recorder:
            out = model(*inputs)
    leaves = pytree.tree_leaves(out)
    for name, t in zip(_output_names(out), leaves, strict=False):
        if isinstance(t, torch.Tensor) and id(t) in recorder.produced:
            op = RawOp(f"n{len(ops)}", "output", "output", (), [(recorder.produced[id(t)][0], tuple(t.shape))], label=name)
            op.shapes, op.dtypes = _tensor_meta([t])
            ops.append(op)
    sizes = {name: p.numel() for name, p in model.named_parameters()}
    return RawGraph(ops, "eager", "", int(inputs[0].shape[0]) if inputs and inputs[0].dim() else 1, sizes)
