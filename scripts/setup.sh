#!/usr/bin/env bash
# Set up hbmon on a Debian machine (as root) and run it.
#   scripts/setup.sh demo   install the agent and run `hbmon demo`
#   scripts/setup.sh test   install what the tests need, then lint, type-check and run every test
# Every dependency is installed here: Debian packages with apt-get, Python
# packages into the project's virtualenv (.venv).
set -euo pipefail
trap 'echo "setup.sh: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
mode="${1:-demo}"; shift || true

# Every program the code calls is in scripts/external-commands.txt with its package;
# tests/unit/test_external_commands.py checks that each package is installed here.
apt_needed=(iproute2 python3 python3-minimal python3-venv python3-pip ca-certificates)
if [ "$mode" = test ]; then
  # promtool (prometheus) checks the metrics exposition; nftables and tcpdump serve the fault tests.
  # prometheus-alertmanager (amtool, the e2e alert path) and systemd (systemd-analyze, absent
  # from a minimal Debian) check the deliverables in alerts/ and systemd/.
  apt_needed+=(prometheus prometheus-alertmanager systemd nftables tcpdump)
  # iputils' ping (ping -6, -W in seconds): a fresh machine may have inetutils-ping or none.
  apt_needed+=(iputils-ping)
  # heartbeat (3.0.6, with resource-agents and cluster-glue) runs next to hbmon in
  # tests/interop; it must never run as a service on this host (see below).
  apt_needed+=(heartbeat)
  # Fencing: cluster-glue's stonith command and plugins (hbmon runs them; heartbeat pulls
  # it in too, named here for hbmon's own sake), and Debian's fence agents (fence_dummy
  # in the unit tests, the fence-agent kind of device).
  apt_needed+=(cluster-glue fence-agents)
  # node and npm run the dashboards' check against Grafana's schema (grafana/schema).
  command -v npm >/dev/null 2>&1 || apt_needed+=(nodejs npm)
  # The classic agents run as resource-agents' OCF agents without heartbeat (hbmon's
  # package depends on resource-agents); the agent tests mount an ext4 loop device
  # (Filesystem needs modprobe from kmod and fuser from psmisc).
  apt_needed+=(resource-agents e2fsprogs mount kmod psmisc)
  # Test certificates, pgrep/sysctl, the bench's revision.
  apt_needed+=(openssl procps git)
  # The package and the systemd container tests (tests/systemd): scripts/build-deb.sh's
  # build dependencies (debian/control), debootstrap for the cached Debian 12 roots,
  # lintian (mount, e2fsprogs, kmod above serve the Filesystem tests too).
  apt_needed+=(apt dpkg-dev debhelper dh-python pybuild-plugin-pyproject python3-all
    python3-setuptools python3-wheel debootstrap lintian)
  # socat's pty pairs stand in for the null-modem cable of the serial-medium tests.
  apt_needed+=(socat)
  # The arbitrator's tests run a real etcd (3.4) cluster in namespaces and on loopback
  # (hbmon/testing/labetcd.py), with etcdctl for its health checks; never as a service here.
  apt_needed+=(etcd-server etcd-client)
fi
missing=()
for p in "${apt_needed[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  apt-get update -qq
  # No package may start a service on this host during the install (heartbeat
  # would otherwise start on the host's network): a policy-rc.d that denies
  # every start, removed afterwards unless one was already there.
  own_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    own_policy=1
    printf '#!/bin/sh\n# hbmon setup.sh: no service starts during the install\nexit 101\n' \
      >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ -n "$own_policy" ]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
fi
if [ "$mode" = test ]; then
  # heartbeat and etcd must stay off on the host: masked where systemd runs, and checked.
  if [ -d /run/systemd/system ]; then
    for unit in heartbeat.service etcd.service; do
      systemctl disable --now "$unit" >/dev/null 2>&1 || true
      systemctl mask "$unit" >/dev/null 2>&1 || true
    done
  fi
  # Our own network namespace is the host's here (pid 1's may not be readable).
  host_net="$(readlink /proc/self/ns/net 2>/dev/null || true)"
  for p in $(pgrep -x heartbeat || true); do
    if [ "$(readlink "/proc/$p/ns/net" 2>/dev/null)" = "$host_net" ]; then
      echo "setup: heartbeat (pid $p) runs on the host's network; stop it first" >&2
      exit 1
    fi
  done
  # An etcd the package started (where no policy-rc.d held it back) listens on the
  # host's 2379/2380: stop it; the tests run their own members.
  if [ -d /run/systemd/system ] && systemctl is-active --quiet etcd.service; then
    systemctl stop etcd.service
  fi
fi

py=python3
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
extra=""
[ "$mode" = test ] && extra="[test]"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extra}"
if [ "$mode" = test ]; then
  # @grafana/schema and tsc, as grafana/schema/package-lock.json pins them.
  npm ci --prefix grafana/schema --no-audit --no-fund --silent
fi

case "$mode" in
  demo)
    exec .venv/bin/hbmon demo "$@"
    ;;
  test)
    export PATH="$PWD/.venv/bin:$PATH"
    # Under this command a missing tool fails its test instead of skipping it (the tests read CI).
    export CI="${CI:-true}"
    echo "== ruff"; ruff check hbmon tests grafana bench && ruff format --check hbmon tests grafana bench
    echo "== mypy --strict"; mypy hbmon grafana/generate.py
    echo "== pytest"
    # Three workers, a test file per worker at a time (module fixtures stay in one
    # process; every namespace, port and directory a test makes is its own): most of
    # the suite's time is namespace tests waiting on real timers. The suite halves
    # (22 -> 11 min on a busy 2-core machine). HBMON_TEST_WORKERS=0 runs it in one.
    rc=0; pytest -q -n "${HBMON_TEST_WORKERS:-3}" --dist loadfile "$@" || rc=$?
    # pytest exits 5 when it collected nothing: that is a failure here.
    exit "$rc"
    ;;
  *)
    echo "usage: scripts/setup.sh demo|test" >&2; exit 2
    ;;
esac
