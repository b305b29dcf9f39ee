"""Resource agents on asyncio (spec §3): addresses, announcements, probes, scripts.

executor.py   ResourceExecutor: groups start left→right, stop right→left
agents.py     one object per resource; ResourceIO, the injectable I/O edge
addresses.py  IPaddr/IPaddr2 arguments; add/remove via netlink; findif
netlink.py    the typed netlink interface; rtnetlink.py the real one (no pyroute2)
arp.py        gratuitous ARP; RFC 5227 probe        (IPv4)
ndisc.py      unsolicited NA; DAD-style probe        (IPv6)
packet.py     AF_PACKET socket, Ethernet framing
scripts.py    resource.d / init.d scripts, systemd units, status rules
"""
