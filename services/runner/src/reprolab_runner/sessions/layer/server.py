"""Start JupyterLab on the environment's own Python (``python3 /opt/reprolab/session/server.py ARGS``).

The server's dependencies live in ``site/`` and come FIRST on this process's ``sys.path`` only: the
kernels and terminals it starts are new processes that never see this path (no PYTHONPATH, no .pth
file), so ``pip list``, ``reprolab env capture`` and the kernel see the environment as it was built.
Before the server starts, the course files are copied into the home where absent (``home.py``).
"""

import os
import runpy
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "site"))
sys.path.insert(0, HERE)

import home  # noqa: E402 - needs the path above

home.sync(os.path.join(HERE, "course"), os.environ.get("HOME", "/home/student"))
sys.argv = ["jupyter-lab", *sys.argv[1:]]
runpy.run_module("jupyterlab", run_name="__main__", alter_sys=True)
