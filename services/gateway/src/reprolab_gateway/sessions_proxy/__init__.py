"""The gateway's reverse proxy to JupyterLab sessions: ``/sessions/{id}/...`` (HTTP and websockets).

The runner starts each session's Jupyter server with ``ServerApp.base_url=/sessions/<id>/``, so paths are
forwarded unchanged. See ``proxy.py`` for what the gateway checks and rewrites on the way.
"""

from .policy import SESSION_CSP
from .proxy import SessionProxy, install_session_proxy
from .upstream import FixedResolver, Resolver, RunnerResolver, SessionGone, Upstream

__all__ = ["SESSION_CSP", "FixedResolver", "Resolver", "RunnerResolver", "SessionGone", "SessionProxy",
           "Upstream", "install_session_proxy"]
