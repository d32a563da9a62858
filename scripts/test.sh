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
run_tests() { node --import tsx --test --test-concurrency=1 "$@"; }
# shellcheck source=scripts/test_vm.sh
. scripts/test_vm.sh
if ! test_vm_needed; then
  run_tests "${files[@]}"
  exit
fi
# A kernel that cannot route multicast (test_vm.sh): the unit tests and the package build run
# here, everything that needs the kernel's tables in the VM. Each part prints its own summary;
# the last line adds them up.
test_vm_prepare
# The VM has no network: the package install test's Debian root is debootstrapped here, once.
case " ${files[*]} " in *" test/package/install.slow.ts "*)
  # Not fatal: without it the install test reports itself skipped, with debootstrap's reason.
  node --import tsx -e 'import("./test/package/chroot.ts").then((m) => m.cachedRoot())' ||
    echo "test: cannot debootstrap the install test's root here (above); that test will be skipped" >&2 ;;
esac
here=() there=()
for f in "${files[@]}"; do
  case $f in test/unit/* | test/package/package.test.ts) here+=("$f") ;; *) there+=("$f") ;; esac
done
logs=$(mktemp -d)
trap 'cleanup; rm -rf "$logs"' EXIT
status=0
run_tests "${here[@]}" 2>&1 | tee "$logs/here" || status=1
printf -v vm_cmd '%q ' node --import tsx --test --test-concurrency=1 "${there[@]}"
test_vm_run "$vm_cmd" 2>&1 | tr -d '\r' | tee "$logs/vm" || status=1
# The summary lines of either reporter: "# pass N" (TAP, not a terminal) or "ℹ pass N" (spec, coloured).
count() { local what=$1; shift; sed 's/\x1b\[[0-9;]*m//g' "$@" | grep -oE "^(ℹ|#) $what [0-9]+" | awk '{ n += $3 } END { print n + 0 }'; }
# Cancelled tests (cut off by a timeout or their process's end) failed; so did a part that never
# printed its summary (a VM that died): counted as one.
failed=$(( $(count fail "$logs/here" "$logs/vm") + $(count cancelled "$logs/here" "$logs/vm") ))
for part in here vm; do [ "$(count tests "$logs/$part")" -gt 0 ] || { echo "tests: the $part part printed no summary"; failed=$((failed + 1)); status=1; }; done
echo "tests: $(count pass "$logs/here" "$logs/vm") passed, $failed failed, $(count skipped "$logs/here" "$logs/vm") skipped (here: ${#here[@]} files; in the VM: ${#there[@]} files)"
exit "$status"
