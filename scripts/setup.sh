# Sourced by run-dev.sh and test.sh: makes a fresh Debian 12 machine ready to build and test mfc.
# - Debian packages the project needs (iproute2 for the labs, iputils-ping, mandoc for the man-page
#   lint, systemd/lintian/rpm for the package checks).
# - Node.js >= 20: Debian 12's nodejs is 18, so when the node on PATH is older, the official Node 24
#   binary is installed from the npm registry (package node-linux-<arch>, as STACK.md measured) into
#   .tools/ of this checkout, with npm 11, and put first on PATH. Nothing else is downloaded.
# - node_modules: `npm ci` when it is missing or older than package-lock.json.
set -euo pipefail

setup_say() { printf 'setup: %s\n' "$*" >&2; }

setup_node_major() {
  command -v node >/dev/null 2>&1 || { echo 0; return; }
  node -p 'Number(process.versions.node.split(".")[0])' 2>/dev/null || echo 0
}

setup_machine() {
  local root need=()
  root=$(pwd)
  command -v ip >/dev/null 2>&1 || need+=(iproute2)
  command -v ping >/dev/null 2>&1 || need+=(iputils-ping)
  command -v mandoc >/dev/null 2>&1 || need+=(mandoc)
  # The package checks in the suite: systemd-analyze, lintian, rpm/rpmbuild.
  command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
  command -v lintian >/dev/null 2>&1 || need+=(lintian)
  command -v rpmbuild >/dev/null 2>&1 || need+=(rpm)
  if [ "$(setup_node_major)" -lt 20 ] && [ ! -x "$root/.tools/node_modules/.bin/node" ]; then
    command -v npm >/dev/null 2>&1 || need+=(npm)
  fi
  if [ ${#need[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || { setup_say "missing: ${need[*]} (no apt-get here: install them yourself)"; return 1; }
    setup_say "apt-get install -y ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  if [ "$(setup_node_major)" -lt 20 ]; then
    local arch
    case "$(uname -m)" in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) setup_say "no Node >= 20 and no npm build of Node for $(uname -m)"; return 1 ;; esac
    if [ ! -x "$root/.tools/node_modules/.bin/node" ]; then
      setup_say "node on PATH is $(command -v node >/dev/null && node --version || echo missing); installing Node 24 from the npm registry into .tools/"
      npm install --no-save --no-audit --no-fund --loglevel=error --prefix "$root/.tools" "node-linux-$arch@24" npm@11
    fi
    export PATH="$root/.tools/node_modules/.bin:$PATH"
  fi
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
    setup_say "npm ci"
    npm ci --no-audit --no-fund --loglevel=error
  fi
  setup_say "node $(node --version), npm $(npm --version)"
}
