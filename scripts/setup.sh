# Sourced by run-dev.sh and test.sh: makes a fresh Debian 12 machine ready for one command.
#
#   setup_machine dev    what run-dev.sh needs: iproute2 (the practice lab), Node.js >= 20, node_modules
#   setup_machine test   what test.sh needs: the above, plus iputils-ping, procps, mandoc (man-page
#                        lint), fiu-utils (fault injection), systemd (systemd-analyze), lintian and
#                        rpm (package checks), smcroute (the import test compares with smcrouted),
#                        debootstrap and systemd-container (the package install test; not with
#                        MFC_SKIP_INSTALL_TEST=1)
#
# Debian packages come from apt with --no-install-recommends, and only those whose command is
# missing. Node.js: Debian 12's nodejs is 18, so when no Node >= 20 is found (scripts/node.sh), the
# official Node 24 binary (npm package node-linux-<arch>) and npm 11 are downloaded as two
# tarballs from the npm registry, checked against the registry's sha512, and unpacked into .tools/
# of this checkout (.tools/bin/node, .tools/bin/npm); curl (or wget) fetches them, and is
# installed first (curl, ca-certificates) if neither is there. Nothing else is downloaded.
# node_modules: `npm ci` when it is missing or older than package-lock.json.
# Every step says what it does on stderr before it starts.
set -euo pipefail

# shellcheck source=scripts/node.sh
. "$(dirname "${BASH_SOURCE[0]}")/node.sh"

