"""Thin runtime shared by the Reprolab services: settings, database, NATS, object store.

Services are apps that never import each other; what they share lives here or in the
generated contracts (``reprolab.v1``).
"""
