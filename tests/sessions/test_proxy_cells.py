"""The session layer's IPython extension (services/runner/.../sessions/layer/): a real IPython shell, in its
own process, loads it through the layer's ipython_config.py; each executed cell becomes a ``cell`` entry of
the real activity agent's chain (here the run-style $REPROLAB_ACTIVITY_DIR file, which the agent writes the
same way its daemon does), with digests that change with the code and with the output."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "services/runner/src/reprolab_runner/sessions/layer"
AGENT = ROOT / "services/builder/src/reprolab_builder/agent/agent.py"

SCRIPT = r"""
import sys
from traitlets.config import Config
from IPython.core.interactiveshell import InteractiveShell
cfg = Config()
ns = {"get_config": lambda: cfg}
exec(open(sys.argv[1]).read(), ns)
sys.path.append(sys.argv[2])
shell = InteractiveShell.instance(config=cfg)
for ext in cfg.InteractiveShellApp.extensions:
    shell.extension_manager.load_extension(ext)
shell.run_cell("x = 6 * 7\nprint(x)", store_history=True)
shell.run_cell("x + 1", store_history=True)
shell.run_cell("print(x)", store_history=True)
shell.run_cell("1/0", store_history=True)
shell.run_cell("   ", store_history=True)
shell._reprolab_cells.flush()
"""


def test_every_executed_cell_is_a_chain_entry(tmp_path: Path):
    env = {"REPROLAB_ACTIVITY_DIR": str(tmp_path), "REPROLAB_AGENT": str(AGENT), "PATH": "/usr/bin:/bin",
           "HOME": str(tmp_path), "IPYTHONDIR": str(tmp_path / "ipython")}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(LAYER / "ipython_config.py"), str(LAYER)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "not recorded" not in done.stdout + done.stderr
    entries = [json.loads(line) for line in (tmp_path / "activity.jsonl").read_text().splitlines()]
    cells = [e for e in entries if e["kind"] == "cell"]
    assert [c["details"]["execution_count"] for c in cells] == [1, 2, 3, 4]  # the blank cell is not recorded
    first, second, third, fourth = (c["details"] for c in cells)
    assert first["code_sha256"] == hashlib.sha256(b"x = 6 * 7\nprint(x)").hexdigest()
    assert first["preview"] == "x = 6 * 7 ⏎ print(x)" and first["status"] == "ok"
    assert "python" in first["kernel"]
    # same output (42 printed), different code; the expression's result is an output too
    assert first["output_sha256"] == third["output_sha256"] and first["code_sha256"] != third["code_sha256"]
    assert second["output_sha256"] != first["output_sha256"]
    assert fourth["status"] == "error" and fourth["error"] == "ZeroDivisionError"
    # the agent's chain links: each entry's prev is the hash before it
    agent = {}
    exec(compile(AGENT.read_text(), str(AGENT), "exec"), agent)
    ok, why = agent["verify_entries"](entries)
    assert ok, why


def test_the_agent_daemon_accepts_cell_entries():
    agent = {}
    exec(compile(AGENT.read_text(), str(AGENT), "exec"), agent)
    assert agent["ALLOWED_KINDS"].match("cell")
    assert not agent["ALLOWED_KINDS"].match("cells")
