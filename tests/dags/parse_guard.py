"""Forbid network and child processes while DAG files parse, and record every attempt.

Also the child entry point of the parse-safety test:

    python -m tests.dags.parse_guard DAGS_DIR

imports Airflow first (the DAG processor has it loaded before it parses a file), then
installs the guard and fills a DagBag, so the DAG files and everything they import -
bakery, boto3, pydantic models - load for the first time under it, whatever else the
pytest session imported before. Prints one RESULT_MARKER line of JSON.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import pytest

RESULT_MARKER = "PARSE-GUARD-RESULT "


class ForbiddenAtParseTime(RuntimeError):
    """Raised by the guard: parsing a DAG file tried to reach out."""


@dataclass
class ParseGuard:
    """What the code under test tried to do; all of it was blocked."""

    forbidden: list[str] = field(default_factory=list)


def install(mp: pytest.MonkeyPatch) -> ParseGuard:
    """Make socket connects, DNS lookups and child processes raise, and record each attempt.

    Recording matters as much as raising: code that swallows the error (botocore retries
    and wraps it) would otherwise hide the call.
    """
    guard = ParseGuard()

    def forbidden(what: str, *, method: bool = False) -> Callable[..., Any]:
        def block(*args: Any, **kwargs: Any) -> Any:
            # Skip `self` on methods: a half-built Popen cannot even repr itself.
            guard.forbidden.append(f"{what}{args[1:] if method else args}")
            raise ForbiddenAtParseTime(f"{what} at DAG parse time")

        return block

    def popen_init(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        forbidden("subprocess.Popen")(args, *rest, **kwargs)

    mp.setattr(socket.socket, "connect", forbidden("socket.connect", method=True))
    mp.setattr(socket.socket, "connect_ex", forbidden("socket.connect_ex", method=True))
    mp.setattr(socket, "create_connection", forbidden("socket.create_connection"))
    mp.setattr(socket, "getaddrinfo", forbidden("socket.getaddrinfo"))
    mp.setattr(subprocess.Popen, "__init__", popen_init)
    mp.setattr(os, "system", forbidden("os.system"))
    mp.setattr(os, "posix_spawn", forbidden("os.posix_spawn"))
    mp.setattr(os, "posix_spawnp", forbidden("os.posix_spawnp"))
    return guard


def main(dags_dir: str) -> None:
    from airflow.dag_processing.dagbag import DagBag

    with pytest.MonkeyPatch.context() as mp:
        guard = install(mp)
        bag = DagBag(dag_folder=dags_dir)
    result = {**asdict(guard), "dag_ids": sorted(bag.dag_ids), "import_errors": bag.import_errors}
    print(RESULT_MARKER + json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
