"""What to do about a failed run, read from the end of its log: the known causes a course meets every
week (a dataset not ticked, a package not in the environment) get one plain sentence instead of leaving a
student alone with a traceback. Pure functions: the log's lines and what the run had in, a hint out."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

# Python's FileNotFoundError / R's file(): a path under /data that the run tried to open
_MISSING_DATA = re.compile(r"""(?:No such file or directory|cannot open file)[^'"]*['"](/data/[^'"]+)['"]""")
_PY_MODULE = re.compile(r"ModuleNotFoundError: No module named '([A-Za-z0-9_.]+)'")
_R_PACKAGE = re.compile(r"there is no package called [‘'\"]([A-Za-z0-9.]+)[’'\"]")
# import names that differ from the package a spec names
_PACKAGE_OF = {"sklearn": "scikit-learn", "cv2": "opencv-python", "PIL": "pillow", "yaml": "pyyaml",
               "bs4": "beautifulsoup4", "skimage": "scikit-image", "dateutil": "python-dateutil"}
# the notebook executor's last words (notebook.py): which cell failed, where, and with what
_NB_CELL = re.compile(r"reprolab-notebook: (cell \d+ of .+? failed(?: at line \d+: .*)?)$", re.M)
_NB_ERROR = re.compile(r"reprolab-notebook: error: (.*)$", re.M)
TAIL = 80  # tracebacks end a log: the last lines are enough


def hint(lines: Sequence[str], mounted: Iterable[str]) -> str:
    """A sentence saying what to change, or "" when no known cause shows in the log's last lines. A
    notebook's failing cell is named first (with its line), then the known cause, if any."""
    tail = "\n".join(lines[-TAIL:])
    cause = _cause(tail, mounted)
    if match := _NB_CELL.search(tail):
        error = _NB_ERROR.search(tail)
        where = match.group(1)[0].upper() + match.group(1)[1:] + (f" ({error.group(1)})" if error else "")
        return f"{where}; the executed copy in the outputs shows every cell's output up to there." + (
            f" {cause}" if cause else "")
    return cause


def _cause(tail: str, mounted: Iterable[str]) -> str:
    names = sorted(set(mounted))
    if match := _MISSING_DATA.search(tail):
        path = match.group(1)
        name = path.removeprefix("/data/").split("/", 1)[0]
        if name not in names:
            had = f"it had {', '.join(names)}" if names else "it had none"
            return (f"{path} does not exist because dataset {name!r} was not given to this run ({had}): tick it "
                    f"under Datasets when you submit, or add --dataset {name} to reprolab run submit.")
    if match := _PY_MODULE.search(tail):
        module = match.group(1).split(".", 1)[0]
        package = _PACKAGE_OF.get(module, module)
        return (f"Python package {package!r} is not in this environment: add it to the environment's Python "
                "requirements (fork the course's environment to change your own), build the new version and run "
                "that version.")
    if match := _R_PACKAGE.search(tail):
        return (f"R package {match.group(1)!r} is not in this environment: add it to the environment's R packages "
                "(fork the course's environment to change your own), build the new version and run that version.")
    return ""
