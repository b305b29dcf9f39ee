"""The classic-agent table against heartbeat's own wrappers.

Each wrapper of Debian's heartbeat (/etc/ha.d/resource.d) is copied into a
temporary directory with hto-mapfuncs, their fixed paths pointed there, and
run with a stub in place of the OCF agent; the stub writes down the action
and the OCF variables it was given. hbmon's OcfAgent runs the same stub. The
two environments must be equal: the mapping is checked against heartbeat's
code, not restated.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from restools import FakeNetlink, FakeWorld

from hbmon.config.model import SCRIPT_PATH, Resource, ResourceSettings
from hbmon.io.resources import scripts
from hbmon.io.resources.agents import Context, Outcome, ResourceIO
from hbmon.io.resources.classic import CLASSIC, UsageError
from hbmon.io.resources.ocf import OcfAgent, instance_variables
from hbmon.io.resources.resolve import Kind, resolve

PACKAGE_RESOURCE_D = Path("/etc/ha.d/resource.d")
HTO_MAPFUNCS = "hto-mapfuncs"
# heartbeat's status rule (ResourceManager we_own_resource), to read the wrapper's answer.
NOT_RUNNING_WORDS = re.compile(r"[Nn][Oo][Tt] .*[Rr]unning")
RUNNING_WORDS = re.compile(r"[Rr]unning|OK")
OCF_CODES = (
    "OCF_SUCCESS=0\nOCF_ERR_GENERIC=1\nOCF_ERR_ARGS=2\nOCF_ERR_UNIMPLEMENTED=3\n"
    "OCF_ERR_PERM=4\nOCF_ERR_INSTALLED=5\nOCF_ERR_CONFIGURED=6\nOCF_NOT_RUNNING=7\n"
)


def require_wrappers() -> None:
    """heartbeat's wrappers are the reference; without them this cannot be checked."""
    if (PACKAGE_RESOURCE_D / HTO_MAPFUNCS).is_file():
        return
    problem = f"heartbeat's wrappers are not installed in {PACKAGE_RESOURCE_D}"
    if os.environ.get("CI"):
        pytest.fail(f"{problem} (scripts/setup.sh test installs heartbeat)")
    pytest.skip(problem)


def relocate(text: str, old: str, new: str) -> str:
    """Replace one fixed path of heartbeat's file; it must be there."""
    assert old in text, f"heartbeat's file no longer has {old!r}"
    return text.replace(old, new)


