"""authkeys rules (spec §2); secrets never show up in a message."""

from __future__ import annotations

import pytest

from hbmon.config.authkeys import AuthKeys, check_mode, parse_authkeys
from hbmon.config.model import AuthMethod
from hbmon.config.problems import Problem

F = "authkeys"
SECRET = "Sup3r-Secret"


def parse(text: bytes) -> tuple[AuthKeys, list[Problem]]:
    result, problems = parse_authkeys(text, F)
    for p in problems:
        assert SECRET not in str(p)
        assert SECRET.lower() not in str(p).lower()
    return result, problems


def test_sha1_key_is_ascii_bytes_not_hex_decoded() -> None:
    keys, problems = parse_authkeys(b"auth 1\n1 sha1 0832bedde820a9bcf6858c0ff6e5e82a\n", F)
    assert problems == []
    assert keys.config is not None
    key = keys.config.signing_key
    assert key.method is AuthMethod.SHA1
    assert key.secret == b"0832bedde820a9bcf6858c0ff6e5e82a"
    assert keys.active_line == 1
    assert keys.key_lines == (2,)


def test_all_methods_and_verify_keys() -> None:
    text = b"# rotate\nauth 3\n1 crc\n2 md5 k2\n3 sha1 k3\n15 sha256 k15\n0 md5 k0\n"
    keys, problems = parse_authkeys(text, F)
    assert keys.config is not None
    assert keys.config.active == 3
    assert [(k.index, k.method.value) for k in keys.config.keys] == [
        (1, "crc"),
        (2, "md5"),
        (3, "sha1"),
        (15, "sha256"),
        (0, "md5"),
    ]
    # crc is accepted, loudly, by the model check (validate.py), not the parser
    assert problems == []


def test_crlf_and_trailing_comment() -> None:
    keys, problems = parse_authkeys("auth 1\r\n1 sha1 abc # 密钥\r\n".encode(), F)
    assert problems == []
    assert keys.config is not None
    assert keys.config.signing_key.secret == b"abc"


def test_hash_inside_key_is_key_material() -> None:
    keys, _ = parse_authkeys(b"auth 1\n1 sha1 ab#cd\n", F)
    assert keys.config is not None
    assert keys.config.signing_key.secret == b"ab#cd"


def test_space_in_key_drops_rest_with_warning() -> None:
    keys, problems = parse(f"auth 1\n1 sha1 {SECRET} more words\n".encode())
    assert keys.config is not None
    assert keys.config.signing_key.secret == SECRET.encode()
    assert [str(p) for p in problems] == [
        "authkeys:2: warning: auth key [1]: text after a space is not part of the key and is"
        " ignored (heartbeat keys are one word)"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"auth 1\n1 crc abc\n", "authkeys:2: Auth method [crc] doesn't use a key"),
        (b"auth 1\n1 md5\n", "authkeys:2: Auth method [md5] requires a key"),
        (b"auth 1\n1 sha1\n", "authkeys:2: Auth method [sha1] requires a key"),
        (b"auth 1\n1 sha256 # no key\n", "authkeys:2: Auth method [sha256] requires a key"),
        (b"auth 1\n16 sha1 abc\n", "authkeys:2: Invalid authnum [16]: must be 0 to 15"),
        (b"auth 1\n1 sha512 abc\n", "authkeys:2: Invalid authtype for key [1]"),
        (b"auth 1\n1 SHA1 abc\n", "authkeys:2: Invalid authtype for key [1]"),
        (b"auth one\n1 sha1 abc\n", "authkeys:1: Invalid auth line: expected `auth N`"),
        (b"auth 1\nsha1 abc\n", "authkeys:2: Auth line is invalid"),
    ],
)
def test_key_line_errors(text: bytes, expected: str) -> None:
    _, problems = parse_authkeys(text, F)
    assert str(problems[0]).startswith(expected)


def test_missing_auth_directive_is_whole_file() -> None:
    keys, problems = parse_authkeys(b"1 sha1 abc\n", F)
    assert keys.config is None
    assert [str(p) for p in problems] == [
        "authkeys:0: Missing auth directive in keyfile [authkeys]"
    ]


def test_auth_key_not_found() -> None:
    keys, problems = parse_authkeys(b"auth 2\n1 sha1 abc\n", F)
    assert keys.config is None
    assert [str(p) for p in problems] == [
        "authkeys:1: Auth Key [2] not found in keyfile [authkeys]"
    ]


def test_auth_after_key_line_warns_heartbeat_would_refuse() -> None:
    keys, problems = parse_authkeys(b"1 sha1 abc\nauth 1\n", F)
    assert keys.config is not None
    assert problems[0].warning
    assert "put `auth N` first" in problems[0].message


def test_redefined_key_last_wins() -> None:
    keys, problems = parse_authkeys(b"auth 1\n1 sha1 abc\n1 md5 def\n", F)
    assert keys.config is not None
    assert keys.config.signing_key.method is AuthMethod.MD5
    assert [p.line for p in problems if p.warning] == [3]


@pytest.mark.parametrize(
    "line",
    [
        f"{SECRET}".encode(),
        f"auth{SECRET}".encode(),
        f"1 {SECRET}".encode(),
        f"x sha1 {SECRET}".encode(),
        f"1 crc {SECRET}".encode(),
        f"99 sha1 {SECRET}".encode(),
        f"1 sha1 {SECRET} {SECRET}".encode(),
    ],
)
def test_secrets_never_in_messages(line: bytes) -> None:
    _, problems = parse(b"auth 1\n" + line + b"\n")
    assert problems


@pytest.mark.parametrize(
    ("mode", "bad"),
    [(0o600, False), (0o400, False), (0o620, False), (0o640, True), (0o604, True), (0o644, True)],
)
def test_permissions(mode: int, bad: bool) -> None:
    problems = check_mode(0o100000 | mode, "/etc/ha.d/authkeys")
    if bad:
        assert [str(p) for p in problems] == [
            "/etc/ha.d/authkeys:0: Bad permissions on keyfile [/etc/ha.d/authkeys],"
            " 600 recommended."
        ]
    else:
        assert problems == []
