#!/usr/bin/env bash
# Run mfc_daemon from this checkout, in the foreground, with config/dev.conf (socket and state file
# in ./run/). Installs what a fresh Debian 12 machine lacks, then: npm ci, npm run build, exec the
# daemon. Needs root: the daemon opens a raw IGMP socket (CAP_NET_RAW) to own the multicast table.
# Stop it with Ctrl-C: it finishes the transaction in flight, releases the table and keeps the state.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'run-dev: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run me as root (sudo $0): mfc_daemon needs CAP_NET_RAW to own the multicast routing table"

node_major() {
  command -v node >/dev/null 2>&1 || { echo 0; return; }
  node -p 'Number(process.versions.node.split(".")[0])' 2>/dev/null || echo 0
}

# Debian's packages only when node is missing or too old (or `ip`, which the tests need, is missing).
need=()
if [ "$(node_major)" -lt 20 ]; then
  need=(nodejs npm iproute2)
elif ! command -v ip >/dev/null 2>&1; then
  need=(iproute2)
fi
if [ ${#need[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || die "missing: ${need[*]} (no apt-get here: install them yourself)"
  say "apt-get install -y ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y "${need[@]}"
fi

major=$(node_major)
if [ "$major" -lt 20 ]; then
  cat >&2 <<EOF
run-dev: mfc needs Node.js 20 or newer; this machine has $(command -v node >/dev/null 2>&1 && node --version || echo "no node").
run-dev: Debian 12's own nodejs package is 18, which is too old. Install Node 20+ another way, e.g.:
run-dev:   - NodeSource:  curl -fsSL https://deb.nodesource.com/setup_22.x | bash - && apt-get install -y nodejs
run-dev:   - nodejs.org:  download node-v22.x-linux-x64.tar.xz from https://nodejs.org/en/download,
run-dev:                  unpack it to /usr/local (tar -xJf ... -C /usr/local --strip-components=1)
run-dev:   - Debian 13 (trixie) and newer ship nodejs >= 20.
run-dev: Then run $0 again.
EOF
  exit 1
fi
command -v npm >/dev/null 2>&1 || die "node $(node --version) has no npm next to it; install npm for it (it ships with the nodejs.org and NodeSource packages)"

say "node $(node --version), npm $(npm --version)"
say "npm ci"
npm ci --no-audit --no-fund
say "npm run build"
npm run build
say "starting mfc_daemon with config/dev.conf (socket: run/mfc_daemon.sock, state: run/state.json); Ctrl-C stops it"
exec node dist/daemon_main.js --config config/dev.conf
