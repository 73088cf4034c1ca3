"""Attention maps: per-head attention of every attention layer, head averages, rollout across layers
(Abnar & Zuidema 2020) and the AttnLRP map beside it."""
