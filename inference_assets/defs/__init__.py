"""Dagster definitions, one module per kind; loaded by `inference_assets.definitions`."""
