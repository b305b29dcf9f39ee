"""AF_PACKET capture of heartbeat's UDP, both directions, receive only.

One raw packet socket per medium interface, bound to that interface with
ETH_P_ALL (only ETH_P_ALL taps see outgoing frames, which arrive marked
PACKET_OUTGOING) and filtered in the kernel on UDP to udpport. The interface
is never changed (no promiscuous mode) and nothing is ever sent: the sockets
have no address and no send path.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import socket
from collections.abc import Callable
from dataclasses import dataclass

from hbmon.errors import StartupError
from hbmon.watch.frames import (
    FILTER_LEN,
    PACKET_OTHERHOST,
    PACKET_OUTGOING,
    bpf_program,
)

ETH_P_ALL = 0x0003
SO_ATTACH_FILTER = 26
RCVBUF = 4 * 1024 * 1024
MAX_FRAME = 65536 + 64


@dataclass(frozen=True, slots=True)
class Frame:
    iface: str
    data: bytes
    outgoing: bool


OnFrame = Callable[[Frame], None]


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


def attach_filter(sock: socket.socket, port: int) -> None:
    prog = bpf_program(port)
    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = _SockFprog(FILTER_LEN, ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(fprog))


def open_socket(iface: str, port: int) -> socket.socket:
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    except PermissionError as exc:
        raise StartupError("capturing needs CAP_NET_RAW (run as root)") from exc
    try:
        attach_filter(sock, port)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        sock.bind((iface, ETH_P_ALL))
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot capture on {iface}: {exc.strerror or exc}") from exc
    sock.setblocking(False)
    return sock


class Capture:
    """Raw sockets on `ifaces`, read from the event loop."""

    def __init__(self, ifaces: tuple[str, ...], port: int) -> None:
        self._ifaces = ifaces
        self._port = port
        self._socks: dict[str, socket.socket] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def open(self, loop: asyncio.AbstractEventLoop, on_frame: OnFrame) -> None:
        try:
            for iface in self._ifaces:
                self._socks[iface] = open_socket(iface, self._port)
        except BaseException:
            self.close()
            raise
        self._loop = loop
        for iface, sock in self._socks.items():
            loop.add_reader(sock.fileno(), self._drain, iface, sock, on_frame)

    def _drain(self, iface: str, sock: socket.socket, on_frame: OnFrame) -> None:
        for _ in range(256):  # bounded, so one busy interface cannot starve the loop
            try:
                data, addr = sock.recvfrom(MAX_FRAME)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            pkttype = addr[2]
            if pkttype == PACKET_OTHERHOST:
                continue  # not for this host: the local heartbeat never saw it either
            on_frame(Frame(iface, data, pkttype == PACKET_OUTGOING))

    def close(self) -> None:
        for sock in self._socks.values():
            if self._loop is not None:
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(sock.fileno())
            sock.close()
        self._socks.clear()
