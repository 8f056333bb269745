"""The shared run agent a cloud VM executes (``run_agent.py``, Python stdlib only)."""

from importlib.resources import files


def agent_source() -> str:
    """The exact text of ``run_agent.py`` that cloud-init writes onto every VM."""
    return files(__package__).joinpath("run_agent.py").read_text(encoding="utf-8")
