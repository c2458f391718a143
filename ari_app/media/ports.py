"""Hands out the even UDP ports our ExternalMedia RTP sockets listen on.

RTP traditionally uses an even port (RTCP on the odd one above). The pool binds the socket
itself, so a port that another process already holds is simply skipped, and it rotates through
the range so a just-released port is not reused at once (stray packets of the previous call
might still be arriving there).
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from ari_app.media.transport import MediaError

if TYPE_CHECKING:
    from ari_app.config import MediaSettings


class PortPool:
    def __init__(self, host: str, port_min: int, port_max: int) -> None:
        if port_min > port_max:
            raise ValueError(f"media.rtp_port_min={port_min} is above media.rtp_port_max={port_max}")
        first = port_min + (port_min % 2)
        if first > port_max:
            raise ValueError(f"media.rtp_port_min..max = {port_min}..{port_max} holds no even port for RTP")
        self.host = host
        self.port_min = port_min
        self.port_max = port_max
        self._ports = list(range(first, port_max + 1, 2))
        self._cursor = 0
        self._in_use: set[int] = set()
        self._family = socket.AF_INET6 if ":" in host else socket.AF_INET

    @classmethod
    def from_settings(cls, media: MediaSettings) -> PortPool:
        return cls(media.rtp_host, media.rtp_port_min, media.rtp_port_max)

    @property
    def in_use(self) -> frozenset[int]:
        """Ports handed out and not yet released (empty after all calls ended: no leak)."""
        return frozenset(self._in_use)

    @property
    def capacity(self) -> int:
        return len(self._ports)

    def acquire(self) -> tuple[socket.socket, int]:
        """A non-blocking UDP socket bound to a free even port, and that port."""
        last_error: OSError | None = None
        for _ in range(len(self._ports)):
            port = self._ports[self._cursor]
            self._cursor = (self._cursor + 1) % len(self._ports)
            if port in self._in_use:
                continue
            sock = socket.socket(self._family, socket.SOCK_DGRAM)
            try:
                sock.bind((self.host, port))
            except OSError as e:  # held by another process, or the host is not ours
                sock.close()
                last_error = e
                if e.errno == 99:  # EADDRNOTAVAIL: no port will work on this host
                    break
                continue
            sock.setblocking(False)
            self._in_use.add(port)
            return sock, port
        why = f" (last error: {last_error.strerror})" if last_error else ""
        raise MediaError(
            f"no free even UDP port on {self.host} in media.rtp_port_min..max = "
            f"{self.port_min}..{self.port_max}: {len(self._in_use)} of {len(self._ports)} used by us{why}"
        )

    def release(self, port: int) -> None:
        """Give a port back; releasing one that is not held is a no-op (close() is idempotent)."""
        self._in_use.discard(port)