MFC_NPM_REGISTRY=${MFC_NPM_REGISTRY:-https://registry.npmjs.org}

setup_say() { printf 'setup: %s\n' "$*" >&2; }

# setup_need CMD PACKAGE: queue PACKAGE when CMD is missing.
setup_need() { command -v "$1" >/dev/null 2>&1 || SETUP_PKGS+=("$2"); }

setup_apt() {
  [ $# -gt 0 ] || return 0
  command -v apt-get >/dev/null 2>&1 || { setup_say "missing: $* (no apt-get here: install them yourself)"; return 1; }
  export DEBIAN_FRONTEND=noninteractive
  setup_say "apt-get update (package lists, for: $*)"
  apt-get -q -o DPkg::Lock::Timeout=120 update | grep -v '^\(Hit\|Get\|Ign\):' >&2 || true
  setup_say "apt-get install --no-install-recommends $* (with their dependencies; apt lists them)"
  apt-get -q -y -o DPkg::Lock::Timeout=120 install --no-install-recommends "$@" >&2
}

# setup_fetch URL FILE [HEADER]: download with curl or wget, with a progress bar on a terminal.
setup_fetch() {
  local url=$1 out=$2 header=${3:-}
  if command -v curl >/dev/null 2>&1; then
    local show=(-sS)
    [ -t 2 ] && [ "$out" != /dev/stdout ] && show=(--progress-bar)
    curl -fL --retry 3 "${show[@]}" ${header:+-H "$header"} -o "$out" "$url"
  else
    local show=(-q)
    [ -t 2 ] && [ "$out" != /dev/stdout ] && show=(-q --show-progress)
    wget "${show[@]}" ${header:+--header="$header"} -O "$out" "$url"
  fi
}

# setup_npm_tarball NAME MAJOR DIR: the newest NAME@MAJOR.x.y from the registry, verified, into DIR
# (the tarball's package/ directory becomes DIR). Prints the version.
setup_npm_tarball() {
  local name=$1 major=$2 dir=$3 meta version doc tarball integrity want have
  # The abbreviated metadata ("corgi") lists every version; pick the newest MAJOR.x.y (no prereleases).
  meta=$(setup_fetch "$MFC_NPM_REGISTRY/$name" /dev/stdout 'Accept: application/vnd.npm.install-v1+json') || { setup_say "cannot read $MFC_NPM_REGISTRY/$name (the download tool's error is above)"; return 1; }
  version=$(printf '%s' "$meta" | grep -o "\"$major\\.[0-9]*\\.[0-9]*\": *{" | tr -d '":{ ' | sort -V | tail -n 1)
  [ -n "$version" ] || { setup_say "the registry lists no $name@$major.x"; return 1; }
  doc=$(setup_fetch "$MFC_NPM_REGISTRY/$name/$version" /dev/stdout) || { setup_say "cannot read $MFC_NPM_REGISTRY/$name/$version"; return 1; }
  tarball=$(printf '%s' "$doc" | grep -o '"tarball": *"[^"]*"' | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/')
  integrity=$(printf '%s' "$doc" | grep -o '"integrity": *"sha512-[^"]*"' | head -n 1 | sed 's/.*"sha512-\([^"]*\)"$/\1/')
  [ -n "$tarball" ] && [ -n "$integrity" ] || { setup_say "no tarball/integrity for $name@$version in the registry's answer"; return 1; }
  setup_say "downloading $name@$version"
  setup_fetch "$tarball" "$dir.tgz" || { setup_say "cannot download $tarball"; return 1; }
  want=$(printf '%s' "$integrity" | base64 -d | od -An -v -tx1 | tr -d ' \n')
  have=$(sha512sum "$dir.tgz" | cut -d' ' -f1)
  [ "$want" = "$have" ] || { setup_say "$name@$version: sha512 of the download does not match the registry's"; rm -f "$dir.tgz"; return 1; }
  mkdir -p "$dir"
  tar -xzf "$dir.tgz" -C "$dir" --strip-components=1 --no-same-owner
  rm -f "$dir.tgz"
  printf '%s\n' "$version"
}

# setup_node ROOT: Node 24 + npm 11 into ROOT/.tools (bin/node, bin/npm, bin/npx, lib/node_modules/npm).
setup_node() {
  local root=$1 arch tmp node_v npm_v have
  case "$(uname -m)" in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) setup_say "no Node >= 20 here, and the npm registry has no Node build for $(uname -m)"; return 1 ;; esac
  have=$(command -v node >/dev/null 2>&1 && node --version 2>/dev/null || echo "no node")
  setup_say "node on PATH: $have; mfc needs Node 20 or newer. Installing Node 24 and npm 11 from the npm registry into .tools/ (~35 MB download, ~140 MB on disk)"
  tmp="$root/.tools.new.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp/bin" "$tmp/lib/node_modules"
  node_v=$(setup_npm_tarball "node-linux-$arch" 24 "$tmp/node") || { rm -rf "$tmp"; return 1; }
  npm_v=$(setup_npm_tarball npm 11 "$tmp/lib/node_modules/npm") || { rm -rf "$tmp"; return 1; }
  mv "$tmp/node/bin/node" "$tmp/bin/node"
  rm -rf "$tmp/node"
  # npm and npx run with the node beside them, whatever node is on PATH.
  for tool in npm npx; do
    printf '#!/bin/sh\nd=$(dirname "$(readlink -f "$0")")\nexec "$d/node" "$d/../lib/node_modules/npm/bin/%s-cli.js" "$@"\n' "$tool" >"$tmp/bin/$tool"
    chmod 755 "$tmp/bin/$tool"
  done
  printf 'node %s and npm %s from the npm registry, installed by scripts/setup.sh\n' "$node_v" "$npm_v" >"$tmp/README"
  rm -rf "$root/.tools"
  mv "$tmp" "$root/.tools"
  setup_say "installed node v$node_v and npm $npm_v in .tools/bin (scripts/mfc and scripts/lab use them)"
}

# setup_machine dev|test: run from the checkout's root.
setup_machine() {
  local what=${1:-test} root node
  root=$(pwd)
  SETUP_PKGS=()
  setup_need ip iproute2
  if [ "$what" = test ]; then
    setup_need ping iputils-ping
    setup_need sysctl procps
    setup_need mandoc mandoc
    setup_need fiu-run fiu-utils
    setup_need systemd-analyze systemd
    setup_need lintian lintian
    setup_need rpmbuild rpm
    setup_need smcrouted smcroute
    # test/kernel/structs.test.ts compiles against the kernel headers; gcc only recommends libc6-dev.
    setup_need gcc gcc
    [ -e /usr/include/linux/mroute6.h ] && [ -e /usr/include/stdio.h ] || SETUP_PKGS+=(libc6-dev)
    if [ "${MFC_SKIP_INSTALL_TEST:-0}" != 1 ]; then
      setup_need debootstrap debootstrap
      setup_need systemd-nspawn systemd-container
    fi
  fi
  if ! mfc_node "$root" >/dev/null; then
    if ! command -v curl >/dev/null 2>&1 && ! command -v wget >/dev/null 2>&1; then SETUP_PKGS+=(curl ca-certificates); fi
  fi
  if [ ${#SETUP_PKGS[@]} -gt 0 ]; then
    setup_say "$what needs Debian packages that are missing: ${SETUP_PKGS[*]}"
    setup_apt "${SETUP_PKGS[@]}"
    # Debian's smcroute enables and starts smcrouted, which would own the host's multicast table:
    # the import test runs its own smcrouted in a lab namespace; the host's must not run.
    case " ${SETUP_PKGS[*]} " in *" smcroute "*)
      setup_say "smcroute: disabling its services (the tests run smcrouted themselves, in a namespace)"
      systemctl disable --now smcroute.service smcroute-helper.service >/dev/null 2>&1 || true ;;
    esac
  fi
  node=$(mfc_node "$root") || { setup_node "$root"; node=$(mfc_node "$root"); }
  case "$node" in "$root/.tools/bin/node") export PATH="$root/.tools/bin:$PATH" ;; esac
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
    setup_say "npm ci (the project's dependencies from package-lock.json, into node_modules/)"
    npm ci --no-audit --no-fund --no-update-notifier --loglevel=error
  fi
  setup_say "ready: node $(node --version) ($node), npm $(npm --version)"
}
