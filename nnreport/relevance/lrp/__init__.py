"""Layer-wise Relevance Propagation: rules, composites and canonizers."""

from nnreport.relevance.lrp.composites import COMPOSITE_NAMES, Composite, composite, single_rule
from nnreport.relevance.lrp.rules import RULE_NAMES, Rule

__all__ = ["COMPOSITE_NAMES", "RULE_NAMES", "Composite", "Rule", "composite", "single_rule"]
