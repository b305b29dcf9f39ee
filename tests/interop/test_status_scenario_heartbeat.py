"""The control for issue 17: Debian's heartbeat 3.0.6 on both nodes runs the same
solrsvc scenario (tests/integration/solrsvc_scenario) and places the service
as hbmon does: on solr2 at comm-up, on solr1 when solr2 dies, back on solr2 at
failback, never on both."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hblab import Heartbeat, keep_logs, require_heartbeat
from solrsvc_scenario import OWNER, PEER, Placement, run_scenario, solrsvc_lab

from hbmon.testing.lab import Lab

pytestmark = pytest.mark.netns


@pytest.fixture
def heartbeats() -> Iterator[dict[str, Heartbeat]]:
    require_heartbeat()
    lab = solrsvc_lab().up()
    hbs = {name: Heartbeat(lab, name) for name in lab.nodes}
    try:
        for hb in hbs.values():
            hb.start()
        yield hbs
    finally:
        for hb in hbs.values():
            if hb.running():
                hb.kill9()
        keep_logs(lab, "status-scenario")
        lab.down()


def test_heartbeat_places_solrsvc_as_hbmon_does(heartbeats: dict[str, Heartbeat]) -> None:
    lab: Lab = heartbeats[OWNER].lab
    # heartbeat runs the script as /etc/ha.d/resource.d/solrsvc in its own mount
    # namespace, where /etc/ha.d is this node's copy: the state file is there.
    placement = Placement(lab, {n: hb.etc / "solrsvc.state" for n, hb in heartbeats.items()})

    def explain() -> str:
        return "\n".join(f"--- {n}\n{hb.tail(25)}" for n, hb in heartbeats.items())

    took = run_scenario(
        lab,
        placement,
        kill9=lambda name: heartbeats[name].kill9(),
        start=lambda name: heartbeats[name].start(),
        explain=explain,
        timeout=90,
    )
    print(f"heartbeat placed solrsvc: {took}")
    for name, hb in heartbeats.items():
        assert not [ln for ln in hb.log_lines() if "should not be" in ln], name
    ran = [ln for ln in heartbeats[PEER].log_lines() if "Running" in ln and "solrsvc" in ln]
    assert [ln.split()[-1] for ln in ran] == ["start", "stop"], ran
