"""The monitoring service: prediction events in, drift, accuracy from feedback, alerts out."""

__version__ = "0.1.0"  # this service's own version (GetServerInfo, image label)
