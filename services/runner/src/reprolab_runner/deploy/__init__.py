"""Deploying a run's model as a web service (issue 15), owned by the runner.

- ``engine``: where a model server runs: ``local`` (podman's Docker API) behind one ABC; the server is
  ``serving/oip_server.py`` bind-mounted read-only into the RUN'S OWN IMAGE and started with its python3.
- ``manifests``: the ``kubernetes`` target as pure functions (Deployment + Service + HPA, restricted).
- ``models``: the ``models``, ``model_keys`` and ``model_alerts`` tables (migration 0006).
"""
