"""Async jobs: submit many rows, get an id at once, poll or watch; workers predict from a Redis Stream."""
