"""crystalgnn: graph neural networks for crystal property prediction and cathode screening."""

__version__ = "0.1.0"