@dataclass
class Harness:
    root: Path
    ocf_root: Path
    config_dir: Path

    @property
    def dump(self) -> Path:
        return self.root / "dump"

    def stub(self, provider: str, agent: str) -> None:
        """An OCF agent that writes down its action and OCF variables; monitor says 7
        unless the file `running` exists."""
        path = self.ocf_root / "resource.d" / provider / agent
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            "#!/bin/sh\n"
            f'{{ echo "ACTION=$1"; env | grep "^OCF_"; }} > "{self.dump}"\n'
            f'if [ "$1" = monitor ] || [ "$1" = status ]; then [ -e "{self.root}/running" ]'
            " && exit 0; exit 7; fi\n"
            "exit 0\n"
        )
        path.chmod(0o755)

    def read_dump(self) -> dict[str, str] | None:
        if not self.dump.exists():
            return None
        out = {}
        for line in self.dump.read_text().splitlines():
            name, _, value = line.partition("=")
            out[name] = value
        self.dump.unlink()
        return out

    def wrapper(
        self, name: str, args: tuple[str, ...], op: str, env: dict[str, str] | None = None
    ) -> tuple[subprocess.CompletedProcess[str], dict[str, str] | None]:
        res = subprocess.run(
            [str(self.root / "resource.d" / name), *args, op],
            capture_output=True,
            text=True,
            env={"PATH": SCRIPT_PATH, **(env or {})},
            cwd=self.root,
            timeout=30,
        )
        return res, self.read_dump()

    def context(self) -> Context:
        world = FakeWorld(netlink=FakeNetlink())
        io = ResourceIO(
            netlink=world.netlink,
            announce=world.announce,
            probe_owner=world.probe_owner,
            run=scripts.run_command,
            init_dir=self.root / "init.d",
            ocf_root=self.ocf_root,
        )
        return Context(io, ResourceSettings(), self.config_dir)

    def agent(self, resource: Resource) -> OcfAgent:
        found = resolve(resource, self.config_dir, self.root / "init.d", self.ocf_root)
        assert found.kind is Kind.OCF, found
        return OcfAgent(resource, self.context(), found.ocf, found.error)

    def start(self, resource: Resource) -> tuple[Outcome, dict[str, str] | None]:
        outcome = asyncio.run(self.agent(resource).start())
        return outcome, self.read_dump()

    def status(self, resource: Resource) -> tuple[bool, dict[str, str] | None]:
        running, _ = asyncio.run(self.agent(resource).status())
        return running, self.read_dump()


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    require_wrappers()
    root = tmp_path_factory.mktemp("classic")
    h = Harness(root, root / "ocf", root / "ha.d")
    h.config_dir.mkdir()
    rdir = root / "resource.d"
    rdir.mkdir()
    (root / "shellfuncs").write_text("ha_log() { :; }\n")
    hto = (PACKAGE_RESOURCE_D / HTO_MAPFUNCS).read_text()
    hto = relocate(hto, ". /etc/ha.d/shellfuncs", f". {root}/shellfuncs")
    hto = relocate(hto, "OCF_ROOT_DIR=/usr/lib/ocf\n", f"OCF_ROOT_DIR={h.ocf_root}\n")
    hto = relocate(
        hto, "OCF_RA_DIR=/usr/lib/ocf/resource.d/", f"OCF_RA_DIR={h.ocf_root}/resource.d/"
    )
    (rdir / HTO_MAPFUNCS).write_text(hto)
    for name in CLASSIC:
        text = (PACKAGE_RESOURCE_D / name).read_text()
        text = relocate(text, "/etc/ha.d/resource.d//hto-mapfuncs", f"{rdir}/{HTO_MAPFUNCS}")
        (rdir / name).write_text(text)
        (rdir / name).chmod(0o755)
        h.stub("heartbeat", name)
    (h.ocf_root / "resource.d" / "heartbeat" / ".ocf-shellfuncs").write_text(OCF_CODES)
    ocf = relocate(
        (PACKAGE_RESOURCE_D / "OCF").read_text(), "HA_HBCONF_DIR=/etc/ha.d", f"HA_HBCONF_DIR={root}"
    )
    (rdir / "OCF").write_text(ocf)
    (rdir / "OCF").chmod(0o755)
    yield h
    shutil.rmtree(root, ignore_errors=True)


