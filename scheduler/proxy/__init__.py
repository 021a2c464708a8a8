"""sfed-proxy: the front-door side of a federated job."""
