"""Every external program the code calls is in scripts/external-commands.txt, with the
Debian package that provides it, and scripts/setup.sh installs that package.

A fresh Debian 12 machine has only what setup.sh installs; a test that calls a
program nobody installs passes only on the machine of whoever wrote it (issue 11:
`ping -6` from inetutils-ping). The scan reads the code, it does not run it:

* Python (hbmon/, tests/, bench/, scripts/, grafana/): the argv of subprocess.*,
  asyncio.create_subprocess_exec, os.exec*, Lab.exec(ns, argv); the name given to
  shutil.which / need / require_tools; inside an argv, the program run by
  `ip netns exec NS`, `nsenter … --`, `chroot DIR`, `timeout N`, `env`, `setsid`.
* Shell (scripts/*.sh, .ci/run): the first word of each command.

Commands run inside the systemd test containers (Container.run / .sh) come from
the containers' own packages (tests/systemd/sdrootfs.py), not from setup.sh.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "scripts" / "external-commands.txt"
SETUP = ROOT / "scripts" / "setup.sh"
PY_DIRS = ("hbmon", "tests", "bench", "scripts", "grafana")
SHELL_FILES = (*sorted((ROOT / "scripts").glob("*.sh")), ROOT / ".ci" / "run")

SUBPROCESS_CALLS = {"run", "Popen", "check_call", "check_output", "call"}
EXEC_CALLS = {"create_subprocess_exec", "execv", "execvp", "execvpe", "execl", "execlp"}
NAME_CALLS = {"which", "need", "require_tools"}
# Programs that run another program given later in the same argv, and the options
# of theirs that take a separate value.
WRAPPERS = {"nsenter", "chroot", "timeout", "env", "setsid", "unshare", "setpriv"}
OPTIONS_WITH_VALUE = {"--propagation", "--setgroups", "-t", "--target", "-S", "--setuid",
                      "-G", "--setgid", "-s", "--signal", "-k", "--kill-after"}  # fmt: skip
SHELL_WORDS = {
    "if", "then", "else", "elif", "fi", "for", "in", "do", "done", "while", "until", "case",
    "esac", "function", "!", "{", "}", "[", "[[", "]]", "test", "echo", "printf", "cd", "set",
    "trap", "exit", "return", "local", "export", "read", "shift", "true", "false", ":", ".",
    "source", "eval", "exec", "wait", "kill", "unset", "break", "continue", "command", "pwd",
    "umask", "declare", "readonly", "type", "getopts",
}  # fmt: skip


def table() -> dict[str, str]:
    """program -> Debian package."""
    out: dict[str, str] = {}
    for n, line in enumerate(TABLE.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        assert len(fields) >= 2, f"{TABLE}:{n}: want PROGRAM PACKAGE [who]"
        out[fields[0]] = fields[1]
    return out


def setup_packages() -> set[str]:
    """Every package scripts/setup.sh may install (all modes): its apt_needed arrays."""
    text = SETUP.read_text()
    found: set[str] = set()
    for body in re.findall(r"apt_needed\+?=\(([^)]*)\)", text):
        found.update(w for w in body.split() if not w.startswith("#"))
    return found


# ------------------------------------------------------------------ Python --
def _const(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _is_sys_executable(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "executable"
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
    )


def _programs_in_argv(elts: list[ast.expr]) -> Iterator[str]:
    """The program of an argv literal, and the programs its wrappers run."""
    i = 0
    while i < len(elts):
        if _is_sys_executable(elts[i]):
            yield "python3"
            return
        prog = _const(elts[i])
        if prog is None:
            return
        prog = Path(prog).name if prog.startswith("/") else prog
        yield prog
        rest = elts[i + 1 :]
        if prog == "which":
            yield from (w for e in rest if (w := _const(e)) is not None and not w.startswith("-"))
            return
        if prog == "ip":
            words = [_const(e) for e in rest[:2]]
            if words == ["netns", "exec"] and len(rest) > 3:
                i += 4  # ip netns exec NS PROG
                continue
            return
        if prog not in WRAPPERS:
            return
        # Skip the wrapper's options (and `--`, a chroot dir, a timeout) to its program.
        j = 0
        while j < len(rest):
            word = _const(rest[j])
            if _is_sys_executable(rest[j]):
                break
            if word is None:
                j += 1
                continue
            if word == "--":
                j += 1
                break
            if word in OPTIONS_WITH_VALUE:
                j += 2
                continue
            if word.startswith("-") or "=" in word or re.fullmatch(r"[\d.]+[smh]?", word):
                j += 1
                continue
            if prog == "chroot" and word.startswith("/") and j == 0:
                j += 1
                continue
            break
        if j >= len(rest):
            return
        elts = rest
        i = j


def python_programs(path: Path) -> Iterator[tuple[str, int]]:
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        owner = (
            func.value.id
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
            else ""
        )
        args = node.args
        argv: ast.AST | None = None
        if name in SUBPROCESS_CALLS and owner == "subprocess" and args:
            argv = args[0]
        elif name in EXEC_CALLS and args:
            argv = ast.List(elts=list(args), ctx=ast.Load())
        elif name == "exec" and len(args) == 2:  # Lab.exec(ns, argv)
            argv = args[1]
        elif name in NAME_CALLS:
            for a in args:
                if (word := _const(a)) is not None:
                    yield word, node.lineno
            continue
        if isinstance(argv, ast.List | ast.Tuple):
            for prog in _programs_in_argv(list(argv.elts)):
                yield prog, node.lineno


# ------------------------------------------------------------------- shell --
def _closed(line: str) -> bool:
    try:
        shlex.split(line, comments=True)
    except ValueError:
        return False
    return True


def _shell_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, logical line): continuations, multi-line quotes and arrays
    joined, here-documents dropped."""
    heredoc: str | None = None
    start, acc = 0, ""
    for n, raw in enumerate(text.splitlines(), 1):
        if heredoc is not None:
            if raw.strip() == heredoc:
                heredoc = None
            continue
        if not acc:
            start = n
        if raw.endswith("\\"):
            acc += raw[:-1] + " "
            continue
        line = acc + raw
        open_array = re.search(r"\w\+?=\(", line) and line.count("(") > line.count(")")
        if not _closed(line) or open_array:
            acc = line + "\n"
            continue
        acc = ""
        if m := re.search(r"<<-?\s*'?(\w+)'?", line):
            heredoc = m.group(1)
        yield start, line
        # Command substitutions inside double quotes are commands too.
        for inner in re.findall(r"\$\(([^()]*)\)", line):
            yield start, inner


