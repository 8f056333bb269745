"""Reprolab registry service: workspaces, members, environments, versions, specs, datasets.

``python -m reprolab_registry`` runs it; ``service`` holds the domain functions, ``spec`` the spec
document's validation, ``handlers`` the NATS endpoints.
"""
