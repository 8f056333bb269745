"""The Python kernel of a session: the environment's packages first, the kernel's own last.

``site/`` (ipykernel and its dependencies) is APPENDED to ``sys.path``, after the environment's
site-packages and the user's ~/.local: where both have a package (six, packaging, ...), the
environment's version is the one imported, as its lock says. The kernel's own modules are imported
first here, before the user's code runs, only where the environment lacks them.
"""

import os
import sys

sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "site"))
if sys.path and sys.path[0] == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)  # the script's directory is no package directory of the user's

from ipykernel import kernelapp  # noqa: E402

kernelapp.launch_new_instance()
