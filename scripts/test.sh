#!/usr/bin/env bash
# The whole test suite: build, typecheck, lint, then every test file with node's test runner.
# Needs root (network namespaces, the kernel's multicast routing table). Prints node's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run --silent build
npx --no-install tsc -p tsconfig.json --noEmit
npx --no-install eslint .
cleanup() { node --import tsx -e 'import("./test/lab/lab.ts").then(m => m.removeStaleLabs({ includeLive: true }))' >/dev/null 2>&1 || true; }
trap cleanup EXIT
# One file at a time per core keeps namespace labs and the default table from colliding.
mapfile -t files < <(find test -name '*.test.ts' | sort)
node --import tsx --test --test-concurrency=1 "${files[@]}"
