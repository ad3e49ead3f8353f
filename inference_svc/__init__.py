
__version__ = "0.2.0"  # this service's own version (GetServerInfo, image label); bump on release
