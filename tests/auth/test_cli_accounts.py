"""An admin's account commands against the real platform: set a password, make a reset link, end a
user's browser sessions."""

from __future__ import annotations

import httpx
from reprolab_cli.main import app
from typer.testing import CliRunner

from .authkit import sign_in


def test_admin_commands_set_passwords_make_reset_links_and_end_sessions(accounts) -> None:
    name, _ = accounts.user("cli", password=None)
    env = {"REPROLAB_URL": accounts.url, "REPROLAB_TOKEN": accounts.platform.admin_token(), "COLUMNS": "200"}
    runner = CliRunner()
    result = runner.invoke(app, ["user", "set-password", name], input="cli passphrase 1\ncli passphrase 1\n", env=env)
    assert result.exit_code == 0 and "set" in result.output, result.output
    assert "cli passphrase 1" not in result.output  # hidden input
    with accounts.browser() as browser:
        assert sign_in(browser, name, "cli passphrase 1").status_code == 303
        result = runner.invoke(app, ["user", "end-sessions", name], env=env)
        assert result.exit_code == 0 and "ended 1 session" in result.output, result.output
        assert browser.get("/api/v1/me").status_code == 401
    result = runner.invoke(app, ["user", "reset-link", name], env=env)
    assert result.exit_code == 0, result.output
    link = result.output.strip().splitlines()[-1]
    assert link.startswith(f"{accounts.url}/reset/rrs_") and httpx.get(link).status_code == 200
    result = runner.invoke(app, ["user", "set-password", name, "--password", "short"], env=env)
    assert result.exit_code != 0 and "at least 10 characters" in result.output
