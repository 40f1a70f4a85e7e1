"""OSRM's HTTP API over gyrophare's engine, in OSRM's own layers: ``grammar`` parses and checks
a request, ``plugins`` runs it on the engine, ``format`` writes OSRM's JSON (the endpoints are
in :mod:`api.routers.osrm`, the declared bodies in :mod:`api.models.osrm`)."""
