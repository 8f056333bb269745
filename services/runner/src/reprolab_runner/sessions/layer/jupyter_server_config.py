"""Settings of a session's notebook server that do not depend on the session (those come as arguments)."""

c = get_config()  # noqa: F821 - provided by traitlets when the file is loaded

# Only the kernel specs of /opt/reprolab/session/kernels (JUPYTER_PATH): ipykernel's "native" spec
# would start the kernel with the server's sys.path.
c.KernelSpecManager.ensure_native_kernel = False
c.ServerApp.open_browser = False
# The gateway checks Origin and CSRF for the browser and adds the token; the server listens on the
# container's interface only for the gateway (127.0.0.1-published locally, a ClusterIP Service in a cluster).
c.ServerApp.allow_remote_access = True
c.ServerApp.allow_origin = ""
c.ServerApp.quit_button = False
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
c.ServerApp.terminals_enabled = True
# Default settings (settings/overrides.json): no "get notified about Jupyter news?" prompt; a session has no
# internet to fetch news from, and a course's students should not be asked to turn that on.
c.LabApp.app_settings_dir = "/opt/reprolab/session/settings"
