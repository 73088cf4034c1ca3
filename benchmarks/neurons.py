"""Neurons benchmark: (1) activation maximisation cost per unit, a layer as one batch vs one unit at a time;
(2) the streaming top-k pass (hooks, scores, top-k merge, statistics) vs a plain forward pass over the same data.

Run from the repository root: `python3 benchmarks/neurons.py`. Prints ratios against baselines measured in
the same run (best of several repeats); the goal for (2) is at most 1.2x.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from nnreport import scoped  # noqa: E402
from nnreport.datasets import load_builtin  # noqa: E402
from nnreport.neurons.activations import _batches  # noqa: E402
from nnreport.neurons.layers import module_map, representative  # noqa: E402
from nnreport.neurons.maximise import Settings, maximise  # noqa: E402
from nnreport.neurons.param import InputSpace  # noqa: E402
from nnreport.neurons.regularisers import HYPER_SETS  # noqa: E402
from nnreport.neurons.topk import stream  # noqa: E402
from nnreport.zoo import digits_cnn  # noqa: E402


def best(fn: Callable[[], object], repeats: int = 5) -> float:
    """Least CPU time of the process over `repeats` runs: with one thread it is the work done, and unlike
    wall time it does not grow when other jobs share the machine."""
    times = []
    for _ in range(repeats):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return min(times)


def batched_vs_single(model: torch.nn.Module, space: InputSpace, steps: int) -> None:
    print(f"(1) activation maximisation, {steps} steps, Yosinski set 1 (digits CNN, 1x16x16)")
    print(f"    {'layer':<12}{'units':>6}{'batched ms/unit':>18}{'one-by-one ms/unit':>21}{'speed-up':>10}")
    modules = dict(model.named_modules())
    for path, n in [("stem", 16), ("stage2", 32), ("classifier", 10)]:
        units = list(range(n))
        settings = Settings(hyper=HYPER_SETS["yosinski1"], steps=steps)

        def run(batch: int | None, path: str = path, units: list[int] = units, settings: Settings = settings) -> None:
            maximise(model, path, modules[path], units, (1, 16, 16), space, settings, torch.Generator().manual_seed(0),
                     target_batch=batch)

        together = best(lambda: run(None), 3) / n
        alone = best(lambda: run(1), 2) / n
        print(f"    {path:<12}{n:>6}{1000 * together:>18.2f}{1000 * alone:>21.2f}{alone / together:>9.1f}x")


def topk_vs_forward(model: torch.nn.Module, x: np.ndarray, batch: int = 256) -> None:
    layers = representative(model, (torch.from_numpy(x[:1]),), budget=5)
    modules = module_map(model, [c.path for c in layers])
    units = {c.path: c.shape[0] for c in layers}

    def plain() -> None:
        with torch.no_grad():
            for s in range(0, len(x), batch):
                model(torch.from_numpy(np.ascontiguousarray(x[s:s + batch])))

    def topk() -> None:
        with torch.no_grad():
            stream(_batches(model, modules, x, batch), units, k=9)

    with scoped.eval_mode(model):
        plain()
        topk()  # warm up
        # Alternated, so each pair sees the same load; the median ratio of the pairs is the reported figure.
        pairs = [(best(plain, 1), best(topk, 1)) for _ in range(15)]
        t_plain, t_topk = min(p for p, _ in pairs), min(t for _, t in pairs)
        ratio = float(np.median([t / p for p, t in pairs]))
    print(f"(2) top-k pass over {len(x)} inputs, {len(layers)} layers ({', '.join(units)}), k=9, batch {batch}")
    print(f"    plain forward {1000 * t_plain:.1f} ms · top-k pass {1000 * t_topk:.1f} ms · "
          f"(best of 15 each: ratio {t_topk / t_plain:.2f}x) · median ratio of back-to-back pairs {ratio:.2f}x "
          "(goal <= 1.2x)")


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)  # as the analyses run small models (see nnreport.neurons.layers.small_work_threads)
    data = load_builtin("digits")
    model = digits_cnn().eval()
    lo, hi = data.value_range()
    space = InputSpace(lo, hi, data.mean, data.std)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    batched_vs_single(model, space, steps=32)
    topk_vs_forward(model, data.x_train)
    big = np.concatenate([data.x_train, data.x_test] * 3)
    topk_vs_forward(model, big)


if __name__ == "__main__":
    main()
