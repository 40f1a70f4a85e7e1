"""Response bodies of the HTTP API (pydantic), one module per domain, so that
``/openapi.json`` documents every answer, errors included."""
