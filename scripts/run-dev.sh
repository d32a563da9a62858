#!/usr/bin/env bash
# Run mfc_daemon from this checkout, in the foreground, with config/dev.conf (socket and state file
# in ./run/). Installs what a fresh Debian 12 machine lacks for it (scripts/setup.sh dev: iproute2,
# Node.js >= 20, npm ci), builds when dist/ is missing or older than the sources, then runs the
# daemon. Needs root: the daemon opens a raw IGMP socket (CAP_NET_RAW) to own the multicast table.
# Stop it with Ctrl-C: it finishes the transaction in flight, releases the table and keeps the state.
#
#   ./scripts/run-dev.sh          the daemon in this machine's network namespace (its real interfaces)
#   ./scripts/run-dev.sh --lab    the practice lab (./scripts/lab up, if it is not up) and the daemon
#                                 inside its router namespace: interfaces eth0, eth1, eth2 as in the
#                                 README; the host's multicast table is not touched
#
# Environment (for tests): MFC_CONFIG replaces config/dev.conf, MFC_LAB names the lab,
# MFC_BUILD=0 never builds, MFC_BUILD=1 always does.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

say() { printf 'run-dev: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

LAB=0
case "${1:-}" in
  "") ;;
  --lab) LAB=1 ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument '$1' (see --help)" ;;
esac
CONFIG=${MFC_CONFIG:-config/dev.conf}

[ "$(id -u)" -eq 0 ] || die "run me as root (sudo $0): mfc_daemon needs CAP_NET_RAW to own the multicast routing table"

# shellcheck source=scripts/setup.sh
. scripts/setup.sh
setup_machine dev

stale() {
  [ -f dist/daemon_main.js ] && [ -f dist/cli/mfc.cjs ] || return 0
  [ -n "$(find src package.json package-lock.json tsconfig.json tsconfig.build.json -newer dist/daemon_main.js -print -quit)" ]
}
case "${MFC_BUILD:-auto}" in
  0) ;;
  1) say "npm run build"; npm run --silent build ;;
  *) if stale; then say "npm run build (dist/ is missing or older than the sources)"; npm run --silent build; else say "dist/ is up to date (no build)"; fi ;;
esac

if [ "$LAB" = 1 ]; then
  ./scripts/lab up
  router="${MFC_LAB:-mfc-lab}-router"
  say "starting mfc_daemon in the lab's router namespace ($router: eth0, eth1, eth2) with $CONFIG; Ctrl-C stops it, ./scripts/lab down removes the lab"
  exec ip netns exec "$router" node --expose-gc --max-semi-space-size=2 dist/daemon_main.js --config "$CONFIG"
fi
say "starting mfc_daemon with $CONFIG (socket: run/mfc_daemon.sock, state: run/state.json); Ctrl-C stops it"
exec node --expose-gc --max-semi-space-size=2 dist/daemon_main.js --config "$CONFIG"
