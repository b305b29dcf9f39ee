"""Every heartbeat medium of one node: the UDP sockets and the serial lines.

heartbeat sends each message on every medium (spec §4.1). UDP media carry it in
the configured wire format; a serial line always carries heartbeat's classic
frame (hbmon.wire.serialframe), so the message is encoded once per format in use.
Both kinds report what arrives to the same receiver, named by link (`iface`,
or the device path for a serial line), so membership treats them alike.
"""

from __future__ import annotations

import asyncio

from hbmon.config.model import Medium, SerialMedium, UdpMedium, WireFormat
from hbmon.errors import StartupError
from hbmon.io.serial import SerialPort
from hbmon.io.transport import Receiver, Transport
from hbmon.wire.codec import Encoder, Sign
from hbmon.wire.message import Message
from hbmon.wire.serialframe import to_serial


class Media:
    def __init__(self, media: tuple[Medium, ...]) -> None:
        udp: tuple[UdpMedium, ...] = tuple(m for m in media if not isinstance(m, SerialMedium))
        self.udp = Transport(udp)
        self.serial = [SerialPort(m) for m in media if isinstance(m, SerialMedium)]
        self._has_udp = bool(udp)
        self._encoder = Encoder()

    async def open(self, receiver: Receiver, previous: Media | None = None) -> None:
        """Open every medium; StartupError (and nothing left open) if one cannot be.

        With `previous` (a reload), a serial line configured the same way is taken
        over open, and one whose settings changed is closed first: a tty is locked
        by whoever has it open, so it cannot be opened twice.
        """
        await self.udp.open(receiver, ours=previous.udp.bound() if previous is not None else None)
        taken: list[SerialPort] = []
        try:
            for i, port in enumerate(self.serial):
                kept = previous.hand_over(port.medium) if previous is not None else None
                if kept is not None:
                    self.serial[i] = kept
                else:
                    port.open(receiver)
                taken.append(self.serial[i])
        except StartupError:
            for port in taken:
                port.close()
            self.udp.close()
            raise

    def hand_over(self, medium: SerialMedium) -> SerialPort | None:
        """Give an open line with exactly these settings to a new Media; close one
        on the same device with other settings."""
        for port in list(self.serial):
            if port.medium == medium and port.is_open:
                self.serial.remove(port)
                return port
            if port.medium.device == medium.device:
                port.close()
        return None

    def send(self, message: Message, sign: Sign, fmt: WireFormat) -> float:
        """Encode, sign and send on every medium; returns the loop time at which the
        datagram was ready to go out (encoded and signed, just before the first write)."""
        clock = asyncio.get_running_loop().time
        ready = None
        if self._has_udp:
            datagram = self._encoder.encode(message, sign, fmt)
            ready = clock()
            self.udp.send(datagram)
        if self.serial:
            frame = to_serial(self._encoder.encode(message, sign, WireFormat.CLASSIC))
            ready = clock() if ready is None else ready
            for port in self.serial:
                port.send(frame)
        return clock() if ready is None else ready

    @property
    def send_errors(self) -> int:
        return self.udp.send_errors + sum(p.writes_dropped for p in self.serial)

    def close(self) -> None:
        self.udp.close()
        for port in self.serial:
            port.close()
