"""Parsing the lines `packer build -machine-readable` prints.

Each line is `timestamp,target,type,data...`. Packer escapes commas inside a data field
as `%!(PACKER_COMMA)`, and newlines and carriage returns as the two characters `\\n` and
`\\r`, so that one message always stays on one line.
"""

from __future__ import annotations

from dataclasses import dataclass

_COMMA = "%!(PACKER_COMMA)"


@dataclass(frozen=True)
class MachineReadableLine:
    """One parsed line; `target` is empty for lines about the run as a whole."""

    timestamp: int
    target: str
    type: str
    data: tuple[str, ...]

    @property
    def ui_kind(self) -> str | None:
        """`say`, `message` or `error` for a human-readable `ui` line, else None."""
        if self.type != "ui" or not self.data:
            return None
        return self.data[0]

    @property
    def ui_text(self) -> str:
        """The text of a `ui` line (empty for other lines)."""
        if self.ui_kind is None:
            return ""
        # Packer escapes every comma inside a field, so the text is a single field; joining
        # the rest only matters for a line from some other tool that did not escape.
        return ",".join(self.data[1:])


def unescape(field: str) -> str:
    """Undo Packer's escaping of one data field.

    Packer does not escape backslashes, so a literal backslash followed by `n` in the
    original text comes back as a newline; nothing can tell the two apart.
    """
    return field.replace(_COMMA, ",").replace("\\r", "\r").replace("\\n", "\n")


def parse_line(line: str) -> MachineReadableLine | None:
    """Parse one line of machine-readable output; None if it is not in that format.

    Packer prints a few things outside the format (a plugin crash, a Go panic), so the
    caller must handle None rather than treat it as an error.
    """
    fields = line.rstrip("\r\n").split(",")
    if len(fields) < 3:
        return None
    timestamp, target, kind = fields[0], fields[1], fields[2]
    if not timestamp.isdigit() or not kind:
        return None
    return MachineReadableLine(
        timestamp=int(timestamp),
        target=unescape(target),
        type=kind,
        data=tuple(unescape(field) for field in fields[3:]),
    )
