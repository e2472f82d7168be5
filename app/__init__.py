"""Countersign: experiment review and model-promotion governance for MLflow."""

__version__ = "0.1.0"
