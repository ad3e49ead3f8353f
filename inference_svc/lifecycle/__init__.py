"""Model lifecycle: versions, routing, shadow, version policy, hot reload (ModelService)."""
