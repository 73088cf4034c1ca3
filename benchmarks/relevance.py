"""Benchmark: LRP per composite against one plain gradient computation on the same batch (goal: ≤ 2×),
and, where zennit / captum are installed (pip install zennit captum), against their LRP on the same model.

Run from the repository root:  python3 benchmarks/relevance.py [--repeats 7]
Prints median times and ratios measured in this run; no absolute numbers are asserted. Times are CPU
time of this process (time.process_time) with one torch thread by default, so that other work on a shared
machine disturbs the ratios less; pass --wall for wall-clock time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from nnreport.relevance import explain, prepare  # noqa: E402
from nnreport.zoo import DigitsCNN  # noqa: E402

from models import ResNetLike, TinyCNN, TinyViT  # noqa: E402

COMPOSITES = ["epsilon_plus_flat", "epsilon_gamma_box", "epsilon_alpha2_beta1"]


CLOCK = time.process_time


def median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = CLOCK()
        fn()
        times.append(CLOCK() - start)
    return statistics.median(times)


def gradient_once(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Callable[[], object]:
    """The baseline: one forward and backward pass for the input gradient of the target scores."""
    def run() -> object:
        xin = x.detach().clone().requires_grad_(True)
        out = model(xin)
        return torch.autograd.grad(out.gather(1, target[:, None]).sum(), xin)[0]
    return run


def ours(canon: object, x: torch.Tensor, target: torch.Tensor, composite: str) -> Callable[[], object]:
    low, high = float(x.min()), float(x.max())
    return lambda: explain(canon, x, target, "lrp", composite=composite, low=low, high=high).relevance


def _stub_torchvision() -> None:
    """zennit imports torchvision's ResNet blocks at import time only for its torchvision canonizers."""
    if "torchvision" in sys.modules:
        return
    try:
        import torchvision  # noqa: F401
        return
    except ImportError:
        pass
    tv, tvm, tvr = (types.ModuleType(n) for n in ("torchvision", "torchvision.models", "torchvision.models.resnet"))
    tvr.BasicBlock = type("BasicBlock", (), {})  # type: ignore[attr-defined]
    tvr.Bottleneck = type("Bottleneck", (), {})  # type: ignore[attr-defined]
    tv.models, tvm.resnet = tvm, tvr  # type: ignore[attr-defined]
    sys.modules.update({"torchvision": tv, "torchvision.models": tvm, "torchvision.models.resnet": tvr})


def zennit_fn(model: nn.Module, x: torch.Tensor, target: torch.Tensor, composite: str) -> Callable[[], object] | str:
    try:
        _stub_torchvision()
        from zennit.attribution import Gradient
        from zennit.canonizers import SequentialMergeBatchNorm
        from zennit.composites import EpsilonAlpha2Beta1, EpsilonGammaBox, EpsilonPlusFlat
    except Exception as exc:  # noqa: BLE001
        return f"zennit not available ({type(exc).__name__}: {exc})"
    canonizers = [SequentialMergeBatchNorm()]
    low, high = float(x.min()), float(x.max())
    comp = {"epsilon_plus_flat": lambda: EpsilonPlusFlat(canonizers=canonizers),
            "epsilon_gamma_box": lambda: EpsilonGammaBox(low=low, high=high, canonizers=canonizers),
            "epsilon_alpha2_beta1": lambda: EpsilonAlpha2Beta1(canonizers=canonizers)}[composite]()
    n_classes = model(x[:1]).shape[1]
    onehot = torch.eye(n_classes)[target]

    def run() -> object:
        with Gradient(model=model, composite=comp) as attributor:
            _out, rel = attributor(x.detach().clone().requires_grad_(True), onehot)
        return rel
    return run


