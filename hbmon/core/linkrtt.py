"""How long an answer on our links takes: the split-brain probe is sized by it.

Every round trip the node measures (a peer's echo of our heartbeat, a ping
node's reply) feeds a smoothed estimate per source, as TCP estimates its
retransmission timeout (RFC 6298 §2): SRTT, RTTVAR, and SRTT + 4·RTTVAR for
"an answer that has not come by now is not coming". The probe window is a
generous multiple of the worst source's, between a floor (a loaded host's
kernel may answer some ms late) and the configured probe timeout (also what is
used before anything was measured).
"""

from __future__ import annotations

import math

from hbmon.config.model import ADDRESS_PROBE_MIN_WINDOW_MS, ADDRESS_PROBE_RTT_MULTIPLE, Config

# RFC 6298's gains.
_ALPHA = 1 / 8
_BETA = 1 / 4


class LinkRtt:
    __slots__ = ("_ceiling_s", "_floor_s", "_multiple", "_sources", "_window")

    def __init__(self, *, floor_s: float, ceiling_s: float, multiple: float) -> None:
        self._floor_s = floor_s
        self._ceiling_s = ceiling_s
        self._multiple = multiple
        self._sources: dict[str, tuple[float, float]] = {}  # source -> (srtt, rttvar)
        self._window: float | None = None  # probe_window() until the next sample

    @classmethod
    def sized_for(cls, config: Config) -> LinkRtt:
        """The address probe's: its floor, its configured timeout, the multiple."""
        return cls(**_bounds(config))

    def resize(self, config: Config) -> None:
        self.reconfigure(**_bounds(config))

    def sample(self, source: str, rtt_s: float) -> None:
        old = self._sources.get(source)
        if old is None:
            self._sources[source] = (rtt_s, rtt_s / 2)
        else:
            srtt, rttvar = old
            rttvar = (1 - _BETA) * rttvar + _BETA * abs(srtt - rtt_s)
            self._sources[source] = ((1 - _ALPHA) * srtt + _ALPHA * rtt_s, rttvar)
        self._window = None

    def timeout_s(self) -> float | None:
        """SRTT + 4·RTTVAR of the slowest source; None before any sample."""
        if not self._sources:
            return None
        return max(srtt + 4 * rttvar for srtt, rttvar in self._sources.values())

    def probe_window(self) -> float:
        """How long to probe an address: whole milliseconds, so that jitter in the
        estimate does not move deadlines computed from it at every beat."""
        if self._window is None:
            rto = self.timeout_s()
            if rto is None:
                window = self._ceiling_s
            else:
                window = min(self._ceiling_s, max(self._floor_s, self._multiple * rto))
            self._window = math.ceil(window * 1000 - 1e-6) / 1000
        return self._window

    def reconfigure(self, *, floor_s: float, ceiling_s: float, multiple: float) -> None:
        self._floor_s, self._ceiling_s, self._multiple = floor_s, ceiling_s, multiple
        self._window = None


def _bounds(config: Config) -> dict[str, float]:
    return {
        "floor_s": ADDRESS_PROBE_MIN_WINDOW_MS / 1000,
        "ceiling_s": config.hbmon.resources.probe_timeout_ms / 1000,
        "multiple": ADDRESS_PROBE_RTT_MULTIPLE,
    }
