"""heartbeat 3.0.6's flow-control protocol, the part a peer must answer.

A heartbeat peer whose statuses carry `protocol` (every 3.0.6 does) runs flow
control, and then expects three things from us:

- `reqnodes` → `repnodes`: after its comm-up, heartbeat asks one live peer for
  the node list every second and declares comm up (`Comm_now_up()`, status
  `active`, API and resources) only once a `repnodes` arrives.
- `NS_ackmsg`: heartbeat keeps what it sent until acknowledged; without acks
  its history fills ("Message hist queue is filling up"). Like heartbeat we ack
  a peer's seq when `seq % 10` equals our trigger and nothing is missing.
- `NS_rexmit`: a request to resend seqs it missed; we resend the very message
  (same bytes once encoded), as heartbeat does, if we still hold it.

Pure bookkeeping: no clock, no I/O; `Node` turns the answers into sends.
"""

from __future__ import annotations

from collections import OrderedDict

from hbmon.wire.message import Field, Message

T_REQNODES = "reqnodes"
T_REPNODES = "repnodes"
T_NS_REXMIT = "NS_rexmit"
# heartbeat's ACK_MSG_DIV: one ack per ten seqs.
ACK_DIV = 10
# heartbeat's send history is 200 messages (MAXMSGHIST); keep as many.
HISTORY = 200
# Largest range one NS_rexmit may ask for (heartbeat asks one seq at a time).
MAX_REXMIT = 50


def _s(name: str, value: str) -> Field:
    return Field(name, value.encode())


def repnodes_head(dest: str, destuuid: bytes | None, nodes: tuple[str, ...]) -> tuple[Field, ...]:
    """`dest t nodelist delnodelist [destuuid]`, as heartbeat orders them; each
    node name is followed by a space (`nodelist=solr1 solr2 `)."""
    head = [
        _s("dest", dest),
        _s("t", T_REPNODES),
        _s("nodelist", "".join(f"{n} " for n in nodes)),
        _s("delnodelist", ""),
    ]
    if destuuid is not None:
        head.append(Field("destuuid", destuuid, 1))
    return tuple(head)


class FlowControl:
    """Our sent history (for NS_rexmit) and which peer seqs we acked."""

    __slots__ = ("_acked", "_history", "uuids")

    def __init__(self) -> None:
        self._history: OrderedDict[int, Message] = OrderedDict()
        self._acked: dict[str, int] = {}
        self.uuids: dict[str, bytes] = {}

    def sent(self, seq: int, message: Message) -> None:
        self._history[seq] = message
        while len(self._history) > HISTORY:
            self._history.popitem(last=False)

    def resend(self, firstseq: int, lastseq: int) -> list[Message]:
        """The messages a retransmit request asks for that we still hold."""
        if lastseq < firstseq or lastseq - firstseq >= MAX_REXMIT:
            return []
        return [m for s in range(firstseq, lastseq + 1) if (m := self._history.get(s)) is not None]

    def should_ack(self, node: str, seq: int, missing: int) -> bool:
        if missing or seq % ACK_DIV != 0 or self._acked.get(node) == seq:
            return False
        self._acked[node] = seq
        return True

    def forget(self, node: str) -> None:
        self._acked.pop(node, None)
