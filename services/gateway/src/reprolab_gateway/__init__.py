"""Reprolab gateway: the public REST API (FastAPI), the only entry point users talk to.

It owns users and API tokens; everything else it asks the registry and audit services over NATS
request/reply, passing the authenticated user as the ``Actor`` they authorise.
"""