def captum_fn(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Callable[[], object] | str:
    try:
        from captum.attr import LRP
    except Exception as exc:  # noqa: BLE001
        return f"captum not available ({type(exc).__name__}: {exc})"
    lrp = LRP(model)

    def run() -> object:
        return lrp.attribute(x.detach().clone().requires_grad_(True), target=target)
    return run


def bench(name: str, model: nn.Module, x: torch.Tensor, repeats: int, peers: bool) -> None:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        target = model(x).argmax(1)
    start = time.perf_counter()
    canon = prepare(model, x)
    prep = time.perf_counter() - start
    base = median_time(gradient_once(model, x, target), repeats)
    print(f"\n{name}: batch {tuple(x.shape)}; one gradient {base * 1e3:.1f} ms; "
          f"canonicalisation (once per model) {prep * 1e3:.1f} ms")
    print(f"  {'composite':24s} {'ours ms':>9s} {'÷ gradient':>11s} {'goal ≤2×':>9s}"
          + (f" {'zennit ms':>10s} {'ours÷zennit':>12s}" if peers else ""))
    for comp in COMPOSITES:
        t = median_time(ours(canon, x, target, comp), repeats)
        line = f"  {comp:24s} {t * 1e3:9.1f} {t / base:10.2f}× {'ok' if t / base <= 2 else 'OVER':>9s}"
        if peers:
            z = zennit_fn(model, x, target, comp)
            if isinstance(z, str):
                line += f"  {z}"
            else:
                try:
                    tz = median_time(z, repeats)
                    line += f" {tz * 1e3:10.1f} {t / tz:11.2f}×"
                except Exception as exc:  # noqa: BLE001
                    line += f"  zennit failed: {type(exc).__name__}: {exc}"
        print(line)
    if peers:
        c = captum_fn(model, x, target)
        if isinstance(c, str):
            print(f"  captum LRP (its default ε rules): {c}")
        else:
            try:
                tc = median_time(c, repeats)
                rel = c().detach()
                ours_rel = explain(canon, x, target, "lrp", composite="epsilon_plus").relevance
                logit = model(x).gather(1, target[:, None]).squeeze(1)
                print(f"  captum LRP (default rules) {tc * 1e3:.1f} ms (ours epsilon_plus ÷ captum: "
                      f"{median_time(ours(canon, x, target, 'epsilon_plus'), repeats) / tc:.2f}×); "
                      f"relevance sum / logit: captum {float((rel.flatten(1).sum(1) / logit).abs().max()):.3g}, "
                      f"ours {float((ours_rel.flatten(1).sum(1) / logit).abs().max()):.3g}")
            except Exception as exc:  # noqa: BLE001
                print(f"  captum LRP failed on this model: {type(exc).__name__}: {str(exc)[:120]}")


VIT_SETTINGS = [("epsilon", "attnlrp"), ("epsilon", "cp"), ("epsilon_box", "attnlrp"), ("epsilon_gamma_box", "cp")]


def bench_vit(model: nn.Module, x: torch.Tensor, repeats: int) -> None:
    """The ViT row: LRP with the transformer rules (attention written out) against one plain gradient."""
    import resource

    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        target = model(x).argmax(1)
    canon = prepare(model, x)
    base = median_time(gradient_once(model, x, target), repeats)
    print(f"\nViT (patch conv, nn.TransformerEncoderLayer ×{len(model.blocks)}, LayerNorm, GELU): batch "
          f"{tuple(x.shape)}; one gradient {base * 1e3:.1f} ms")
    print(f"  {'composite / attention':30s} {'ours ms':>9s} {'÷ gradient':>11s} {'goal ≤2×':>9s}")
    low, high = float(x.min()), float(x.max())
    for comp, attention in VIT_SETTINGS:
        t = median_time(lambda c=comp, a=attention: explain(canon, x, target, "lrp", composite=c, attention=a,
                                                            low=low, high=high).relevance, repeats)
        print(f"  {comp + ' / ' + attention:30s} {t * 1e3:9.1f} {t / base:10.2f}× {'ok' if t / base <= 2 else 'OVER':>9s}")
    print(f"  peak resident memory of this process so far: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--no-peers", action="store_true", help="skip zennit and captum")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--wall", action="store_true", help="wall-clock instead of process CPU time")
    ap.add_argument("--only-vit", action="store_true", help="only the ViT row")
    args = ap.parse_args()
    global CLOCK
    CLOCK = time.perf_counter if args.wall else time.process_time
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"{'wall-clock' if args.wall else 'process CPU'} time, median of {args.repeats}")
    torch.manual_seed(0)
    bench_vit(TinyViT(size=32, dim=64, depth=4, heads=4, classes=10), torch.randn(16, 3, 32, 32), args.repeats)
    if args.only_vit:
        return
    bench("digits CNN (demo: residual, BatchNorm)", DigitsCNN(), torch.randn(64, 1, 16, 16), args.repeats, not args.no_peers)
    bench("TinyCNN (conv-relu-maxpool, no BN)", TinyCNN(), torch.randn(64, 1, 16, 16), args.repeats, not args.no_peers)
    torch.manual_seed(0)
    bench("ResNet-18 layout (BasicBlocks, BatchNorm)", ResNetLike((2, 2, 2, 2), 64), torch.randn(8, 3, 32, 32),
          args.repeats, not args.no_peers)


if __name__ == "__main__":
    main()
