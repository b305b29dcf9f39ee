"""When a datagram reached this host: the kernel's receive timestamp, on the loop's clock.

A socket with SO_TIMESTAMPNS gets, with every datagram, the wall-clock time at
which the kernel took it off the wire (ancillary data of recvmsg). That is the
arrival time the heartbeat RTT and the ping RTT should use: the time the event
loop gets to the datagram adds our own scheduling and processing, which on a
busy host is most of a sub-millisecond round trip.

The stamp is CLOCK_REALTIME; the core runs on the loop's monotonic clock. The
difference of the two clocks is read once per batch of datagrams (`Stamps`),
so a stamp becomes loop time by one subtraction; a wall-clock step between the
arrival and the read is the only error, and the caller clamps what it gets to
the present.

The kernel turns receive stamping on for the whole host in deferred work when
the first socket asks for it; a datagram that arrives before that work ran is
stamped when it is read (what the loop's clock would have said anyway).
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable

# <asm-generic/socket.h> SO_TIMESTAMPNS (SO_TIMESTAMPNS_OLD): 35 on every Debian
# architecture (x86, arm, mips, ppc, s390); Python does not export it. The
# control message carries a `struct timespec` of native longs.
SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("@ll")
ANCILLARY_SPACE = socket.CMSG_SPACE(_TIMESPEC.size)


def enable(sock: socket.socket) -> bool:
    """Ask for receive timestamps on `sock`; False where the kernel refuses."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


class Stamps:
    """Turns the stamps of one batch of datagrams into loop time."""

    __slots__ = ("_offset", "now")

    def __init__(
        self, loop_time: Callable[[], float], wall: Callable[[], float] = time.time
    ) -> None:
        self.now = loop_time()
        self._offset = wall() - self.now

    def arrival(self, ancdata: list[tuple[int, int, bytes]]) -> float:
        """The kernel's stamp in `ancdata` on the loop clock, never later than `now`;
        `now` when there is none (timestamps refused, or a kernel without them)."""
        stamp = kernel_stamp(ancdata)
        return self.now if stamp is None else min(self.now, stamp - self._offset)


def kernel_stamp(ancdata: list[tuple[int, int, bytes]]) -> float | None:
    """The receive timestamp in `ancdata` (wall-clock seconds), None if there is none."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            sec, nsec = _TIMESPEC.unpack_from(data)
            return float(sec + nsec * 1e-9)
    return None