SEPARATORS = {";", "&&", "||", "|", "&", "(", ")", ";;", "|&"}
KEYWORDS_BEFORE_COMMAND = {"then", "do", "else", "elif", "if", "while", "until"}


def shell_programs(path: Path) -> Iterator[tuple[str, int]]:
    text = path.read_text()
    functions = set(re.findall(r"^\s*([A-Za-z_][\w-]*)\s*\(\)", text, re.M))
    for n, line in _shell_lines(text):
        # Redirections (>&2, 2>&1, &>/dev/null) are not command separators.
        line = re.sub(r"\d*(>&|&>|<&)\d*", " ", line)
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
        lexer.commenters = "#"
        lexer.wordchars += "$-./{}[]=:+*@%,~!"
        try:
            tokens = list(lexer)
        except ValueError:
            continue
        at_start = True
        env_prefix = False
        i = 0
        while i < len(tokens):
            token = tokens[i]
            nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
            i += 1
            if token.endswith("=") and nxt == "()":  # name=() an empty array
                i += 1
                continue
            if token.endswith("=") and nxt == "(":  # name=( array words )
                while i < len(tokens) and tokens[i] != ")":
                    i += 1
                i += 1
                continue
            if token in SEPARATORS or token in KEYWORDS_BEFORE_COMMAND:
                at_start, env_prefix = True, False
                continue
            if not at_start:
                continue
            if re.fullmatch(r"\w+=.*", token) or token in ("!", "{", "exec", "command", "time"):
                continue  # an assignment or a prefix: the command is the next word
            if env_prefix and (token.startswith("-") or "=" in token):
                continue  # env's options and assignments
            at_start = False
            env_prefix = token == "env"
            if env_prefix:
                at_start = True  # env runs the next command word
            if (
                token in SHELL_WORDS
                or token in functions
                or nxt == ")"  # a case pattern
                or re.search(r"[$\"'=*\[\]<>{}]", token)
                or token.startswith(("-", "./", ".venv/"))
            ):
                continue
            yield (Path(token).name if token.startswith("/") else token), n


