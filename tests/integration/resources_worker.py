"""A ResourceExecutor living in one node's namespace, driven by JSON lines on stdin.

Run as `ip netns exec NS python resources_worker.py CONFIG_DIR`, so every
netlink and packet socket it opens is inside that namespace. Each request
`{"op": "start"|"stop"|"active"|"probe", "group": ["IPaddr2::…", …]}` gets one
reply line; the executor (and its background GARP repeats) persists between
requests. `{"op": "close"}` ends it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from hbmon.config.model import AuthConfig, Config, Resource, ResourceGroup, Timers
from hbmon.io.resources.executor import ResourceExecutor


def group(specs: list[str]) -> ResourceGroup:
    resources = []
    for spec in specs:
        agent, *args = spec.split("::")
        resources.append(Resource(agent, tuple(args)))
    return ResourceGroup("solr1", tuple(resources))


async def main(config_dir: Path) -> None:
    config = Config(
        node="solr1",
        nodes=("solr1", "solr2"),
        timers=Timers(),
        udpport=694,
        media=(),
        ping_nodes=(),
        auth=AuthConfig(1, ()),
        resources=(),
    )
    ex = ResourceExecutor(config, config_dir=config_dir)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        req = json.loads(line)
        t0 = time.monotonic()
        reply: dict[str, object] = {"called": t0}
        if req["op"] == "close":
            await ex.close()
            reply["ok"] = True
        elif req["op"] in ("start", "stop"):
            g = group(req["group"])
            out = await (ex.start_group(g) if req["op"] == "start" else ex.stop_group(g))
            reply.update(
                ok=out.ok, detail=out.detail, records=[[r.op, r.ok, r.detail] for r in out.records]
            )
        elif req["op"] == "active":
            reply["ok"] = await ex.active(group(req["group"]))
        elif req["op"] == "probe":
            in_use, detail = await ex.probe_group(group(req["group"]), req.get("window", 0.15))
            reply.update(ok=True, in_use=in_use, detail=detail)
        reply["returned"] = time.monotonic()
        print(json.dumps(reply), flush=True)
        if req["op"] == "close":
            return


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
