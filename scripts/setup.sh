#!/usr/bin/env bash
# setup.sh - installs the Debian packages drover needs to build and test, then the npm
# packages of package-lock.json (uPlot, inlined into `drover sim --html` reports, and
# playwright-core, which drives Debian's chromium in the browser tests).
#
# Idempotent: checks every package with dpkg-query first and prints nothing when all
# are installed and node_modules matches package-lock.json. Otherwise runs `apt-get update` once
# and installs only the missing ones, as root or through sudo (npm too, when
# node_modules needs installing and no npm is on the PATH: a NodeSource node is kept),
# then `npm ci` in the repository root. Exits non-zero with a message naming what it
# cannot install.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

packages=(
    build-essential
    cmake
    pkg-config
    libcmocka-dev
    libjansson-dev
    libuv1-dev
    libwebsockets-dev
    libsqlite3-dev
    libncurses-dev
    libssl-dev
    libcurl4-openssl-dev
    curl
    openssl
    zlib1g-dev
    chromium
    python3-prometheus-client # /metrics checked by a strict parser (tests/e2e/monitoring.sh)
    tmux
    python3-pytest        # suite: drover pytest and its tests
    python3-pytest-xdist  # suite: bench/pytest.sh compares with pytest -n
    libxml2-utils         # suite: xmllint, the JUnit report checked in the tests
    jq                    # suite: cli_sim checks values; bench/sim_seeds.sh
)

# `setup.sh --fuzz` also installs clang and its libFuzzer runtime (make fuzz).
if [[ "${1:-}" == "--fuzz" ]]; then
    packages+=(clang libclang-rt-14-dev)
fi

die() {
    echo "setup.sh: error: $*" >&2
    exit 1
}

missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != "installed" ]]; then
        missing+=("$pkg")
    fi
done

# npm ci when a package is missing or package-lock.json changed since the last install
# (npm writes node_modules/.package-lock.json).
need_npm_ci=false
if [[ ! -f "$root/node_modules/uplot/dist/uPlot.iife.min.js" ||
    ! -f "$root/node_modules/playwright-core/package.json" ||
    "$root/package-lock.json" -nt "$root/node_modules/.package-lock.json" ]]; then
    need_npm_ci=true
    command -v npm >/dev/null 2>&1 || missing+=(npm)
fi

# npm ci in the repository root: the exact versions of package-lock.json.
npm_install() {
    [[ "$need_npm_ci" == true ]] || return 0
    echo "setup.sh: installing npm packages (npm ci in $root)"
    (cd "$root" && npm ci --no-audit --no-fund --loglevel=error) ||
        die "npm ci failed in $root (needs the npm registry; see package-lock.json)"
    [[ -f "$root/node_modules/uplot/dist/uPlot.iife.min.js" &&
        -f "$root/node_modules/playwright-core/package.json" ]] ||
        die "npm ci did not install uplot and playwright-core in $root/node_modules"
}

if [[ ${#missing[@]} -eq 0 ]]; then
    npm_install
    exit 0
fi

command -v apt-get >/dev/null 2>&1 ||
    die "missing packages: ${missing[*]}; apt-get not found (drover expects Debian 12); install them by hand"

if [[ $(id -u) -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    # -n: never wait for a password prompt that nobody will answer (CI, no stdin).
    if [[ -t 0 ]]; then as_root=(sudo); else as_root=(sudo -n); fi
else
    die "missing packages: ${missing[*]}; not root and sudo not found; run as root: apt-get install ${missing[*]}"
fi

echo "setup.sh: installing missing packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q ||
    die "apt-get update failed; cannot install: ${missing[*]}"
"${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" ||
    die "apt-get install failed for: ${missing[*]}"

# Check again: a package that apt reported as installed but dpkg does not know is a failure.
for pkg in "${missing[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [[ "$status" == "installed" ]] || die "package $pkg is still not installed after apt-get install"
done
npm_install
echo "setup.sh: done"
