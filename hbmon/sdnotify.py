"""A minimal sd_notify(3) client: readiness, status, watchdog and stop notices to systemd.

Without `$NOTIFY_SOCKET` (not started by systemd as `Type=notify`) every call is a
no-op. A send that fails is swallowed and reported as `False`: a lost notice must
never take the heartbeat loop down with it.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

__all__ = ["SdNotifier"]


class SdNotifier:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        path = env.get("NOTIFY_SOCKET", "")
        # `@name` is an abstract socket: the leading `@` stands for a NUL byte.
        self._address = "\0" + path[1:] if path.startswith("@") else path
        self._watchdog_usec = env.get("WATCHDOG_USEC", "")
        self._watchdog_pid = env.get("WATCHDOG_PID", "")

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, message: str) -> bool:
        """Send one notice (`KEY=value` lines); True if systemd's socket took it."""
        if not self._address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message.encode("utf-8", "replace"), self._address)
        except (OSError, ValueError):
            return False
        return True

    def ready(self) -> bool:
        return self.notify("READY=1")

    def status(self, text: str) -> bool:
        return self.notify("STATUS=" + " ".join(text.splitlines()))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def reloading(self) -> bool:
        """Reload started; send `ready()` when it is over (systemd >= 253 wants the stamp)."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify(f"RELOADING=1\nMONOTONIC_USEC={usec}")

    def watchdog_interval(self) -> float | None:
        """Seconds between `watchdog()` calls (half of `$WATCHDOG_USEC`), or None when
        no watchdog is asked for, or it is meant for another process (`$WATCHDOG_PID`)."""
        try:
            usec = int(self._watchdog_usec)
            if self._watchdog_pid and int(self._watchdog_pid) != os.getpid():
                return None
        except ValueError:
            return None
        return usec / 2_000_000 if usec > 0 else None
