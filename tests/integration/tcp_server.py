"""A plain TCP server in a LiveLab's server namespace, for live tests that
need to know what the server's sockets read and how each connection ended
(test_reset, test_sensor_live)."""

from __future__ import annotations

import socket
import threading
import time

from pakemon.lab.live import SRV_IP, LiveLab

PORT = 80


class Server:
    """Accepts on addr:PORT; per connection: bytes read and how it ended."""

    def __init__(self, lab: LiveLab, family: int = socket.AF_INET, addr: str = SRV_IP,
                 answer: bool = True) -> None:
        self.answer = answer  # "ok\n" after each read
        self.ls = lab.socket(lab.srv, family, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind((addr, PORT))
        self.ls.listen(256)
        self.conns: dict[int, dict] = {}  # client port -> {"data", "end", "sock"}
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                s, peer = self.ls.accept()
                port = peer[1]
            except OSError:
                return
            c = {"data": b"", "end": None, "sock": s}
            with self.lock:
                self.conns[port] = c
            threading.Thread(target=self._read, args=(s, c), daemon=True).start()

    def _read(self, s, c) -> None:
        while True:
            try:
                b = s.recv(4096)
            except ConnectionResetError:
                c["end"] = "reset"
                return
            except OSError as e:
                c["end"] = f"error {e}"
                return
            if not b:
                c["end"] = "eof"
                return
            c["data"] += b
            if not self.answer:
                continue
            try:
                s.sendall(b"ok\n")  # the server answers each read
            except (ConnectionResetError, BrokenPipeError):
                # the kernel reports a reset once, to whichever call comes
                # first; after it the socket reads EOF
                c["end"] = "reset"
                return
            except OSError:
                pass

    def conn(self, port: int, timeout: float = 5.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if port in self.conns:
                    return self.conns[port]
            time.sleep(0.02)
        raise AssertionError(f"the server never accepted port {port}")

    def close(self) -> None:
        self.ls.close()
        with self.lock:
            for c in self.conns.values():
                c["sock"].close()


def wait_until(cond, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()
