"""Where a resource comes from: resource.d, the classic agents (as OCF), init.d."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from restools import make_config

from hbmon.config.model import Resource, ResourceGroup
from hbmon.io.resources.classic import CLASSIC
from hbmon.io.resources.resolve import (
    Kind,
    Resolution,
    check_resources,
    find_unit,
    is_heartbeat_wrapper,
    resolve,
)

PACKAGE_RESOURCE_D = Path("/etc/ha.d/resource.d")
OWN_SCRIPT = "#!/bin/sh\n# my own Filesystem, not heartbeat's (no hto-mapfuncs here)\nexit 0\n"
WRAPPER = (
    "#!/bin/sh\n# heartbeat's style of wrapper\n. /etc/ha.d/resource.d//hto-mapfuncs\n"
    "OCF_TYPE=Filesystem\nra_execocf $1\n"
)


class Host:
    def __init__(self, root: Path) -> None:
        self.config_dir = root / "ha.d"
        self.init_dir = root / "init.d"
        self.ocf_root = root / "ocf"
        for d in (self.config_dir, self.init_dir, self.ocf_root):
            d.mkdir()

    def write(self, path: Path, text: str = "#!/bin/sh\nexit 0\n", mode: int = 0o755) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)
        return path

    def own(self, name: str, text: str = OWN_SCRIPT) -> Path:
        return self.write(self.config_dir / "resource.d" / name, text)

    def agent(self, name: str, provider: str = "heartbeat") -> Path:
        return self.write(self.ocf_root / "resource.d" / provider / name)

    def init(self, name: str) -> Path:
        return self.write(self.init_dir / name)

    def resolve(self, spec: str) -> Resolution:
        agent, *args = spec.split("::")
        return resolve(Resource(agent, tuple(args)), self.config_dir, self.init_dir, self.ocf_root)


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


def test_classic_agent_runs_as_ocf_without_heartbeat(host: Host) -> None:
    fs = host.agent("Filesystem")
    found = host.resolve("Filesystem::/dev/sdb1::/data::ext4")
    assert found.kind is Kind.OCF
    assert found.path == fs
    assert found.replaces is None
    assert found.ocf is not None
    assert found.ocf.call.instance == "Filesystem_/dev/sdb1"
    assert found.describe() == f"OCF agent {fs}"


def test_own_script_of_the_same_name_wins(host: Host) -> None:
    host.agent("Filesystem")
    own = host.own("Filesystem")
    found = host.resolve("Filesystem::/dev/sdb1::/data")
    assert (found.kind, found.path) == (Kind.SCRIPT, own)


def test_heartbeats_wrapper_is_replaced_by_the_native_run(host: Host) -> None:
    fs = host.agent("Filesystem")
    wrapper = host.own("Filesystem", WRAPPER)
    found = host.resolve("Filesystem::/dev/sdb1::/data")
    assert (found.kind, found.path, found.replaces) == (Kind.OCF, fs, wrapper)
    assert "in place of heartbeat's wrapper" in found.describe()


def test_classic_before_init_d(host: Host) -> None:
    host.init("Filesystem")
    fs = host.agent("Filesystem")
    assert host.resolve("Filesystem::a::b").path == fs


def test_init_d_when_the_ocf_agent_is_missing(host: Host) -> None:
    init = host.init("MailTo")
    found = host.resolve("MailTo::root")
    assert (found.kind, found.path) == (Kind.INIT, init)


def test_missing_names_every_place_looked_in_order(host: Host) -> None:
    found = host.resolve("MailTo::root")
    assert found.kind is Kind.MISSING
    assert found.looked == (
        host.config_dir / "resource.d" / "MailTo",
        host.ocf_root / "resource.d" / "heartbeat" / "MailTo",
        host.init_dir / "MailTo",
    )
    assert found.error.startswith("cannot find OCF agent MailTo (looked in ")
    plain = host.resolve("solrsvc")
    assert plain.looked == (host.config_dir / "resource.d" / "solrsvc", host.init_dir / "solrsvc")
    assert plain.error.startswith("cannot find resource script solrsvc")


def test_a_wrapper_without_its_agent_says_so(host: Host) -> None:
    host.own("Filesystem", WRAPPER)
    found = host.resolve("Filesystem::a::b")
    assert found.kind is Kind.MISSING
    assert "install resource-agents" in found.error


def test_not_executable_is_skipped(host: Host) -> None:
    own = host.own("solrsvc")
    own.chmod(0o644)
    init = host.init("solrsvc")
    assert host.resolve("solrsvc").path == init


def test_bad_arguments_are_an_error_of_a_found_agent(host: Host) -> None:
    host.agent("Filesystem")
    found = host.resolve("Filesystem::/dev/sdb1")
    assert found.kind is Kind.OCF
    assert found.ocf is None
    assert found.error == (
        "Filesystem takes 2 to 4 arguments, got 1:"
        " Filesystem::device::directory[::fstype[::options]]"
    )


def test_native_and_systemd_are_not_looked_up(host: Host) -> None:
    host.own("IPaddr2", WRAPPER)
    assert host.resolve("IPaddr2::10.0.0.5/24").kind is Kind.NATIVE
    assert host.resolve("systemd:nginx").kind is Kind.SYSTEMD


def test_generic_ocf_first_provider_by_name_and_instance_file(host: Host) -> None:
    host.agent("Dummy", "pacemaker")
    first = host.agent("Dummy", "heartbeat")
    found = host.resolve("OCF::Dummy::web")
    assert found.kind is Kind.OCF
    assert found.error == (
        f"cannot find its instance file {host.config_dir / 'conf' / 'OCF' / 'Dummy' / 'web'}"
    )
    inst = host.write(host.config_dir / "conf" / "OCF" / "Dummy" / "web", "OCF_RESKEY_a=1\n", 0o644)
    found = host.resolve("OCF::Dummy::web")
    assert found.ocf is not None
    assert (found.path, found.ocf.instance_file, found.error) == (first, inst, "")
    assert host.resolve("OCF::Dummy").error == "OCF takes 2 arguments, got 1: OCF::agent::instance"
    assert host.resolve("OCF::Nope::web").kind is Kind.MISSING


def test_wrapper_recognition(tmp_path: Path) -> None:
    mentions = tmp_path / "mine"
    mentions.write_text("#!/bin/sh\n# was: . /etc/ha.d/resource.d//hto-mapfuncs\nexit 0\n")
    assert not is_heartbeat_wrapper(mentions)
    sources = tmp_path / "theirs"
    sources.write_text(WRAPPER)
    assert is_heartbeat_wrapper(sources)
    assert not is_heartbeat_wrapper(tmp_path / "absent")


def test_every_shipped_wrapper_is_recognised() -> None:
    if not PACKAGE_RESOURCE_D.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{PACKAGE_RESOURCE_D} missing (scripts/setup.sh test installs heartbeat)")
        pytest.skip("heartbeat's wrappers are not installed")
    for name in [*CLASSIC, "OCF"]:
        assert is_heartbeat_wrapper(PACKAGE_RESOURCE_D / name), name


def test_find_unit(tmp_path: Path) -> None:
    a, b = tmp_path / "etc", tmp_path / "lib"
    a.mkdir()
    b.mkdir()
    (b / "nginx.service").write_text("")
    (b / "getty@.service").write_text("")
    assert find_unit("nginx", (a, b)) == b / "nginx.service"
    assert find_unit("nginx.service", (a, b)) == b / "nginx.service"
    assert find_unit("getty@tty1.service", (a, b)) == b / "getty@.service"
    assert find_unit("apache2", (a, b)) is None


def test_check_resources_names_file_line_and_places(host: Host, tmp_path: Path) -> None:
    host.agent("Filesystem")
    host.agent("MailTo")
    units = tmp_path / "units"
    units.mkdir()
    (units / "nginx.service").write_text("")
    groups = (
        ResourceGroup(
            "solr2",
            (
                Resource("IPaddr", ("10.0.0.80/24/em1",)),
                Resource("Filesystem", ("/dev/sdb1", "/data", "ext4")),
                Resource("MailTo", ("root",)),
                Resource("solrsvc"),
            ),
            line=3,
        ),
        ResourceGroup(
            "solr1",
            (Resource("systemd:nginx"), Resource("systemd:redis"), Resource("IPaddr", ("x",))),
            line=5,
        ),
    )
    problems = check_resources(
        make_config(*groups),
        "/etc/ha.d/haresources",
        host.config_dir,
        init_dir=host.init_dir,
        ocf_root=host.ocf_root,
        unit_dirs=(units,),
    )
    text = [str(p) for p in problems]
    assert text[0] == (
        "/etc/ha.d/haresources:3: solrsvc: cannot find resource script solrsvc (looked in"
        f" {host.config_dir}/resource.d/solrsvc, {host.init_dir}/solrsvc)"
    )
    assert text[1] == (
        "/etc/ha.d/haresources:5: systemd:redis: cannot find unit redis.service"
        f" (looked in {units})"
    )
    assert text[2].startswith("/etc/ha.d/haresources:5: IPaddr::x: ")
    assert len(text) == 3
    assert all(not p.warning for p in problems)
