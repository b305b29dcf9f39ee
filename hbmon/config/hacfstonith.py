"""ha.cf's fencing lines as heartbeat 3.0.6 reads them (config.c set_stonith_info,
set_stonith_host_info).

    stonith <type> <config file>
        one device, used by every node; its values are in the file (`stonith -F`)
    stonith_host <from node>|* <type> <values…>
        one device, used by <from node> only (`*`: by any node); the values are the
        plugin's parameters in the order of `stonith -t <type> -n`, the last one
        taking the rest of the line (`stonith -p`)

heartbeat keeps only the last line that applies to the local node; hbmon keeps
them all and tries them in file order (config/validate.py warns when more than
one applies). Whether the type exists and the values fit is checked on the host
(`hbmon config check`, io/fencing.py), since it needs cluster-glue's plugins.
"""

from __future__ import annotations

import re

from hbmon.config.lexer import ascii_lower
from hbmon.config.model import FenceDevice, FenceKind

# heartbeat splits these lines on its WHITESPACE only (a comma belongs to a value).
_WORD = re.compile(r"[ \t\f\v]+")


def _word(text: str) -> tuple[str, str]:
    """The first word and the rest, leading white space removed from both."""
    parts = _WORD.split(text.lstrip(" \t\f\v"), maxsplit=1)
    return parts[0], (parts[1] if len(parts) > 1 else "")


def parse_stonith(rest: str, line: int) -> FenceDevice | str:
    """`stonith <type> <config file>`: the device, or heartbeat's error text."""
    kind, path = _word(rest)
    if not kind:
        return "No Stonith type given"
    if not path:
        return f"stonith [{kind}]: no configuration file given (stonith <type> <file>)"
    return FenceDevice(FenceKind.STONITH, kind, config_file=path.rstrip(), line=line)


def parse_stonith_host(rest: str, line: int) -> FenceDevice | str:
    """`stonith_host <from>|* <type> <values…>`: the device, or heartbeat's error text."""
    host, tail = _word(rest)
    if not host:
        return "No Stonith hostname argument given"
    kind, params = _word(tail)
    if not kind:
        return "No Stonith type given"
    return FenceDevice(
        FenceKind.STONITH, kind, from_node=ascii_lower(host), params=params.rstrip(), line=line
    )
