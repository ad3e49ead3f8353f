"""The explainability service: per-feature (per-token for text) attributions of predictions.

It runs as its own process on the same code base as the inference service, loading the same
model repository; explanations cost far more than predictions, so it scales apart.
"""

__version__ = "0.1.0"  # this service's own version (GetServerInfo / healthz, image label)
