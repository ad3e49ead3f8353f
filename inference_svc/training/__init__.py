"""Training runs: a recipe and parameters on a dataset -> a new model version with its experiment record."""
