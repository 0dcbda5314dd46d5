"""A local SMTP capture server for development: every message it receives becomes a .eml file.

``make demo`` runs it so that nothing leaves the machine; the web app shows the captured
messages at /dev/mail in development mode. Run: ``python -m mailer.capture --port 1025 --dir var/mail``.
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from core.db import utcnow


class CaptureHandler:
    """Writes each accepted message to ``directory`` with a sortable, unique name."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.count += 1
            name = f"{utcnow():%Y%m%dT%H%M%S%f}-{self.count:06d}.eml"
        partial = self.directory / f".{name}.part"
        partial.write_bytes(envelope.original_content or envelope.content)
        # The rename makes a message appear whole or not at all to anyone reading the folder.
        partial.rename(self.directory / name)
        return "250 OK captured as " + name


def serve(host: str, port: int, directory: Path) -> None:
    """Capture until SIGINT or SIGTERM."""
    directory.mkdir(parents=True, exist_ok=True)
    controller = Controller(CaptureHandler(directory), hostname=host, port=port)
    controller.start()
    print(f"capturing mail on {host}:{port} into {directory}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--dir", type=Path, default=Path("var/mail"))
    arguments = parser.parse_args()
    serve(arguments.host, arguments.port, arguments.dir)


if __name__ == "__main__":
    main()
