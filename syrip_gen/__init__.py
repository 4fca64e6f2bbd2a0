"""syrip-gen: synthetic infant pose data and the models that learn from it."""

__version__ = "0.1.0"