@functools.cache
def used_programs() -> dict[str, list[str]]:
    """program -> ["file:line", …] of every call found."""
    found: dict[str, list[str]] = {}
    for folder in PY_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if ".venv" in path.parts:
                continue
            for prog, line in python_programs(path):
                found.setdefault(prog, []).append(f"{path.relative_to(ROOT)}:{line}")
    for path in SHELL_FILES:
        for prog, line in shell_programs(path):
            found.setdefault(prog, []).append(f"{path.relative_to(ROOT)}:{line}")
    return found


# ------------------------------------------------------------------- tests --
def test_every_program_called_is_in_the_table() -> None:
    known = table()
    missing = {p: where[:3] for p, where in used_programs().items() if p not in known}
    assert missing == {}, f"add to {TABLE.relative_to(ROOT)} (program, Debian package): {missing}"


def test_every_table_entry_is_still_called() -> None:
    unused = set(table()) - set(used_programs())
    assert unused == set(), f"no longer called, remove from {TABLE.relative_to(ROOT)}"


def _essential(pkg: str) -> bool:
    res = subprocess.run(
        ["dpkg-query", "-W", "-f=${Essential}", pkg], capture_output=True, text=True
    )
    return res.stdout.strip() == "yes"


def _test_extra() -> set[str]:
    text = (ROOT / "pyproject.toml").read_text()
    m = re.search(r"(?ms)^test = \[(.*?)^\]", text)
    assert m, "pyproject.toml: no [project.optional-dependencies] test"
    return {re.split(r"[<>=\[ ]", name)[0] for name in re.findall(r'"([^"]+)"', m.group(1))}


def _need_dpkg() -> None:
    if shutil.which("dpkg-query") is None:
        pytest.skip("not a Debian system")


def test_setup_installs_every_package_of_the_table() -> None:
    _need_dpkg()
    apt = setup_packages()
    missing = {}
    for prog, pkg in table().items():
        if pkg.startswith("pip:"):
            if pkg[4:] not in _test_extra():
                missing[prog] = f"{pkg} (not in pyproject's test extra)"
        elif not any(p in apt or _essential(p) for p in pkg.split("|")):
            missing[prog] = pkg
    assert missing == {}, "scripts/setup.sh does not install these"


def test_each_package_really_provides_its_program() -> None:
    """The mapping is checked against dpkg on this machine, where setup.sh installed
    every package (`ping` from iputils-ping, not inetutils-ping). A program may be
    an alternative (which -> which.debianutils)."""
    _need_dpkg()
    wrong = {}
    for prog, pkg in table().items():
        if pkg.startswith("pip:"):
            continue
        names: set[str] = set()
        for one in pkg.split("|"):
            res = subprocess.run(["dpkg-query", "-L", one], capture_output=True, text=True)
            names |= {
                Path(p).name for p in res.stdout.splitlines() if re.search(r"/s?bin/[^/]+$", p)
            }
        if prog not in names and not any(n.startswith(prog + ".") for n in names):
            wrong[prog] = pkg
    assert wrong == {}


