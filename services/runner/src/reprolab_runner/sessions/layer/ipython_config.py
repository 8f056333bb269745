# Installed as /etc/ipython/ipython_config.py in session images: every IPython kernel of the session loads the
# extension that records executed cells in the activity agent's chain (and sends %pip through the agent).
import sys

c = get_config()  # noqa: F821 - IPython's config loader provides it
if "/opt/reprolab/session" not in sys.path:
    sys.path.append("/opt/reprolab/session")  # last: the environment's own packages always win
c.InteractiveShellApp.extensions = [*c.InteractiveShellApp.get("extensions", []), "reprolab_cells"]
