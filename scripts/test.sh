#!/usr/bin/env bash
# The whole test suite: set-up (scripts/setup.sh test), build, typecheck, lint, then every test file
# with node's test runner, which prints the pass/fail summary. Needs root (network namespaces, the
# kernel's multicast routing table).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "test: run me as root (network namespaces, raw sockets)" >&2; exit 1; }
# shellcheck source=scripts/setup.sh
. scripts/setup.sh
setup_machine test
npm run --silent build
npx --no-install tsc -p tsconfig.json --noEmit
npx --no-install eslint .
cleanup() { node --import tsx -e 'import("./test/lab/lab.ts").then(m => m.removeStaleLabs({ includeLive: true }))' >/dev/null 2>&1 || true; }
trap cleanup EXIT
# One file at a time: the machine has 2 cores, and each e2e file runs its own daemons and labs.
mapfile -t files < <(find test -name '*.test.ts' | sort)
# The package install test (a Debian 12 root booted with systemd-nspawn; ~1 min, plus ~1 min once
# for debootstrap into /var/cache/mfc-test-chroot) runs too unless MFC_SKIP_INSTALL_TEST=1.
[ "${MFC_SKIP_INSTALL_TEST:-0}" = 1 ] || files+=(test/package/install.slow.ts)
node --import tsx --test --test-concurrency=1 "${files[@]}"
