"""The notebook executor (reprolab_runner.notebook) run as a real python3 process, the way a run's image runs
it, and the hint a failing cell gives; the Git URL and ref checks (no platform needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from reprolab_common.errors import Invalid
from reprolab_runner import gitsource, hints, notebook
from reprolab_runner.config import RunnerSettings


def _cell(*lines: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": list(lines)}


def _execute(tmp_path: Path, cells: list[dict]) -> tuple[subprocess.CompletedProcess, dict]:
    src = tmp_path / "work" / "nb.ipynb"
    src.parent.mkdir(exist_ok=True)
    src.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    out = tmp_path / "outputs" / "nb.executed.ipynb"
    cmd = notebook.command("nb.ipynb")
    assert cmd[:2] == ["python3", "-c"] and cmd[3:] == ["/work/nb.ipynb", "/outputs/nb.executed.ipynb"]
    proc = subprocess.run([sys.executable, "-c", cmd[2], str(src), str(out)], capture_output=True, text=True,
                          timeout=60)
    return proc, json.loads(out.read_text()) if out.exists() else {}


def test_cells_share_state_and_keep_their_output(tmp_path: Path) -> None:
    proc, nb = _execute(tmp_path, [
        {"cell_type": "markdown", "metadata": {}, "source": ["# title"]},
        _cell("import sys\n", "x = 6\n", "print('out', x)\n", "print('err', file=sys.stderr)\n", "x * 7\n"),
        _cell("import os\n", "open('written.txt', 'w').write(os.getcwd())\n", "None\n")])
    assert proc.returncode == 0, proc.stderr
    assert "out 6" in proc.stdout and "ran 2 cells of nb.ipynb" in proc.stderr
    first = nb["cells"][1]
    assert first["execution_count"] == 1
    assert first["outputs"] == [{"output_type": "stream", "name": "stdout", "text": ["out 6\n"]},
                                {"output_type": "stream", "name": "stderr", "text": ["err\n"]},
                                {"output_type": "execute_result", "execution_count": 1, "metadata": {},
                                 "data": {"text/plain": "42"}}]
    assert nb["cells"][2]["outputs"] == []  # a None result shows nothing, as in Jupyter
    assert (tmp_path / "work" / "written.txt").read_text() == str(tmp_path / "work")  # cwd: the notebook's folder


def test_a_failing_cell_stops_the_notebook_and_is_named(tmp_path: Path) -> None:
    proc, nb = _execute(tmp_path, [_cell("a = 1\n"), _cell("import pandas_that_is_not_there\n"),
                                   _cell("print('never')\n")])
    assert proc.returncode == 1
    assert "reprolab-notebook: cell 2 of nb.ipynb failed at line 1: import pandas_that_is_not_there" in proc.stderr
    error = nb["cells"][1]["outputs"][-1]
    assert error["output_type"] == "error" and error["ename"] == "ModuleNotFoundError"
    assert any("<cell 2>" in line for line in error["traceback"])
    assert nb["cells"][2]["execution_count"] is None and nb["cells"][2]["outputs"] == []
    advice = hints.hint(proc.stderr.splitlines(), [])
    assert advice.startswith("Cell 2 of nb.ipynb failed at line 1: import pandas_that_is_not_there "
                             "(ModuleNotFoundError: No module named 'pandas_that_is_not_there')"), advice
    assert "add it to the environment's Python requirements" in advice  # the known cause follows


def test_ipython_syntax_fails_with_a_sentence(tmp_path: Path) -> None:
    proc, nb = _execute(tmp_path, [_cell("x = 1\n", "!ls\n")])
    assert proc.returncode == 1
    assert "line 2 is IPython syntax (!ls), which needs a Jupyter kernel" in proc.stderr
    assert "cell 1 of nb.ipynb failed at line 2: !ls" in proc.stderr


def test_an_unreadable_notebook_is_said_so(tmp_path: Path) -> None:
    src = tmp_path / "nb.ipynb"
    src.write_text("{not json")
    proc = subprocess.run([sys.executable, "-c", notebook.EXECUTOR, str(src), str(tmp_path / "o.ipynb")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "cannot read" in proc.stderr


@pytest.mark.parametrize("path", ["../x.ipynb", "/etc/x.ipynb", "a/../../x.ipynb", "x.py", ""])
def test_notebook_paths_stay_inside_the_code(path: str) -> None:
    with pytest.raises(Invalid):
        notebook.command(path)


def test_git_urls_and_refs_the_runner_refuses() -> None:
    settings = RunnerSettings()
    assert gitsource.check_url("https://example.org/a/b.git", settings)
    assert gitsource.check_url("git://127.0.0.1:9418/b.git", settings)
    for url, why in (("file:///srv/x.git", "REPROLAB_RUNNER_GIT_ALLOW_FILE"), ("ssh://h/x.git", "only"),
                     ("https://u:p@h/x.git", "password"), ("-uhttps://h/x", "repository URL"),
                     ("https:///x.git", "no host"), ("ext::sh -c id", "repository URL")):
        with pytest.raises(Invalid) as info:
            gitsource.check_url(url, settings)
        assert why in str(info.value), (url, info.value)
    assert gitsource.check_url("file:///srv/x.git", RunnerSettings(git_allow_file=True))
    for ref in ("--upload-pack=x", "a..b", "a b"):
        with pytest.raises(Invalid):
            gitsource.check_ref(ref)
    assert gitsource.check_ref("v1.2/fix-3") == "v1.2/fix-3"
