"""The job worker: predicts queued jobs and runs training runs, taken from a Redis Stream.

It scales on its own (one process per replica; more replicas for more throughput) and shares only
the model package with the services that submit its work.
"""

__version__ = "0.2.0"  # this deployable's own version (image label; it continues the worker image's line)
