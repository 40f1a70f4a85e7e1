"""The HTTP endpoints, one router module per domain (routing, hospitals, traffic, OSRM,
scenarios, health)."""
