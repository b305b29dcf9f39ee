"""`cl_status hbparameter`: heartbeat's parameter table for a configuration."""

from __future__ import annotations

from pathlib import Path

from hbmon import __version__
from hbmon.compat.parameters import heartbeat_parameters
from hbmon.config.loader import load_config
from hbmon.config.model import Config


def load(tmp_path: Path, hacf: str) -> Config:
    (tmp_path / "ha.cf").write_text(hacf)
    (tmp_path / "haresources").write_text("solr2 IPaddr::10.1.201.80/24/em1\n")
    keys = tmp_path / "authkeys"
    keys.write_text("auth 1\n1 sha1 secret\n")
    keys.chmod(0o600)
    config, problems = load_config(tmp_path, "solr1")
    assert config is not None, problems
    return config


NODES = "node solr1\nnode solr2\nucast em1 10.1.201.50\n"


def test_as_written_defaults_and_derived(tmp_path: Path) -> None:
    """The lab's ha.cf, answered as heartbeat answered it (tests/interop compares)."""
    p = heartbeat_parameters(
        load(
            tmp_path,
            "logfacility none\nkeepalive 200ms\ndeadtime 2\nwarntime 1\ninitdead 4\n"
            "auto_failback off\nping 10.1.201.254\n" + NODES,
        )
    )
    assert p["keepalive"] == "200ms"
    assert p["deadtime"] == "2"  # as written, not normalised
    assert p["warntime"] == "1"
    assert p["initdead"] == "4"
    assert p["deadping"] == "2000ms"  # derived from deadtime
    assert p["udpport"] == "694"
    assert p["hopfudge"] == "1"
    assert p["auto_failback"] == "off"
    assert p["logfacility"] == "none"
    assert p["use_logd"] == "yes"  # no log file and no facility: heartbeat turns logd on
    assert p["cluster"] == "linux-ha"
    assert p["hbversion"] == f"3.0.6 (hbmon {__version__})"
    for not_a_parameter in ("node", "ucast", "ping", "nice_failback"):
        assert not_a_parameter not in p


def test_defaults_when_ha_cf_is_silent(tmp_path: Path) -> None:
    p = heartbeat_parameters(load(tmp_path, "logfacility local0\n" + NODES))
    assert p["keepalive"] == "1000ms"
    assert p["deadtime"] == "30000ms"
    assert p["warntime"] == "15000ms"
    assert p["initdead"] == "30000ms"
    assert p["auto_failback"] == "legacy"
    assert p["logfile"] == "/dev/null"  # syslog and no file: heartbeat says /dev/null
    assert p["debugfile"] == "/dev/null"
    assert "use_logd" not in p
