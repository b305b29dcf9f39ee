"""`hbmon watch`: a passive exporter next to an unmodified heartbeat.

It sends nothing. Heartbeat's UDP is captured on each medium's interface with
an AF_PACKET socket (both directions), verified with authkeys, and fed to the
same core membership the agent runs (`hbmon.core.membership`), so late, lost and
dead beats, link state, restarts and drops are computed exactly as the agent
computes them, for every node (the local heartbeat included). Owner state comes
from `cl_status rscstatus` where heartbeat's API is reachable.

    frames.py    Ethernet/IP/UDP parsing of captured frames, the BPF filter (pure)
    observer.py  the sans-IO observer over Membership: datagrams in, snapshot out
    capture.py   AF_PACKET sockets (receive only)
    exporter.py  metrics: the agent's collector, restricted to what a watcher knows
    run.py       the asyncio driver (`hbmon watch`)
"""