WAS_CONFIG = "/etc/hostname"  # a file that exists: WAS takes it as its configuration file
CASES: list[tuple[str, tuple[str, ...]]] = [
    ("AudibleAlarm", ()),
    ("AudibleAlarm", ("solr1",)),
    ("AudibleAlarm", ("solr1", "solr2")),
    ("Delay", ()),
    ("Delay", ("5",)),
    ("Delay", ("5", "7")),
    ("Delay", ("1", "2", "3")),
    ("Filesystem", ("/dev/sdb1",)),
    ("Filesystem", ("/dev/sdb1", "/data")),
    ("Filesystem", ("/dev/sdb1", "/data", "ext4")),
    ("Filesystem", ("/dev/sdb1", "/data", "ext4", "noatime,ro")),
    ("Filesystem", ("-Ldata1", "/data1", "ext2")),
    ("Filesystem", ("server:/data1", "/data1", "nfs", "ro")),
    ("Filesystem", ("/dev/sdb1", "/data", "ext4", "ro", "extra")),
    ("ICP", ("c1", "/dev/hda")),
    ("ICP", ("c1",)),
    ("IPsrcaddr", ("10.0.0.5",)),
    ("IPsrcaddr", ()),
    ("IPsrcaddr", ("10.0.0.5", "x")),
    ("IPv6addr", ("2001:db8:0:0:0:0:0:5",)),
    ("IPv6addr", ("2001:db8:0:0:0:0:0:5/64",)),
    ("IPv6addr", ("2001:db8:0:0:0:0:0:5/64/eth0",)),
    ("IPv6addr", ("2001:db8:0:0:0:0:0:5/64/eth0/x",)),
    ("IPv6addr", ("2001:db8:0:0:0:0:0:5//eth0",)),
    ("IPv6addr", ("2001:db8:0:0:0:0:0:5/",)),
    ("LVM", ("vg0",)),
    ("LVM", ()),
    ("LinuxSCSI", ("0:0:1",)),
    ("MailTo", ("root",)),
    ("MailTo", ("root", "Solr")),
    ("MailTo", ("root,ops@example.org", "BigImportantWebServer")),
    ("MailTo", ()),
    ("MailTo", ("a", "b", "c")),
    ("Raid1", ("/etc/raidtab", "/dev/md0")),
    ("Raid1", ("/etc/raidtab",)),
    ("SendArp", ("10.0.0.5/eth0",)),
    ("SendArp", ("10.0.0.5",)),
    ("SendArp", ("10.0.0.5/eth0/x",)),
    ("ServeRAID", ("1", "2")),
    ("WAS", ()),
    ("WAS", ("9080",)),
    ("WAS", (WAS_CONFIG,)),
    ("WAS", ("not-a-file",)),
    ("WinPopup", ()),
    ("WinPopup", ("/etc/hosts.win",)),
    ("WinPopup", ("a", "b")),
    ("Xinetd", ("tftp",)),
    ("apache", ()),
    ("apache", ("/etc/apache2/apache2.conf",)),
    ("apache", ("a", "b")),
    ("db2", ("db2inst1",)),
    ("ids", ()),
    ("ids", ("/opt/informix", "srv1", "onconfig.srv1")),
    ("ids", ("/opt/informix",)),
    ("portblock", ("tcp", "80,443", "block")),
    ("portblock", ("tcp", "80")),
]


def test_every_wrapper_has_cases() -> None:
    assert {name for name, _ in CASES} == set(CLASSIC)
    # Every wrapper heartbeat ships, except the two hbmon runs natively, is in the table.
    shipped = {"AudibleAlarm", "Delay", "Filesystem", "ICP", "IPaddr", "IPaddr2", "IPsrcaddr"}
    shipped |= {"IPv6addr", "LVM", "LinuxSCSI", "MailTo", "OCF", "Raid1", "SendArp"}
    shipped |= {"ServeRAID", "WAS", "WinPopup", "Xinetd", "apache", "db2", "ids", "portblock"}
    assert set(CLASSIC) == shipped - {"IPaddr", "IPaddr2", "OCF"}


@pytest.mark.parametrize(("name", "args"), CASES, ids=["::".join((n, *a)) for n, a in CASES])
def test_start_gets_what_the_wrapper_exports(
    harness: Harness, name: str, args: tuple[str, ...]
) -> None:
    res, theirs = harness.wrapper(name, args, "start")
    resource = Resource(name, args)
    if not _accepted(name, args):
        # The wrapper refuses these too (usage, exit 1) and never runs the agent.
        assert theirs is None, f"the wrapper ran the agent with {theirs}"
        assert res.returncode != 0
        outcome, ours = harness.start(resource)
        assert ours is None
        assert outcome.ok is False
        return
    call = CLASSIC[name].call(args)
    assert theirs is not None, f"the wrapper refused: {res.stdout}{res.stderr}"
    assert res.returncode == 0
    outcome, ours = harness.start(resource)
    assert outcome.ok is True, outcome
    assert ours is not None
    assert ours == theirs
    assert ours["ACTION"] == "start"
    assert call.environment(harness.ocf_root) == {k: v for k, v in ours.items() if k != "ACTION"}


