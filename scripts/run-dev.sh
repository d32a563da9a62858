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

# shellcheck source=scripts/setup.sh
. scripts/setup.sh
setup_machine
say "npm run build"
npm run build
say "starting mfc_daemon with config/dev.conf (socket: run/mfc_daemon.sock, state: run/state.json); Ctrl-C stops it"
exec node dist/daemon_main.js --config config/dev.conf
