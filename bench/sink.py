"""An aiosmtpd sink in another process that counts its connections.

The parent drives it over stdin/stdout, one line each way: `stats` answers
a JSON line (connections open now, the peak of simultaneous connections,
connections and messages so far); `reset` zeroes the peak and the totals;
end of input stops it. The peak is what the server saw, whatever the
client believes it opened.

    python -m bench.sink PORT
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[1]


class Counter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.open = 0
        self.peak = 0
        self.connections = 0
        self.messages = 0

    def opened(self) -> None:
        with self._lock:
            self.open += 1
            self.connections += 1
            self.peak = max(self.peak, self.open)

    def closed(self) -> None:
        with self._lock:
            self.open -= 1

    def reset(self) -> None:
        with self._lock:
            self.peak = self.open
            self.connections = 0
            self.messages = 0

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"open": self.open, "peak": self.peak, "connections": self.connections, "messages": self.messages}


class _Handler:
    def __init__(self, counter: Counter) -> None:
        self.counter = counter

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.counter.messages += 1  # one event loop thread writes it
        return "250 OK"


class _CountingSMTP(SMTP):
    def __init__(self, handler: Any, counter: Counter, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._counter = counter

    def connection_made(self, transport: Any) -> None:
        self._counter.opened()
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._counter.closed()
        super().connection_lost(error)


class _Controller(Controller):
    def __init__(self, counter: Counter, port: int) -> None:
        self.counter = counter
        # a server_hostname spares a getfqdn() per connection (LIBRARIES.md)
        super().__init__(_Handler(counter), hostname=HOST, port=port, server_hostname="bench-sink")

    def factory(self) -> SMTP:
        return _CountingSMTP(self.handler, self.counter, **self.SMTP_kwargs)


def serve(port: int) -> None:
    counter = Counter()
    controller = _Controller(counter, port)
    controller.start()
    time.sleep(0.05)  # the controller's own readiness probe has hung up
    counter.reset()
    print("ready", flush=True)
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "reset":
                counter.reset()
                print("ok", flush=True)
            elif command == "stats":
                print(json.dumps(counter.stats()), flush=True)
    finally:
        controller.stop()


# -- the parent's side -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Sink:
    """`with Sink() as sink:` a counting SMTP sink on sink.port, in another process."""

    def __init__(self) -> None:
        self.port = free_port()
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> Sink:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.sink", str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        if self._ask(None) != "ready":
            self.__exit__()
            raise RuntimeError("the SMTP sink did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def _ask(self, command: str | None) -> str:
        assert self._proc is not None and self._proc.stdin is not None and self._proc.stdout is not None
        if command is not None:
            self._proc.stdin.write(command + "\n")
            self._proc.stdin.flush()
        return self._proc.stdout.readline().strip()

    def reset(self) -> None:
        self._ask("reset")

    def stats(self) -> dict[str, int]:
        return dict(json.loads(self._ask("stats")))


if __name__ == "__main__":
    serve(int(sys.argv[1]))
