"""Masking secret values in anything bakery shows of Packer's output."""

from __future__ import annotations

from collections.abc import Collection

MASK = "***"


class Redactor:
    """Replaces every secret value in a text with `***`."""

    def __init__(self, secrets: Collection[str]) -> None:
        # Longest first, so that a secret containing a shorter one is masked whole rather
        # than leaving its remainder visible around the shorter one's mask.
        self._secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text
