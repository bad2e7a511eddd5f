"""InfoRidge: how task information flows through the layers of a transformer LM."""

__version__ = "0.1.0"
