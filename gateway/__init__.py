"""The REST/JSON gateway: HTTP+JSON in front of the gRPC services, routes derived from the protos."""

__version__ = "0.1.0"  # this service's own version (GetServerInfo / healthz, image label)
