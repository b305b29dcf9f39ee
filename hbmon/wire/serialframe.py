"""Messages on a serial line, framed as heartbeat 3.0.6's serial medium frames them.

heartbeat's serial plugin (lib/plugins/HBcomm/serial.c) carries the classic
text form on the line, whatever format its UDP media use: a netstring message
is converted to classic and signed with its `auth=` field before it is
written. A frame is therefore::

    >>>\\n
    name=value\\n ...
    auth=N hex\\n
    <<<\\n

with no NUL after it. heartbeat's reader reads lines, skips every line until
one that starts with `>>>`, then collects lines until one that starts with
`<<<`. Its tty setup drops CRs on input (IGNCR).

`SerialDeframer` reads the same frames from a byte stream that may start in
the middle of a frame, carry line noise, lose bytes or never end a line. It
never raises: what it cannot make a frame of is skipped (noise between frames)
or handed on as a broken frame (a frame cut short by the next `>>>`, or one
longer than any message may be), which the decoder then rejects and the caller
counts as a malformed packet, the way a damaged datagram is.
"""

from __future__ import annotations

from hbmon.wire.codec import CLASSIC_END, CLASSIC_START, MAX_PACKET

_START = CLASSIC_START.rstrip(b"\n")
_END = CLASSIC_END.rstrip(b"\n")


def to_serial(classic: bytes) -> bytes:
    """The bytes to write for one classic-encoded message (the datagram form ends in a
    NUL, which heartbeat's serial medium does not send)."""
    return classic.rstrip(b"\0")


class SerialDeframer:
    """Byte stream in, complete (or visibly broken) classic frames out."""

    __slots__ = ("_discarding", "_frame", "_line", "_max", "skipped_bytes")

    def __init__(self, max_frame: int = MAX_PACKET) -> None:
        self._max = max_frame
        self._line = bytearray()  # the line being read, without its newline
        self._frame: bytearray | None = None  # the frame being read; None: looking for >>>
        self._discarding = False  # dropping the rest of an over-long line
        self.skipped_bytes = 0  # bytes seen outside any frame (line noise, stale data)

    @property
    def in_frame(self) -> bool:
        return self._frame is not None

    def feed(self, data: bytes) -> list[bytes]:
        """Frames completed by `data`, in order; broken frames included."""
        out: list[bytes] = []
        data = data.replace(b"\r", b"")
        pos = 0
        while pos < len(data):
            nl = data.find(b"\n", pos)
            chunk = data[pos:] if nl < 0 else data[pos:nl]
            pos = len(data) if nl < 0 else nl + 1
            if self._discarding:
                self.skipped_bytes += len(chunk)
            else:
                self._line += chunk
                self._check_line_length(out)
            if nl >= 0:
                if self._discarding:
                    self._discarding = False
                    self.skipped_bytes += 1
                else:
                    self._end_line(bytes(self._line), out)
                self._line.clear()
        return out

    def _room(self) -> int:
        used = len(self._frame) if self._frame is not None else 0
        return self._max - used

    def _check_line_length(self, out: list[bytes]) -> None:
        """A line that cannot fit in a frame is never kept whole: memory stays bounded
        whatever the line brings."""
        if len(self._line) < self._room():
            return
        if self._frame is not None:
            # Too big for any message: hand on what the decoder will call oversized.
            out.append(bytes(self._frame + self._line)[: self._max + 1])
            self._frame = None
        self.skipped_bytes += len(self._line)
        self._line.clear()
        self._discarding = True

    def _end_line(self, line: bytes, out: list[bytes]) -> None:
        # A NUL that ended a previous sender's datagram-style frame is not part of the line.
        line = line.lstrip(b"\0")
        if self._frame is None:
            if line.startswith(_START):
                self._frame = bytearray(line + b"\n")
            else:
                self.skipped_bytes += len(line) + 1
            return
        if line.startswith(_START):
            # The previous frame never ended: pass it on broken, start the new one.
            out.append(bytes(self._frame))
            self._frame = bytearray(line + b"\n")
            return
        self._frame += line + b"\n"
        if line.startswith(_END):
            out.append(bytes(self._frame))
            self._frame = None
