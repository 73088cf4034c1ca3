"""Playground views: neuron responses over a 2-D input plane (torch code; imported by the analysis)."""
