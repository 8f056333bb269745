"""JupyterLab sessions (issue 12): long-lived notebook servers in a version's image, owned by the runner.

- ``models``: the ``sessions`` and ``session_layers`` tables (migration 0005).
- ``service``: plain database functions (state changes and their events through the outbox).
- ``targets``: where a session runs: ``local`` (podman's Docker API) and ``kubernetes`` (``manifests``).
- ``manager``: starting (layer → container → the server answers), stopping, culling idle sessions.
- ``api``: the ``runner.session.*`` endpoints.
- ``layer/``: the files the builder copies into the image at /opt/reprolab/session/.
"""
