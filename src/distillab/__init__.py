"""distillab: config-driven knowledge distillation for generative dialogue models."""

__version__ = "0.1.0"
