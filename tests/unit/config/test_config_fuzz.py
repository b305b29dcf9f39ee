"""No traceback for any input: every configuration front end answers OK or `FILE:LINE: message`.

Hypothesis feeds arbitrary bytes, and byte soups built from the real directives,
to the ha.cf, authkeys and haresources parsers and to a whole ha.d directory;
and arbitrary documents to the YAML form and to hbmon-arbitrator.yaml beside
ha.cf: nested dicts, lists and scalars of any type, both free-form and shaped
like the real layout with arbitrary leaves, plus arbitrary text. The outcome
must be a config (no errors) or None with at least one error, and every problem
must print as `FILE:LINE: message` naming the file it came from. The reload
path (engine `_reload_config`) calls the same `load_any`, so what holds here
holds for a SIGHUP reload.

The profile is fixed (derandomized, no example database): CI runs the same
inputs every time. `EXAMPLES` is the number of inputs per test.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfgtools import AUTHKEYS, HACF, HARESOURCES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hbmon.config import hacf as hacf_module
from hbmon.config import yamlarbiter, yamlform
from hbmon.config.authkeys import parse_authkeys
from hbmon.config.directives import BY_NAME as DIRECTIVE_TABLE
from hbmon.config.hacf import parse_hacf
from hbmon.config.haresources import parse_haresources
from hbmon.config.loader import load_any
from hbmon.config.model import Config
from hbmon.config.problems import Problem, has_errors

EXAMPLES = {
    "hacf_bytes": 1000,
    "hacf_soup": 500,
    "authkeys_bytes": 1000,
    "authkeys_soup": 400,
    "haresources_bytes": 1000,
    "haresources_soup": 400,
    "hadir": 150,
    "yaml_shaped": 600,
    "yaml_free": 300,
    "yaml_text": 300,
    "yaml_file": 100,
    "arbitrator_file": 150,
}


def profile(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return settings(
        max_examples=EXAMPLES[name],
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# "FILE:LINE: message" with an optional "warning: " and a non-empty message.
PROBLEM = re.compile(r"(?P<file>[^\n]+):(?P<line>\d+): (?:warning: )?(?P<message>\S[^\n]*)")


def check_outcome(
    result: object, problems: list[Problem], filename: str, *, lines: int | None = None
) -> None:
    """What every front end must give: a config or None (exactly when some problem is an
    error), and problems that print as FILE:LINE: message, placed in the file."""
    for p in problems:
        text = str(p)
        found = PROBLEM.fullmatch(text)
        assert found is not None, f"not FILE:LINE: message: {text!r}"
        assert text.isprintable(), f"a raw control character: {text!r}"
        assert found["file"] == filename, text
        if lines is not None:
            assert 0 <= int(found["line"]) <= lines, text
    if isinstance(result, Config) or result is None:
        assert (result is None) == has_errors(problems), problems


def line_count(data: bytes) -> int:
    return data.count(b"\n") + 1


# ------------------------------------------------------------ byte soups --
# Words that mean something to one of the parsers, and words that nearly do.
HACF_DIRECTIVES = sorted(
    {
        *hacf_module._SCALAR,
        *hacf_module._WHOLE_LINE,
        *hacf_module._IGNORED,
        *DIRECTIVE_TABLE,  # every heartbeat directive, whatever hbmon makes of it
        "node",
        "udpport",
        "bcast",
        "ping",
        "crm",
        "pacemaker",
        "serial",
        "env",
        "use_logd",
    }
)
TOKENS = [
    "0", "1", "-1", "2", "3", "30", "65535", "65536", "99999999999999999999", "0x10", "1e9",
    "2s", "1.5", "500ms", "250us", "ms", "us", ".5", "-0", "+7", "on", "off", "yes", "no",
    "true", "false", "legacy", "none", "eth0", "lo", "10.0.0.1", "239.0.0.1", "224.0.0.0",
    "256.1.1.1", "1.2.3", "alpha", "beta", "ALPHA", "local0", "classic", "netstring", "file",
    "time", "=", "A=b", "/usr/lib/heartbeat/ipfail", "hacluster", "IPaddr::10.0.0.5/24/eth0",
    "10.0.0.5", "a::", "::b", "\\", ",", "#", "\t", "é", "\x00", "\x85", "\u2028",
    "auth", "crc", "md5", "sha1", "sha256", "s3cr3t",
]  # fmt: skip
# Numbers past every bound: past a float (inf), past int()'s 4300-digit limit.
HUGE = st.tuples(
    st.sampled_from(["", "+", "-", "0" * 400, "1."]),
    st.sampled_from([300, 400, 4400, 6000]).map(lambda n: "9" * n),
    st.sampled_from(["", "s", "ms", "us", "msec", "x"]),
).map("".join)
WORDS = st.sampled_from(TOKENS) | st.text(max_size=12) | HUGE
SEPARATORS = st.sampled_from([" ", "  ", "\t", ",", " , ", "\r", "\\\n", ""])


def soup(first: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    """Files whose lines start with a word the parser knows and go on with any tokens."""
    line = st.tuples(first, st.lists(st.tuples(SEPARATORS, WORDS), max_size=7)).map(
        lambda t: t[0] + "".join(sep + word for sep, word in t[1])
    )
    encoded = st.lists(line, max_size=12).map(lambda ls: "\n".join(ls).encode("utf-8"))
    noise = st.binary(max_size=8)
    return st.tuples(encoded, noise, st.booleans()).map(lambda t: t[0] + t[1] if t[2] else t[0])


HACF_SOUP = soup(st.sampled_from(HACF_DIRECTIVES) | WORDS)
AUTHKEYS_SOUP = soup(
    st.sampled_from(["auth", "auth 1", "1", "2", "1 sha1", "1 crc", "0", "16", "-3", "a"])
)
HARESOURCES_SOUP = soup(st.sampled_from(["alpha", "beta", "gamma", "ALPHA"]) | WORDS)


# --------------------------------------------------------------- ha.d files --
@profile("hacf_bytes")
@given(st.binary(max_size=400))
def test_hacf_any_bytes(data: bytes) -> None:
    result, problems = parse_hacf(data, "ha.cf")
    check_outcome(result, problems, "ha.cf", lines=line_count(data))


@profile("hacf_soup")
@given(HACF_SOUP)
def test_hacf_directive_soup(data: bytes) -> None:
    result, problems = parse_hacf(data, "ha.cf")
    check_outcome(result, problems, "ha.cf", lines=line_count(data))


@profile("authkeys_bytes")
@given(st.binary(max_size=300))
def test_authkeys_any_bytes(data: bytes) -> None:
    result, problems = parse_authkeys(data, "authkeys")
    check_outcome(result, problems, "authkeys", lines=line_count(data))


@profile("authkeys_soup")
@given(AUTHKEYS_SOUP)
def test_authkeys_soup(data: bytes) -> None:
    result, problems = parse_authkeys(data, "authkeys")
    check_outcome(result, problems, "authkeys", lines=line_count(data))
    # A malformed line may be a secret: no problem quotes the secret word we planted.
    assert all("s3cr3t" not in str(p) for p in problems)


@profile("haresources_bytes")
@given(st.binary(max_size=300))
def test_haresources_any_bytes(data: bytes) -> None:
    result, problems = parse_haresources(data, "haresources")
    check_outcome(result, problems, "haresources", lines=line_count(data))


@profile("haresources_soup")
@given(HARESOURCES_SOUP)
def test_haresources_soup(data: bytes) -> None:
    result, problems = parse_haresources(data, "haresources")
    check_outcome(result, problems, "haresources", lines=line_count(data))


def _write_dir(root: Path, hacf: bytes, authkeys: bytes, haresources: bytes) -> Path:
    d = root / "ha.d"
    d.mkdir(exist_ok=True)
    for name, data in (("ha.cf", hacf), ("authkeys", authkeys), ("haresources", haresources)):
        (d / name).write_bytes(data)
    (d / "authkeys").chmod(0o600)
    return d


@profile("hadir")
@given(
    hacf=st.one_of(st.just(HACF), HACF_SOUP, st.binary(max_size=200)),
    authkeys=st.one_of(st.just(AUTHKEYS), AUTHKEYS_SOUP),
    haresources=st.one_of(st.just(HARESOURCES), HARESOURCES_SOUP),
)
def test_ha_directory_any_files(hacf: bytes, authkeys: bytes, haresources: bytes) -> None:
    """The whole chain: parse, build the model, cross-field rules placed back on FILE:LINE."""
    with tempfile.TemporaryDirectory() as tmp:
        d = _write_dir(Path(tmp), hacf, authkeys, haresources)
        cfg, problems = load_any(d, "alpha")
        files = {str(d / n) for n in ("ha.cf", "authkeys", "haresources")}
        for p in problems:
            found = PROBLEM.fullmatch(str(p))
            assert found is not None, str(p)
            assert found["file"] in files, str(p)
        assert (cfg is None) == has_errors(problems)


# -------------------------------------------------------------------- YAML --
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=16)
    | st.sampled_from(TOKENS)
    | HUGE
    | st.dates()
)
ANY = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=4)
    ),
    max_leaves=12,
)


def shaped(shape: Any) -> st.SearchStrategy[Any]:
    """The real layout with arbitrary leaves; any part may be replaced by anything."""
    if isinstance(shape, dict):
        fields = {k: shaped(v) for k, v in shape.items()}
        exact = st.fixed_dictionaries({}, optional=fields)
        extra = st.dictionaries(st.text(max_size=6), ANY, max_size=1)
        node = st.tuples(exact, extra).map(lambda t: {**t[1], **t[0]})
    elif isinstance(shape, list):
        node = st.lists(st.one_of(*(shaped(s) for s in shape)), max_size=3)
    else:
        node = shape
    return st.one_of(node, node, node, ANY)  # mostly shaped, sometimes anything


LEAF = SCALARS
LAYOUT = {
    "node": LEAF,
    "nodes": [LEAF],
    "timers": dict.fromkeys(yamlform._TIMERS, LEAF),
    "udpport": LEAF,
    "media": [dict.fromkeys(yamlform._MEDIUM, LEAF)],
    "ping_nodes": [LEAF, {"name": LEAF, "addresses": [LEAF], "group": LEAF}],
    "auth": {"active": LEAF, "keys": [dict.fromkeys(yamlform._KEY, LEAF)]},
    "resources": [{"node": LEAF, "resources": [LEAF, {"agent": LEAF, "args": [LEAF]}]}],
    "auto_failback": LEAF,
    "msgfmt": LEAF,
    "hopfudge": LEAF,
    "max_rexmit_delay": LEAF,
    "logging": dict.fromkeys(yamlform._LOGGING, LEAF),
    "hbmon": {**dict.fromkeys(yamlform._HBMON, LEAF), "tls": {"cert": LEAF, "key": LEAF}},
    "raw": [[LEAF]],
    "arbitrator": {**dict.fromkeys(yamlarbiter.KEYS, LEAF), "endpoints": [LEAF]},
}
SHAPED = shaped(LAYOUT)


def dump(doc: object) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=False)


def check_yaml(text: str) -> None:
    cfg, problems = yamlform.from_yaml(text, "hbmon.yaml", None)
    check_outcome(cfg, problems, "hbmon.yaml", lines=text.count("\n") + 2)


@profile("yaml_shaped")
@given(SHAPED)
def test_yaml_shaped_documents(doc: object) -> None:
    check_yaml(dump(doc))


@profile("yaml_free")
@given(ANY)
def test_yaml_any_document(doc: object) -> None:
    check_yaml(dump(doc))


# YAML that safe_dump never writes: broken syntax, recursive aliases, tags, values
# its constructors refuse (a 13th month, 5000 digits), nesting deeper than Python.
ODD_YAML = [
    "- [",
    "a: &x [*x]",
    "{",
    "!!python/int 1",
    "nodes: [a]\nnode: 2001-13-45",
    "x: !!timestamp 2001-01-01 99:99:99",
    "udpport: " + "9" * 5000,
    "timers: {keepalive: " + "9" * 400 + "s}",
    "a: " + "[" * 3000 + "]" * 3000,
    "? [a, b]\n: 1",
    "auth: {keys: [{secret: !!binary aGVsbG8=}]}",
    "nodes: !!omap [a: 1]",
    'node: "\\u2028"',
]


@profile("yaml_text")
@given(st.text(max_size=300) | st.sampled_from(ODD_YAML))
def test_yaml_any_text(text: str) -> None:
    check_yaml(text)


@profile("yaml_file")
@given(SHAPED, st.binary(max_size=8))
def test_yaml_file_through_the_loader(doc: object, tail: bytes) -> None:
    """What `hbmon config check --config` and a SIGHUP reload both call."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hbmon.yaml"
        path.write_bytes(dump(doc).encode("utf-8") + tail)
        path.chmod(0o600)
        cfg, problems = load_any(path, "alpha")
        check_outcome(cfg, problems, str(path))


