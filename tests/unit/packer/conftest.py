"""Fixtures for the Packer runner tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.packer.packer_support import RecordingHandler, Workspace


@pytest.fixture
def workspace(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Workspace]:
    logger = logging.getLogger(f"tests.packer.{request.node.name}")
    logger.setLevel(logging.DEBUG)
    handler = RecordingHandler()
    logger.addHandler(handler)
    try:
        yield Workspace(dir=tmp_path, logger=logger, log=handler)
    finally:
        logger.removeHandler(handler)
