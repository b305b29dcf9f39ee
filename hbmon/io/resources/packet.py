"""Raw Ethernet frames on one interface (AF_PACKET), for ARP and neighbour discovery.

The socket is bound to one interface and one EtherType; it lives in the
network namespace of the thread that opens it. `PacketLink` sends whole frames
and receives them with the kernel's packet type, so callers can ignore the
copies of their own outgoing frames.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from types import TracebackType

PACKET_OUTGOING = 4  # <linux/if_packet.h>: a frame this host sent
MAC_LEN = 6
BROADCAST_MAC = b"\xff" * MAC_LEN
ETH_HEADER_LEN = 14
ETH_MIN_FRAME = 60  # without the FCS


def format_mac(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def ethernet(dst: bytes, src: bytes, ethertype: int, payload: bytes) -> bytes:
    """An Ethernet II frame, zero-padded to the 60-byte minimum."""
    frame = dst + src + ethertype.to_bytes(2, "big") + payload
    return frame.ljust(ETH_MIN_FRAME, b"\0")


class PacketLink:
    """An AF_PACKET socket on `iface` for `ethertype`; use as an async context manager.
    `listen=False`: for sending only (no frame is queued to it).

    The kernel makes both binding a socket that listens everywhere to one interface
    and closing any packet socket wait for an RCU grace period (synchronize_net,
    10-30 ms measured). So the socket is created for no protocol and bound to
    interface and protocol in one step, and it is closed in a thread of its own:
    neither the first gratuitous ARP of a takeover nor the event loop (beats, the
    deadline timer) waits for the kernel's bookkeeping.
    """

    def __init__(self, iface: str, ethertype: int, *, listen: bool = True) -> None:
        self.iface = iface
        self.ethertype = ethertype
        self.listen = listen
        self._sock: socket.socket | None = None
        self.mac = b""

    def open(self) -> PacketLink:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            sock.bind((self.iface, self.ethertype if self.listen else 0))
            sock.setblocking(False)
            # getsockname() on a bound packet socket: (ifname, proto, pkttype, hatype, addr)
            self.mac = bytes(sock.getsockname()[4])[:MAC_LEN]
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        return self

    def close(self) -> None:
        if self._sock is not None:
            sock, self._sock = self._sock, None
            threading.Thread(target=sock.close, name="packet socket close", daemon=True).start()

    async def __aenter__(self) -> PacketLink:
        return self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _socket(self) -> socket.socket:
        if self._sock is None:
            raise OSError(f"packet socket on {self.iface} is closed")
        return self._sock

    async def send(self, frame: bytes) -> None:
        await asyncio.get_running_loop().sock_sendall(self._socket(), frame)

    def send_now(self, frame: bytes) -> None:
        """One frame without waiting; OSError if the socket cannot take it now."""
        self._socket().send(frame)

    def queued(self) -> list[tuple[bytes, int]]:
        """The frames the socket holds now, read without waiting."""
        sock = self._socket()
        out: list[tuple[bytes, int]] = []
        while True:
            try:
                data, addr = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return out
            out.append((data, int(addr[2])))

    async def recv(self) -> tuple[bytes, int]:
        """The next frame and its packet type (PACKET_OUTGOING for our own)."""
        data, addr = await asyncio.get_running_loop().sock_recvfrom(self._socket(), 65535)
        return data, int(addr[2])


async def solicit(
    link: PacketLink,
    frame: bytes,
    window: float,
    count: int,
    answer: Callable[[bytes], bytes | None],
) -> bytes | None:
    """Send `frame` `count` times spread evenly over `window` seconds; the first answer, or None.

    `answer(frame)` looks at each received frame (not our own outgoing ones)
    and returns a non-None value (the answering MAC) to stop.
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + window
    gap = window / max(count, 1)
    sent = 0
    while (now := loop.time()) < deadline:
        if sent < count and now >= start + sent * gap:
            await link.send(frame)
            sent += 1
        wake = min(deadline, start + sent * gap) if sent < count else deadline
        try:
            data, pkttype = await asyncio.wait_for(link.recv(), max(0.0, wake - loop.time()))
        except TimeoutError:
            continue
        if pkttype != PACKET_OUTGOING and (found := answer(data)) is not None:
            return found
    # An answer that came in time but was not read yet (the loop was busy) counts:
    # a short window must not let a late read pass for silence.
    for data, pkttype in link.queued():
        if pkttype != PACKET_OUTGOING and (found := answer(data)) is not None:
            return found
    return None
