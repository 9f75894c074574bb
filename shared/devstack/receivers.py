"""Webhook receivers on 127.0.0.1 that behave well or badly, for tests and benchmarks of alert delivery.

Each listens on a port of its own and records which alert ids reached it and when (``time.monotonic``).
Behaviours:

- ``healthy``: answers 204 at once;
- ``slow``: answers 200 after ``delay_s``;
- ``trickle_body``: answers 200 with a Content-Length of 10 MB, then sends one byte every two seconds;
- ``trickle_status``: sends even its status line one byte every two seconds;
- ``endless``: answers 200 and then sends a body that never ends, as fast as it can;
- ``silent``: accepts connections (the kernel does, from its backlog) and never says a word;
- ``refused``: nothing listens on its port.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

BEHAVIOURS = ("healthy", "slow", "trickle_body", "trickle_status", "endless", "silent", "refused")
ALERT_ID_HEADER = b"werkbrug-alert-id"


@dataclass
class Receiver:
    behaviour: str = "healthy"
    delay_s: float = 0.0
    arrivals: list[tuple[str, float]] = field(default_factory=list)
    connections: int = 0

    def __post_init__(self) -> None:
        if self.behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {self.behaviour!r}")
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        if self.behaviour == "refused":
            self._socket.close()
            return
        self._socket.listen(256)
        if self.behaviour != "silent":
            self._socket.settimeout(0.2)
            threading.Thread(target=self._accept, name=f"receiver-{self.port}", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def alert_ids(self) -> list[str]:
        with self._lock:
            return [alert_id for alert_id, _ in self.arrivals]

    def close(self) -> None:
        self._stop.set()
        if self.behaviour != "refused":
            self._socket.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(10)
            try:
                alert_id = _read_request(connection)
            except OSError:
                return
            with self._lock:
                self.connections += 1
                if alert_id:
                    self.arrivals.append((alert_id, time.monotonic()))
            try:
                self._answer(connection)
            except OSError:
                return

    def _answer(self, connection: socket.socket) -> None:
        if self.behaviour == "healthy":
            connection.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        elif self.behaviour == "slow":
            self._stop.wait(self.delay_s)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        elif self.behaviour == "trickle_body":
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n")
            self._trickle(connection, b"x" * 10_000_000)
        elif self.behaviour == "trickle_status":
            self._trickle(connection, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        elif self.behaviour == "endless":
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n")
            chunk = b"y" * 65536
            while not self._stop.is_set():
                connection.sendall(chunk)

    def _trickle(self, connection: socket.socket, data: bytes) -> None:
        for index in range(len(data)):
            connection.sendall(data[index : index + 1])
            if self._stop.wait(2.0):
                return


def _read_request(connection: socket.socket) -> str | None:
    """Read one request through its body; the alert id it carries."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            raise ConnectionResetError
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get(b"content-length", b"0"))
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            raise ConnectionResetError
        body += chunk
    alert_id = headers.get(ALERT_ID_HEADER)
    return alert_id.decode() if alert_id else None
