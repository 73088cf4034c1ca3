"""What each neuron responds to: layer choice, activations, top examples, activation maximisation, facets.

Torch code for the `activations`, `featvis` and `facets` analyses (nnreport/analyses/neurons.py); the
analysis module imports this package inside its functions, so the site never needs torch.
"""