@pytest.mark.parametrize("running", [True, False])
@pytest.mark.parametrize("name", sorted(CLASSIC))
def test_status_is_monitor_and_reads_as_heartbeat_reads_the_wrapper(
    harness: Harness, name: str, running: bool
) -> None:
    args = next(a for n, a in CASES if n == name and _accepted(n, a))
    flag = harness.root / "running"
    if running:
        flag.touch()
    try:
        res, theirs = harness.wrapper(name, args, "status")
        assert theirs is not None
        assert theirs["ACTION"] == "monitor"
        heartbeat_says = not NOT_RUNNING_WORDS.search(res.stdout) and bool(
            RUNNING_WORDS.search(res.stdout)
        )
        assert heartbeat_says is running, res.stdout
        ours_running, ours = harness.status(Resource(name, args))
        assert ours is not None
        # Delay's monitor sleeps (30 s) before it answers as its status does.
        assert ours["ACTION"] == ("status" if name == "Delay" else "monitor")
        assert ours_running is running
    finally:
        flag.unlink(missing_ok=True)


def _accepted(name: str, args: tuple[str, ...]) -> bool:
    try:
        CLASSIC[name].call(args)
    except UsageError:
        return False
    return True


def test_ipv6addr_joins_an_address_that_haresources_split() -> None:
    # `IPv6addr::2001:db8::5/64/eth0` arrives as three arguments; heartbeat's
    # wrapper refused it (usage), hbmon joins it back.
    call = CLASSIC["IPv6addr"].call(("2001:db8", "5/64/eth0"))
    assert call.params == (("ipv6addr", "2001:db8::5"), ("cidr_netmask", "64"), ("nic", "eth0"))
    assert call.instance == "IPv6addr_2001:db8::5/64/eth0"


INSTANCE_FILE = """\
# a Dummy for the web tier
OCF_RESKEY_state=/run/web.state   # where it keeps its state
  OCF_RESKEY_fake="two words"
OCF_RESKEY_count=3
export OCF_RESKEY_flag=yes
"""


def test_generic_ocf_wrapper_gets_the_instance_variables(harness: Harness) -> None:
    harness.stub("test", "Dummy")
    inst = harness.config_dir / "conf" / "OCF" / "Dummy" / "web"
    inst.parent.mkdir(parents=True)
    inst.write_text(INSTANCE_FILE)
    try:
        # OCF_AGENTS as the wrapper documents it: the directory above the providers.
        env = {
            "OCF_AGENTS": str(harness.ocf_root / "resource.d"),
            "HA_DIR": str(harness.config_dir),
        }
        res, theirs = harness.wrapper("OCF", ("Dummy", "web"), "start", env)
        assert theirs is not None, res.stdout + res.stderr
        outcome, ours = harness.start(Resource("OCF", ("Dummy", "web")))
        assert outcome.ok is True, outcome
        assert ours is not None

        def reskeys(env: dict[str, str]) -> dict[str, str]:
            return {k: v for k, v in env.items() if k.startswith("OCF_RESKEY_")}

        assert (
            reskeys(ours)
            == reskeys(theirs)
            == {
                "OCF_RESKEY_state": "/run/web.state",
                "OCF_RESKEY_fake": "two words",
                "OCF_RESKEY_count": "3",
                "OCF_RESKEY_flag": "yes",
            }
        )
        # What hto-mapfuncs gives every agent (heartbeat's OCF wrapper did not, so
        # its agents could not find ocf-shellfuncs without OCF_ROOT).
        assert ours["OCF_ROOT"] == str(harness.ocf_root)
        assert ours["OCF_TYPE"] == "Dummy"
        assert ours["OCF_RESOURCE_INSTANCE"] == "web"
    finally:
        shutil.rmtree(harness.config_dir / "conf")


def test_instance_variables() -> None:
    assert instance_variables(INSTANCE_FILE) == [
        "OCF_RESKEY_state",
        "OCF_RESKEY_fake",
        "OCF_RESKEY_count",
        "OCF_RESKEY_flag",
    ]
    assert instance_variables("# OCF_RESKEY_a=1\necho a=b\nx=1\nx=2\n") == ["x"]
