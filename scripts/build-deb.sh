#!/usr/bin/env bash
# Build the Debian package of this checkout (as root, on Debian 12):
#   scripts/build-deb.sh        -> dist/hbmon_<version>_all.deb (its path is the last line)
# It installs its own build dependencies (debian/control's Build-Depends) with apt-get.
# The build runs on a copy of the tree (uncommitted changes included), so the
# checkout stays clean. HBMON_DEB_VERSION=X builds the same code as version X
# (the upgrade tests use it to make a "newer" package).
set -euo pipefail
trap 'echo "build-deb.sh: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
top="$PWD"

if [ "$(id -u)" != 0 ]; then
  echo "build-deb.sh: run as root (it installs the build dependencies)" >&2
  exit 1
fi
if ! grep -qs '^VERSION_ID="12"' /etc/os-release; then
  echo "build-deb.sh: warning: not Debian 12; the package targets Debian 12 (bookworm)" >&2
fi

# dpkg-dev (dpkg-buildpackage, dpkg-checkbuilddeps) first, then the Build-Depends.
if ! command -v dpkg-checkbuilddeps >/dev/null || ! dpkg-checkbuilddeps >/dev/null 2>&1; then
  echo "build-deb: installing build dependencies" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    dpkg-dev build-essential >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -qq ./ >/dev/null
fi

version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' hbmon/__init__.py)"
changelog_version="$(dpkg-parsechangelog -S Version)"
if [ "$version" != "$changelog_version" ]; then
  echo "build-deb.sh: hbmon/__init__.py says $version, debian/changelog $changelog_version" >&2
  exit 1
fi

work="$(mktemp -d /tmp/hbmon-deb.XXXXXX)"
trap 'rm -rf "$work"' EXIT
src="$work/hbmon"
mkdir "$src"
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # Tracked and new files, not what .gitignore excludes (.venv, dist, caches).
  git -C "$top" ls-files -z --cached --others --exclude-standard \
    | (cd "$top" && xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) \
    | tar -C "$top" --null -T - -cf - | tar -C "$src" -xf -
else
  tar -C "$top" --exclude=./.venv --exclude=./dist --exclude=./build -cf - . | tar -C "$src" -xf -
fi

if [ -n "${HBMON_DEB_VERSION:-}" ]; then
  version="$HBMON_DEB_VERSION"
  sed -i "s/^__version__ = \".*\"$/__version__ = \"$version\"/" "$src/hbmon/__init__.py"
  sed -i "s/^version = \".*\"$/version = \"$version\"/" "$src/pyproject.toml"
  entry="hbmon ($version) unstable; urgency=medium

  * Rebuild as $version (HBMON_DEB_VERSION).

 -- hbmon maintainers <maintainers@hbmon.example.net>  $(date -R)
"
  printf '%s\n' "$entry" | cat - "$src/debian/changelog" >"$src/debian/changelog.new"
  mv "$src/debian/changelog.new" "$src/debian/changelog"
fi

echo "build-deb: building hbmon $version" >&2
# A clean environment: Debian's own python3 and tools, whatever the caller's PATH
# (a virtualenv or pyenv python3 would build against other libraries).
(cd "$src" && env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$work" LC_ALL=C.UTF-8 \
  dpkg-buildpackage -b -us -uc >"$work/build.log" 2>&1) || {
  tail -40 "$work/build.log" >&2
  exit 1
}
mkdir -p "$top/dist"
for deb in "$work"/*.deb; do
  cp "$deb" "$top/dist/"
done
arch="$(dpkg-deb -f "$work/hbmon_${version}_"*.deb Architecture)"
echo "$top/dist/hbmon_${version}_${arch}.deb"
