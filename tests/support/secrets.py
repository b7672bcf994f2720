"""A registry of secrets the tests create, and the scan that fails a test when one leaks."""

from __future__ import annotations

MIN_SECRET_LENGTH = 8


class SecretRegistry:
    """Values that must never appear in a response body, a header or a log line."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}

    def add(self, value: str | None, label: str) -> None:
        if value and len(value) >= MIN_SECRET_LENGTH:
            self._values[value] = label

    def clear(self) -> None:
        self._values.clear()

    def leaks_in(self, text: str) -> list[str]:
        """Labels of the registered secrets found in ``text``."""
        return [label for value, label in self._values.items() if value in text]


REGISTRY = SecretRegistry()


def scan_response(response) -> None:
    """Fail if a registered secret is in the response's body or headers."""
    body = response.get_data(as_text=True) if response.direct_passthrough is False else ""
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    leaks = REGISTRY.leaks_in(body + "\n" + headers)
    assert not leaks, f"secret(s) in a response: {leaks}"
