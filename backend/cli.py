"""flask commands (``flask --app wsgi ...``); each calls services and commits once."""

from __future__ import annotations

from flask import Flask


def register_cli(app: Flask) -> None:
    """Attach the command groups (campaigns, staff, partners, ledger, ...) as they arrive."""
