"""``reprolab demo`` ends with each person's username, password and token: the passwords it sets are
printed whole and sign in to the portal (the rest of the demo is covered by `make demo` in CI)."""

from __future__ import annotations

import re

from reprolab_cli.demo import _goodbye, _set_passwords
from rich.console import Console

from .authkit import sign_in


def test_demo_people_get_passwords_that_sign_in(accounts) -> None:
    name, token = accounts.user("demo", password=None)
    passwords = _set_passwords(accounts.admin, [name])
    console = Console(record=True, width=80)
    _goodbye(console, accounts.url, {name: token}, passwords)
    out = console.export_text()
    row = next(line for line in out.splitlines() if line.strip().startswith(name))
    password = re.split(r"\s+", row.strip())[1]
    assert password == passwords[name] and len(password) >= 12 and token in row
    with accounts.browser() as browser:
        assert sign_in(browser, name, password).status_code == 303
