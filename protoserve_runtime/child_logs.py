"""The children's logs as ``protoserve up`` shows them: quiet while the system starts, live after.

Each child's stderr comes through a pipe, read line by line by a thread of its own. Until
``show_all`` (called once everything is ready and the summary is printed), info and debug lines
are kept, not shown: about sixty lines of "model version loaded" and "listening" would bury the
summary. Warnings, errors and anything that is not a log line (a traceback) are shown at once.
When a child fails to start, ``replay`` shows what it had said. With ``quiet=False``
(PROTOSERVE_LOG_LEVEL=debug) every line is shown from the start.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import deque
from typing import IO, Any

KEPT_LINES = 300  # per child: enough for a failed start's story, bounded for a long one
QUIET_LEVELS = frozenset({"debug", "info"})


def line_level(line: str) -> str:
    """The level of one log line, in JSON or text form; "" when it is not a log line."""
    if line.startswith("{"):
        try:
            entry: Any = json.loads(line)
        except ValueError:
            return ""
        return str(entry.get("level", "")).lower() if isinstance(entry, dict) else ""
    parts = line.split(maxsplit=2)  # "12:03:04 INFO     inference  listening"
    return parts[1].lower() if len(parts) > 1 and parts[0].count(":") == 2 else ""


class LogRelay:
    def __init__(self, quiet: bool = True, out: IO[str] | None = None) -> None:
        self._quiet = threading.Event()
        if quiet:
            self._quiet.set()
        self._out = out or sys.stderr
        self._lock = threading.Lock()  # one whole line at a time on the terminal
        self._kept: dict[str, deque[str]] = {}
        self._readers: list[threading.Thread] = []

    def attach(self, name: str, stream: IO[bytes]) -> None:
        """Relay one child's stderr until it closes (the child ended)."""
        kept = self._kept.setdefault(name, deque(maxlen=KEPT_LINES))
        reader = threading.Thread(target=self._relay, args=(stream, kept), name=f"log-{name}", daemon=True)
        reader.start()
        self._readers.append(reader)

    def _relay(self, stream: IO[bytes], kept: deque[str]) -> None:
        with stream:
            for raw in stream:
                line = raw.decode("utf-8", errors="replace")
                if self._quiet.is_set() and line_level(line) in QUIET_LEVELS:
                    kept.append(line)
                else:
                    self._write(line)

    def _write(self, line: str) -> None:
        with self._lock:
            self._out.write(line)
            self._out.flush()

    def show_all(self) -> None:
        """From now on every line is shown as it comes."""
        self._quiet.clear()

    def replay(self, name: str) -> None:
        """Show the lines a child said while they were kept (its failed start's story)."""
        for line in list(self._kept.get(name, ())):
            self._write(line)

    def join(self, timeout: float = 5.0) -> None:
        """Wait for the readers to reach the end of their pipes (after the children stopped)."""
        for reader in self._readers:
            reader.join(timeout)
