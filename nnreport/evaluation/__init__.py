"""Evaluation of a classifier or regressor on the test split: per-class metrics, confusion, ROC/PR curves,
calibration, a gallery of mistakes, the penultimate-layer embedding and class balance.

Torch-free at import: `results` and `metrics` are plain numpy; `analysis` imports torch when it runs."""
