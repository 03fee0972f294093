"""The HTTP API: the app factory, authentication and one module of routes per resource."""
