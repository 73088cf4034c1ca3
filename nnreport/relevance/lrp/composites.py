"""Composites: which LRP rule each linear layer gets, by its type (conv / dense) and position (input layer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from nnreport.relevance.lrp.rules import Rule, RuleName

CompositeName = Literal["epsilon_plus_flat", "epsilon_gamma_box", "epsilon_alpha2_beta1", "epsilon_plus", "epsilon",
                        "epsilon_box"]
COMPOSITE_NAMES: tuple[str, ...] = get_args(CompositeName)


@dataclass(frozen=True)
class Composite:
    """Rules by layer kind; `input` (optional) applies to every linear layer that reads the model input."""

    name: str
    conv: Rule
    dense: Rule
    input: Rule | None = None

    def for_layer(self, is_conv: bool, reads_input: bool) -> Rule:
        if reads_input and self.input is not None:
            return self.input
        return self.conv if is_conv else self.dense

    def describe(self) -> list[tuple[str, str]]:
        rows = [("input layer", self.input.describe())] if self.input is not None else []
        return rows + [("convolutions", self.conv.describe()), ("dense layers", self.dense.describe())]


def composite(name: str, epsilon: float = 1e-6, gamma: float = 0.25, low: float = 0.0, high: float = 1.0) -> Composite:
    """A named composite with its settings; the error lists the known names."""
    eps = Rule("epsilon", epsilon=epsilon)
    table = {
        "epsilon_plus_flat": Composite(name, conv=Rule("zplus"), dense=eps, input=Rule("flat")),
        "epsilon_gamma_box": Composite(name, conv=Rule("gamma", gamma=gamma), dense=eps,
                                       input=Rule("zbox", low=low, high=high)),
        "epsilon_alpha2_beta1": Composite(name, conv=Rule("alpha2_beta1"), dense=eps),
        "epsilon_plus": Composite(name, conv=Rule("zplus"), dense=eps),
        # transformers: ε on every linear layer (attention, LayerNorm, softmax have their own rules)
        "epsilon": Composite(name, conv=eps, dense=eps),
        # ViTs: z^B on the patch embedding (the input layer), ε elsewhere
        "epsilon_box": Composite(name, conv=eps, dense=eps, input=Rule("zbox", low=low, high=high)),
    }
    if name not in table:
        raise KeyError(f"unknown LRP composite {name!r}; known composites: {', '.join(COMPOSITE_NAMES)}")
    return table[name]


def single_rule(name: RuleName, epsilon: float = 1e-6, gamma: float = 0.25, low: float = 0.0,
                high: float = 1.0) -> Composite:
    """One rule on every linear layer (input-domain rules only on the input layer, ε elsewhere)."""
    rule = Rule(name, epsilon=epsilon, gamma=gamma, low=low, high=high)
    if rule.input_only:
        eps = Rule("epsilon", epsilon=epsilon)
        return Composite(f"rule:{name}", conv=eps, dense=eps, input=rule)
    return Composite(f"rule:{name}", conv=rule, dense=rule)