def _variants(path: str) -> set[str]:
    """`path` and its merged-/usr twin (/bin/x is /usr/bin/x)."""
    out = {path}
    for a, b in (("/usr/bin/", "/bin/"), ("/usr/sbin/", "/sbin/")):
        if path.startswith(a):
            out.add(b + path[len(a) :])
        elif path.startswith(b):
            out.add(a + path[len(b) :])
    return out


def _ships(pkg: str, *paths: str) -> bool:
    """Whether dpkg's file list of `pkg` has one of `paths`."""
    info = Path("/var/lib/dpkg/info")
    wanted = set().union(*(_variants(p) for p in paths))
    for listing in (info / f"{pkg}.list", *info.glob(f"{pkg}:*.list")):
        if listing.exists() and wanted & set(listing.read_text().splitlines()):
            return True
    return False


def _shipped_md5(pkg: str, path: str) -> str | None:
    """The md5 dpkg recorded for `path` of `pkg` (what `dpkg --verify` compares)."""
    info = Path("/var/lib/dpkg/info")
    rel = {path.lstrip("/"), path.lstrip("/").removeprefix("usr/")}
    for sums in (info / f"{pkg}.md5sums", *info.glob(f"{pkg}:*.md5sums")):
        if not sums.exists():
            continue
        for line in sums.read_text().splitlines():
            digest, _, name = line.partition("  ")
            if name in rel or name.removeprefix("usr/") in rel:
                return digest
    return None


def test_the_program_on_path_is_the_packages_own() -> None:
    """What a test really runs is the first one on PATH: it must be the package's file,
    unmodified (a ping copied over iputils' would pass the checks above)."""
    _need_dpkg()
    wrong = {}
    for prog, pkg in table().items():
        if pkg.startswith("pip:") or prog == "python3":  # python3: tests use sys.executable
            continue
        found = shutil.which(prog)
        if found is None:
            wrong[prog] = "not on PATH"
            continue
        real = str(Path(found).resolve())
        owner = next((one for one in pkg.split("|") if _ships(one, real, found)), None)
        if owner is None:
            wrong[prog] = f"{found} is not {pkg}'s"
            continue
        shipped = _shipped_md5(owner, real)
        if shipped is not None and hashlib.md5(Path(real).read_bytes()).hexdigest() != shipped:
            wrong[prog] = f"{real} differs from the file {pkg} shipped"
    assert wrong == {}


def test_the_scanner_finds_calls_through_wrappers(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import subprocess, sys, shutil\n"
        "subprocess.run(['ip', 'netns', 'exec', ns, 'ping', '-6', 'x'])\n"
        "subprocess.run(['nsenter', '--net=/x', '--', 'tcpdump', '-i', 'em1'])\n"
        "subprocess.run(['setpriv', '--inh-caps=-all', sys.executable, '-m', 'hbmon'])\n"
        "lab.exec(ns, ['curl', '-s', 'x'])\n"
        "shutil.which('promtool')\n"
        "run(['config', 'check'])  # an in-process CLI call, not a program\n"
    )
    found = sorted(p for p, _ in python_programs(sample))
    assert found == ["curl", "ip", "nsenter", "ping", "promtool", "python3", "setpriv", "tcpdump"]
    script = tmp_path / "s.sh"
    script.write_text(
        "#!/bin/sh\nset -e\nf() { :; }\nX=1 apt-get update && dpkg-query -W p | grep -q ok\n"
        "f\nif [ -x .venv/bin/python ]; then exec .venv/bin/pytest; fi\n"
        'v="$(sed -n 1p x)"\ncat <<EOF\nnot a command\nEOF\n'
    )
    assert sorted({p for p, _ in shell_programs(script)}) == [
        "apt-get", "cat", "dpkg-query", "grep", "sed",
    ]  # fmt: skip
