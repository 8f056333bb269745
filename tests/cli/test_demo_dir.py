"""`reprolab demo --data-dir DIR` deleted DIR whatever it held (pointed at a live platform's directory, it
wiped it). It now deletes only a directory the demo made itself (its marker file), and not while that demo
still runs; anything else is refused, untouched, before a platform starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from reprolab_cli.demo import DEMO_MARKER, prepare_demo_dir
from reprolab_cli.main import app
from typer.testing import CliRunner


def live_platform_dir(tmp_path: Path) -> Path:
    data = tmp_path / "state"
    data.mkdir()
    (data / "registry.db").write_bytes(b"precious")
    (data / "admin-token").write_text("rpl_x\n")
    return data


def test_demo_refuses_a_directory_it_did_not_make(tmp_path: Path) -> None:
    data = live_platform_dir(tmp_path)
    result = CliRunner().invoke(app, ["demo", "--data-dir", str(data), "--exit"], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert "was not made by `reprolab demo`" in result.output
    assert (data / "registry.db").read_bytes() == b"precious" and not (data / DEMO_MARKER).exists()


def test_the_demos_own_directory_is_renewed_unless_that_demo_still_runs(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    assert prepare_demo_dir(data) == ""  # new: made and marked
    assert (data / DEMO_MARKER).read_text().strip() == str(os.getpid())
    (data / "old.db").write_text("last run")
    assert prepare_demo_dir(data) == ""  # ours: renewed
    assert not (data / "old.db").exists() and (data / DEMO_MARKER).is_file()
    # a demo that is still running from it (another live process) keeps its directory
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (data / DEMO_MARKER).write_text(f"{other.pid}\n")
        (data / "live.db").write_text("in use")
        assert "still running" in prepare_demo_dir(data)
        assert (data / "live.db").exists()
    finally:
        other.kill()
        other.wait()
    assert prepare_demo_dir(data) == ""  # that demo ended: renewed
    assert not (data / "live.db").exists()
    # an empty directory is fine; a file is not a directory
    empty = tmp_path / "empty"
    empty.mkdir()
    assert prepare_demo_dir(empty) == "" and (empty / DEMO_MARKER).is_file()
    (tmp_path / "file").write_text("x")
    assert "not a directory" in prepare_demo_dir(tmp_path / "file")
