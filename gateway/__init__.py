"""The REST/JSON gateway: HTTP+JSON in front of the gRPC services, routes derived from the protos."""
