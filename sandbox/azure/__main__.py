"""`python -m sandbox.azure --port N --state-dir DIR`: the ARM server on its own.

Tests that need only the API (no stand-in VMs) run it this way. It writes
`DIR/endpoint.json` (URL, CA certificate, credentials, seeded ids) once it answers.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
from pathlib import Path

from sandbox.azure.runtime import start_arm_server


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.azure", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--operation-seconds", type=float, default=0.5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server, endpoint = start_arm_server(
        port=args.port, state_dir=args.state_dir, operation_seconds=args.operation_seconds
    )
    (args.state_dir / "endpoint.json").write_text(json.dumps(endpoint, indent=2))
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