@profile("arbitrator_file")
@given(shaped(LAYOUT["arbitrator"]) | ANY, st.binary(max_size=8))
def test_arbitrator_file_beside_hacf(doc: object, tail: bytes) -> None:
    """hbmon-arbitrator.yaml beside a good ha.d: problems in it, or in ha.cf for the
    timing rule that reads both (the TTL against deadtime), never a traceback."""
    with tempfile.TemporaryDirectory() as tmp:
        d = _write_dir(Path(tmp), HACF, AUTHKEYS, HARESOURCES)
        (d / yamlarbiter.ARBITRATOR_FILE).write_bytes(dump(doc).encode("utf-8") + tail)
        cfg, problems = load_any(d, "alpha")
        files = {str(d / n) for n in ("ha.cf", yamlarbiter.ARBITRATOR_FILE)}
        for p in problems:
            found = PROBLEM.fullmatch(str(p))
            assert found is not None, str(p)
            assert found["file"] in files, str(p)
        assert (cfg is None) == has_errors(problems)


# -------------------------------------------------- known crashes, by name --
def yaml_messages(text: str) -> list[str]:
    cfg, problems = yamlform.from_yaml(text, "hbmon.yaml", None)
    assert cfg is None
    return [str(p) for p in problems]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The crash that opened issue 12: converters outside the error collection.
        (
            "ping_nodes: [{name: gw, addresses: [[1]]}]\n",
            "hbmon.yaml:1: ping_nodes[0].addresses[0]: expected a string, got list",
        ),
        ("nodes: [alpha, false]\n", "hbmon.yaml:1: nodes[1]: expected a string, got bool"),
        (
            "resources: [{node: a, resources: [{agent: IPaddr, args: [{}]}]}]\n",
            "hbmon.yaml:1: resources[0].resources[0].args[0]: expected a string, got dict",
        ),
        ('"\\r": 1\n', "hbmon.yaml:1: ['\\r']: unknown key"),
        ('" ": 1\n', "hbmon.yaml:1: [' ']: unknown key"),
        (
            "timers: {keepalive: " + "9" * 400 + "s}\n",
            "hbmon.yaml:1: timers.keepalive: [999999999999...999999999999s] is too large",
        ),
        ("nodes: [a]\nnode: 2001-13-45\n", "hbmon.yaml:2: YAML value cannot be read: month"),
        ("x: " + "9" * 5000, "hbmon.yaml:1: YAML value cannot be read: Exceeds the limit"),
        ("a: " + "[" * 3000 + "]" * 3000, "hbmon.yaml:0: YAML nested too deeply"),
    ],
)
def test_yaml_inputs_that_crashed(text: str, expected: str) -> None:
    assert any(m.startswith(expected) for m in yaml_messages(text)), yaml_messages(text)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"deadtime " + b"9" * 5000 + b"\n", "ha.cf:1: Invalid deadtime [999"),
        (b"hopfudge " + b"9" * 5000 + b"\n", "ha.cf:1: Invalid hopfudge [999"),
    ],
)
def test_hacf_inputs_that_crashed(data: bytes, expected: str) -> None:
    _, problems = parse_hacf(data, "ha.cf")
    messages = [str(p) for p in problems]
    assert any(m.startswith(expected) for m in messages), messages
    assert all("set_int_max_str_digits" not in m for m in messages)  # no Python advice


def test_leading_zeros_still_read_as_heartbeat_reads_them() -> None:
    result, problems = parse_hacf(b"hopfudge " + b"0" * 5000 + b"7\n", "ha.cf")
    assert (result.hopfudge, problems) == (7, [])


def test_config_check_prints_file_line_not_a_traceback(tmp_path: Path) -> None:
    """`hbmon config check` on the YAML of issue 12, end to end."""
    path = tmp_path / "hbmon.yaml"
    path.write_text(
        "nodes: [alpha, beta]\n"
        "media: [{type: bcast, iface: eth0}]\n"
        'auth: {active: 1, keys: [{index: 1, method: sha1, secret: "k"}]}\n'
        "ping_nodes: [{name: gw, addresses: [[1]]}]\n"
    )
    path.chmod(0o600)
    argv = ["config", "check", "--config", str(path), "--node", "alpha"]
    res = subprocess.run(
        [sys.executable, "-m", "hbmon", *argv], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    *problems, summary = res.stderr.splitlines()
    assert problems[0] == f"{path}:4: ping_nodes[0].addresses[0]: expected a string, got list"
    assert all(PROBLEM.fullmatch(p) and p.startswith(f"{path}:") for p in problems), problems
    assert summary.startswith("configuration invalid: ")
