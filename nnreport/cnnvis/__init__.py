"""CNNVis: clustered overview of a network's layers and neurons (imported by the analysis)."""
