"""What protoserve's services share: settings, logging, errors, the gRPC server bootstrap, Redis."""

__version__ = "0.1.0"
