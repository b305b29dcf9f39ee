"""Hard limits of heartbeat's formats (not defaults: those live in model.py)."""

from __future__ import annotations

# heartbeat's mcast plugin refuses ttl > 4 whatever its man page says (spec §1.2).
MCAST_MAX_TTL = 4
# authkeys indexes are 0..15 (MAXAUTH 16); the man page says 1..15.
MAX_AUTH_INDEX = 15
MAX_PORT = 65535
MAX_HOPFUDGE = 255
MAX_DEBUG = 255
# heartbeat warns when initdead is below this (config.c init_config).
INITDEAD_WARN_BELOW_MS = 10000
# heartbeat's StringToBaud: the only line speeds its serial medium sets.
SERIAL_BAUDS = (9600, 19200, 38400, 57600, 115200, 230400, 460800)
# mcast6's hop limit, checked as heartbeat checks it (> 4 refused).
MCAST6_MAX_HOPS = 4
# Addresses left up by a restart expire after the handover window, in whole seconds
# (the kernel's address lifetimes).
MIN_HANDOVER_WINDOW_MS = 1000
