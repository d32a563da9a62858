/**
 * Fast package checks (main suite): builds the .deb and .rpm once with scripts/package.sh
 * (fast compression, temp dir), then
 *   - systemd-analyze verify of the unit in a root made of the .deb's files: no output at all;
 *   - systemd-analyze security --offline: exposure <= 2.0, and every remaining exposure is
 *     justified in the unit's own comments (name and exposure value);
 *   - lintian: no errors (overrides: packaging/deb/lintian-overrides, each justified);
 *   - the .deb's control data, conffiles, maintainer scripts and file modes;
 *   - rpm -qp --list --scripts --requires, and an install into an `rpm --root` test database
 *     (--nodeps --noscripts: the empty test root has no /bin/sh and no rpmdb to satisfy the
 *     requirements; the scriptlets run for real in test/package/install.slow.ts);
 *   - the packaged config parses with the daemon's parser, and the packaged CLI finds the
 *     packaged socket path through it.
 * The install/upgrade/purge flow in a booted Debian 12 container is test/package/install.slow.ts
 * (npm run test:package).
 */
import assert from "node:assert/strict";
import { cpSync, existsSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test, type TestContext } from "node:test";
import { loadConfig } from "../../src/config/config.js";
import { buildPackages, ensureTool, PACKAGING, packageVersion, ROOT, run, TEMPLATE_NAME, UNIT_NAME, type Built } from "./support.js";

const MAX_EXPOSURE = 2.0;
/** An instance of the template unit, as `systemctl start mfc_daemon@red` makes it. */
const TEMPLATE_INSTANCE = TEMPLATE_NAME.replace("@", "@red");

void describe("packages (.deb, .rpm, systemd unit)", { timeout: 900_000 }, () => {
  const missing: Record<string, string | undefined> = {};
  let built: Built | undefined;
  let buildError: Error | undefined;
  let work = "";
  /** The .deb's files plus the host's systemd units: a root systemd-analyze can resolve. */
  let unitRoot = "";

  before(async () => {
    missing.dpkg = await ensureTool("dpkg-deb", "dpkg");
    missing.rpm = await ensureTool("rpmbuild", "rpm");
    missing.systemd = await ensureTool("systemd-analyze", "systemd");
    missing.lintian = await ensureTool("lintian", "lintian");
    work = mkdtempSync(join(tmpdir(), "mfct-pkgtest-"));
    if (missing.dpkg) return;
    const t0 = Date.now();
    try {
      built = await buildPackages({ formats: missing.rpm ? "deb" : "deb,rpm" });
    } catch (err) {
      buildError = err as Error;
      return;
    }
    process.stderr.write(`package.sh: ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    if (!built.deb) return;
    unitRoot = join(work, "root");
    await run("dpkg-deb", ["-x", built.deb, unitRoot]);
    // systemd-analyze --root needs the units ours depends on (sysinit.target, ...).
    if (existsSync("/lib/systemd/system")) cpSync("/lib/systemd/system", join(unitRoot, "lib/systemd/system"), { recursive: true, force: false, errorOnExist: false });
  });

  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
    if (built) rmSync(built.dir, { recursive: true, force: true });
  });

  /** Skips (with the reason) when a tool is missing; fails when the build did. */
  function need(t: TestContext, ...tools: string[]): boolean {
    for (const tool of tools) {
      const why = missing[tool];
      if (why) { t.skip(why); return false; }
    }
    if (buildError) throw buildError;
    assert.ok(built?.deb, "package.sh built no .deb");
    return true;
  }

  void test("package.sh builds both packages with the expected names", (t) => {
    if (!need(t, "dpkg")) return;
    const v = packageVersion();
    assert.match(built?.deb ?? "", new RegExp(`/mfc_${v.replace(/[.+]/g, "\\$&")}_(amd64|arm64)\\.deb$`));
    if (!missing.rpm) assert.match(built?.rpm ?? "", new RegExp(`/mfc-${v.replace(/[.+]/g, "\\$&")}-1\\.(x86_64|aarch64)\\.rpm$`));
    for (const f of [built?.deb, built?.rpm]) if (f) t.diagnostic(`${f.split("/").pop() ?? f}: ${(statSync(f).size / 1e6).toFixed(1)} MB (fast compression)`);
  });

  void test("systemd-analyze verify: the installed unit has no warnings", async (t) => {
    if (!need(t, "dpkg", "systemd")) return;
    const r = await run("systemd-analyze", ["verify", "--man=no", `--root=${unitRoot}`, `/lib/systemd/system/${UNIT_NAME}`], { check: false });
    // verify exits 0 on many problems: any output at all is a failure (STACK.md).
    assert.equal(r.stderr + r.stdout, "", "systemd-analyze verify printed something");
    assert.equal(r.code, 0);
  });

  void test("systemd-analyze verify: an instance of mfc_daemon@.service has no warnings", async (t) => {
    if (!need(t, "dpkg", "systemd")) return;
    const r = await run("systemd-analyze", ["verify", "--man=no", `--root=${unitRoot}`, `/lib/systemd/system/${TEMPLATE_INSTANCE}`], { check: false });
    assert.equal(r.stderr + r.stdout, "", "systemd-analyze verify printed something");
    assert.equal(r.code, 0);
  });

  void test("systemd-analyze verify notices a unit whose ExecStart is missing (the check is live)", async (t) => {
    if (!need(t, "dpkg", "systemd")) return;
    const bare = join(work, "bare");
    cpSync(join(unitRoot, "lib/systemd/system"), join(bare, "lib/systemd/system"), { recursive: true });
    const r = await run("systemd-analyze", ["verify", "--man=no", `--root=${bare}`, `/lib/systemd/system/${UNIT_NAME}`], { check: false });
    assert.match(r.stderr, /mfc_daemon.*(not executable|No such file)/);
  });

  void test(`systemd-analyze security: exposure <= ${MAX_EXPOSURE}, every exposure justified in the unit`, async (t) => {
    if (!need(t, "dpkg", "systemd")) return;
    const args = ["security", "--offline=true", `--root=${unitRoot}`];
    const text = await run("systemd-analyze", [...args, UNIT_NAME], { check: false });
    const m = /Overall exposure level for \S+: (\d+\.\d+)/.exec(text.stdout + text.stderr);
    assert.ok(m?.[1], `no overall exposure in:\n${text.stdout}${text.stderr}`);
    const score = Number(m[1]);
    t.diagnostic(`exposure ${score}`);
    // An instance has the same settings (compared below), so the same score and exposures.
    const inst = await run("systemd-analyze", [...args, TEMPLATE_INSTANCE], { check: false });
    assert.match(inst.stdout + inst.stderr, new RegExp(`Overall exposure level for ${TEMPLATE_INSTANCE}: ${m[1].replace(".", "\\.")} `));
    assert.ok(score <= MAX_EXPOSURE, `exposure ${score} > ${MAX_EXPOSURE}`);
    // The same gate the way CI scripts would write it (threshold on the 0-100 scale).
    const gate = await run("systemd-analyze", [...args, `--threshold=${Math.round(MAX_EXPOSURE * 10)}`, UNIT_NAME], { check: false });
    assert.equal(gate.code, 0, "systemd-analyze security --threshold=20 failed");
    const items = JSON.parse((await run("systemd-analyze", [...args, "--json=short", UNIT_NAME])).stdout) as { name: string; exposure: string | null; set: boolean }[];
    const unit = readFileSync(join(PACKAGING, UNIT_NAME), "utf8");
    const comments = unit.split("\n").filter((l) => l.startsWith("#")).join("\n");
    const open = items.filter((i) => i.exposure !== null && Number(i.exposure) > 0);
    for (const i of open) t.diagnostic(`exposure ${i.exposure}: ${i.name}`);
    const unjustified = open.filter((i) => !comments.includes(`${i.name} (${i.exposure})`));
    assert.deepEqual(unjustified.map((i) => `${i.name} (${i.exposure})`), [], "exposures without a '#   NAME (EXPOSURE): why' comment in packaging/mfc_daemon.service");
    assert.match(comments, new RegExp(`rates this unit ${score.toFixed(1).replace(".", "\\.")}\\b`), "the unit's header states a different score");
  });

  void test("the unit keeps what the daemon needs (no PrivateNetwork, its families, capabilities)", () => {
    const unit = readFileSync(join(PACKAGING, UNIT_NAME), "utf8");
    const set = (key: string): string[] => [...unit.matchAll(new RegExp(`^${key}=(.*)$`, "gm"))].map((x) => (x[1] ?? "").trim());
    assert.deepEqual(set("PrivateNetwork"), []);
    assert.deepEqual(set("PrivateUsers"), []);
    assert.deepEqual(set("Type"), ["notify"]);
    assert.deepEqual(set("User"), ["mfc_daemon"]);
    assert.deepEqual(set("SupplementaryGroups"), ["mfc_admin"]);
    assert.deepEqual(set("AmbientCapabilities"), ["CAP_NET_RAW CAP_NET_ADMIN"]);
    assert.deepEqual(set("CapabilityBoundingSet"), ["CAP_NET_RAW CAP_NET_ADMIN"]);
    assert.deepEqual(set("RestrictAddressFamilies"), ["AF_UNIX AF_INET AF_NETLINK"]);
    assert.deepEqual(set("ExecStart"), ["/usr/local/sbin/mfc_daemon --config /etc/mfc_daemon.conf"]);
    assert.deepEqual(set("RuntimeDirectory"), ["mfc_daemon"]);
    assert.deepEqual(set("StateDirectory"), ["mfc_daemon"]);
    assert.deepEqual(set("WatchdogSec"), ["30s"]);
    assert.deepEqual(set("ProcSubset"), [], "ProcSubset=pid hides /proc/sys (rp_filter diagnostics)");
  });

  void test("mfc_daemon@.service: the main unit's settings, except what makes it an instance", () => {
    const settings = (file: string): string[] => readFileSync(join(PACKAGING, file), "utf8").split("\n").filter((l) => /^[A-Za-z]+=/.test(l) || /^\[/.test(l));
    const main = settings(UNIT_NAME);
    const template = settings(TEMPLATE_NAME);
    const differ = (a: string[], b: string[]): string[] => a.filter((l) => !b.includes(l));
    assert.deepEqual(differ(template, main), [
      "Description=mfc multicast routing controller, instance %i (owns its own kernel IPv4 multicast routing table)",
      "ExecStart=/usr/local/sbin/mfc_daemon --instance %i",
      "RuntimeDirectory=mfc_daemon.d/%i",
    ]);
    assert.deepEqual(differ(main, template), [
      "Description=mfc multicast routing controller (owns the kernel IPv4 multicast routing table)",
      "ExecStart=/usr/local/sbin/mfc_daemon --config /etc/mfc_daemon.conf",
      "RuntimeDirectory=mfc_daemon",
    ]);
    // The same order too: a setting moved into another section would be a different setting.
    assert.equal(template.length, main.length);
  });

  void test("the example instance config parses as an instance's config, with the instance's paths", () => {
    const c = loadConfig(join(PACKAGING, "instance.conf.example"), "red");
    assert.equal(c.table, 10);
    assert.equal(c.socketPath, "/run/mfc_daemon.d/red/mfc_daemon.sock", "the RuntimeDirectory of mfc_daemon@red.service");
    assert.equal(c.stateFile, "/var/lib/mfc_daemon/red.state.json", "in the StateDirectory");
    assert.equal(c.socketGroup, "mfc_admin");
  });

  void test("lintian: no errors", { timeout: 600_000 }, async (t) => {
    if (!need(t, "dpkg", "lintian")) return;
    const r = await run("lintian", ["--tag-display-limit", "0", "--fail-on", "error", built?.deb ?? ""], { check: false, timeoutMs: 600_000 });
    const tags = r.stdout.split("\n").filter((l) => /^[EWIXPO]: /.test(l));
    for (const l of tags) t.diagnostic(l);
    assert.deepEqual(tags.filter((l) => l.startsWith("E: ")), []);
    assert.equal(r.code, 0, `lintian failed:\n${r.stderr}`);
  });

  void test(".deb: control, conffiles, maintainer scripts, layout and modes", async (t) => {
    if (!need(t, "dpkg")) return;
    const deb = built?.deb ?? "";
    const field = async (name: string): Promise<string> => (await run("dpkg-deb", ["-f", deb, name])).stdout.trim();
    assert.equal(await field("Package"), "mfc");
    assert.equal(await field("Version"), packageVersion());
    assert.match(await field("Depends"), /\badduser\b/);
    assert.match(await field("Depends"), /\blibstdc\+\+6\b/);
    const ctl = join(work, "control");
    await run("dpkg-deb", ["-e", deb, ctl]);
    assert.equal(readFileSync(join(ctl, "conffiles"), "utf8"), "/etc/mfc_daemon.conf\n/etc/mfc_daemon.d/instance.conf.example\n");
    for (const s of ["postinst", "prerm", "postrm"]) {
      assert.equal(statSync(join(ctl, s)).mode & 0o777, 0o755, `${s} mode`);
      await run("sh", ["-n", join(ctl, s)]);
    }
    const postinst = readFileSync(join(ctl, "postinst"), "utf8");
    assert.match(postinst, /adduser --system/);
    assert.match(postinst, /chmod 0750 \/var\/lib\/mfc_daemon/);
    assert.match(postinst, /\[ -d \/run\/systemd\/system \]/, "systemctl only when systemd runs");
    const postrm = readFileSync(join(ctl, "postrm"), "utf8");
    assert.match(postrm, /"\$1" = "purge"[\s\S]*rm -rf \/var\/lib\/mfc_daemon/);
    assert.match(postrm, /deluser|userdel/);
    assert.match(postrm, /"\$1" = "purge"[\s\S]*rm -rf .*\/etc\/mfc_daemon\.d/, "purge removes the instances' configs");
    assert.match(readFileSync(join(ctl, "prerm"), "utf8"), /stop 'mfc_daemon.service'/);
    assert.match(readFileSync(join(ctl, "prerm"), "utf8"), /stop 'mfc_daemon@\*\.service'/, "instances stop on remove");
    assert.match(postinst, /try-restart 'mfc_daemon@\*\.service'/, "running instances move to the new version");

    const listing = (await run("dpkg-deb", ["-c", deb])).stdout.split("\n").filter(Boolean);
    const entry = (path: string): string | undefined => listing.find((l) => l.endsWith(` ./${path}`) || l.includes(` ./${path} -> `));
    for (const [path, mode] of [
      ["usr/local/sbin/mfc_daemon", "-rwxr-xr-x"], ["usr/local/bin/mfc", "-rwxr-xr-x"],
      ["usr/local/lib/mfc/node/bin/node", "-rwxr-xr-x"], ["usr/local/lib/mfc/dist/daemon_main.js", "-rw-r--r--"],
      ["usr/local/lib/mfc/package.json", "-rw-r--r--"], ["etc/mfc_daemon.conf", "-rw-r--r--"],
      ["lib/systemd/system/mfc_daemon.service", "-rw-r--r--"], ["usr/lib/tmpfiles.d/mfc_daemon.conf", "-rw-r--r--"],
      ["lib/systemd/system/mfc_daemon@.service", "-rw-r--r--"], ["etc/mfc_daemon.d/instance.conf.example", "-rw-r--r--"],
      ["usr/share/doc/mfc/copyright", "-rw-r--r--"], ["usr/share/doc/mfc/changelog.gz", "-rw-r--r--"],
      ["usr/share/lintian/overrides/mfc", "-rw-r--r--"],
    ] as const) {
      const l = entry(path);
      assert.ok(l, `${path} is not in the .deb`);
      assert.ok(l.startsWith(`${mode} root/root `), `${path}: ${l}`);
    }
    const paths = listing.map((l) => l.replace(/^.* \.\//, "").replace(/ -> .*$/, ""));
    // Documentation= of the unit names man pages: they must be in the package.
    const unit = readFileSync(join(PACKAGING, UNIT_NAME), "utf8");
    for (const [, page, sec] of unit.matchAll(/man:([\w.-]+)\((\d)\)/g)) {
      assert.ok(paths.includes(`usr/share/man/man${sec}/${page}.${sec}.gz`), `Documentation=man:${page}(${sec}) is not in the package`);
    }
    assert.ok(paths.some((p) => /^usr\/local\/lib\/mfc\/node_modules\/@koromix\/koffi-linux-[a-z0-9]+\/linux_[a-z0-9]+\/koffi\.node$/.test(p)), "koffi's prebuilt (optionalDependency) is missing");
    for (const dep of ["koffi", "ini", "valibot"]) assert.ok(paths.includes(`usr/local/lib/mfc/node_modules/${dep}/package.json`), `${dep} missing`);
    const devOnly = paths.filter((p) => /node_modules\/(typescript|eslint|tsx|fast-check|@types|@eslint|typescript-eslint)\//.test(p));
    assert.deepEqual(devOnly, [], "dev dependencies in the package");
    assert.deepEqual(paths.filter((p) => p.endsWith(".map") || p.includes("/musl_") || p.startsWith("var/lib/") || p.startsWith("run/")), []);
    const outside = paths.filter((p) => p && !/^(usr\/local\/(lib\/mfc|sbin|bin)|usr\/share\/(doc|lintian|man|bash-completion|zsh|fish)|usr\/lib\/tmpfiles\.d|lib\/systemd\/system|etc)(\/|$)/.test(p) && !/^(usr|usr\/local|usr\/lib|usr\/share|usr\/local\/lib|lib|lib\/systemd)\/$/.test(p));
    assert.deepEqual(outside, [], "files outside the documented layout");
    const wrapper = join(work, "wrapper");
    await run("sh", ["-c", `dpkg-deb --fsys-tarfile "$1" | tar -xO ./usr/local/sbin/mfc_daemon > "$2"`, "sh", deb, wrapper]);
    // DAEMON_NODE_FLAGS (src/daemon/memory.ts): the forced GC after large work, a small young generation.
    assert.match(readFileSync(wrapper, "utf8"), /^exec \/usr\/local\/lib\/mfc\/node\/bin\/node --expose-gc --max-semi-space-size=2 \/usr\/local\/lib\/mfc\/dist\/daemon_main\.js "\$@"$/m);
    const cliWrapper = join(work, "cli-wrapper");
    await run("sh", ["-c", `dpkg-deb --fsys-tarfile "$1" | tar -xO ./usr/local/bin/mfc > "$2"`, "sh", deb, cliWrapper]);
    const cliEntry = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { bin: Record<string, string> }).bin.mfc ?? "";
    assert.ok(readFileSync(cliWrapper, "utf8").includes(`exec /usr/local/lib/mfc/node/bin/node /usr/local/lib/mfc/${cliEntry.replace(/^\.\//, "")} "$@"`), "mfc wrapper runs package.json bin.mfc");
  });

  void test("the vendored runtime is Node 24 and runs the packaged app", async (t) => {
    if (!need(t, "dpkg")) return;
    const node = join(unitRoot, "usr/local/lib/mfc/node/bin/node");
    const v = (await run(node, ["--version"])).stdout.trim();
    assert.match(v, /^v24\./);
    t.diagnostic(`vendored node ${v}`);
    const r = await run(node, [join(unitRoot, "usr/local/lib/mfc/dist/daemon_main.js"), "--version"]);
    assert.equal(r.stdout.trim(), `mfc_daemon ${packageVersion()}`);
    // koffi's native part loads under that runtime.
    await run(node, ["-e", "require('koffi')"], { cwd: join(unitRoot, "usr/local/lib/mfc") });
  });

  void test("tmpfiles.d: the SPEC socket path is a symlink into the RuntimeDirectory", async (t) => {
    if (!need(t, "dpkg", "systemd")) return;
    const tmp = mkdtempSync(join(work, "tmpfiles-"));
    cpSync(join(unitRoot, "usr/lib/tmpfiles.d"), join(tmp, "usr/lib/tmpfiles.d"), { recursive: true });
    await run("systemd-tmpfiles", [`--root=${tmp}`, "--create", "mfc_daemon.conf"]);
    const link = join(tmp, "run/mfc_daemon.sock");
    assert.ok(lstatSync(link).isSymbolicLink());
    assert.equal(readlinkSync(link), "mfc_daemon/mfc_daemon.sock");
  });

  void test("rpm -qp: files, config, scriptlets, requirements", async (t) => {
    if (!need(t, "dpkg", "rpm")) return;
    const rpm = built?.rpm ?? "";
    assert.ok(rpm, "no .rpm was built");
    const q = async (...args: string[]): Promise<string> => (await run("rpm", ["-qp", ...args, rpm])).stdout;
    assert.equal((await q("--queryformat", "%{NAME} %{VERSION} %{RELEASE}")).trim(), `mfc ${packageVersion()} 1`);
    const list = (await q("--list")).split("\n").filter(Boolean);
    for (const f of ["/usr/local/sbin/mfc_daemon", "/usr/local/bin/mfc", "/usr/local/lib/mfc/node/bin/node", "/usr/local/lib/mfc/dist/daemon_main.js",
      "/etc/mfc_daemon.conf", "/usr/lib/systemd/system/mfc_daemon.service", "/usr/lib/tmpfiles.d/mfc_daemon.conf", "/var/lib/mfc_daemon",
      "/usr/lib/systemd/system/mfc_daemon@.service", "/etc/mfc_daemon.d", "/etc/mfc_daemon.d/instance.conf.example"]) {
      assert.ok(list.includes(f), `${f} not in the .rpm`);
    }
    assert.equal((await q("--configfiles")).trim(), "/etc/mfc_daemon.conf\n/etc/mfc_daemon.d/instance.conf.example");
    const dump = await q("--dump");
    assert.match(dump, /^\/var\/lib\/mfc_daemon \d+ \d+ \d+ 040750 mfc_daemon mfc_daemon /m);
    assert.match(dump, /^\/etc\/mfc_daemon\.conf \d+ \d+ \S+ 0100644 root root 1 /m);
    assert.match(await q("--queryformat", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]"), /^cn \/etc\/mfc_daemon\.conf$/m, "%config(noreplace)");
    const scripts = await q("--scripts");
    assert.match(scripts, /preinstall scriptlet[\s\S]*useradd -r -g mfc_daemon/);
    assert.match(scripts, /groupadd -r mfc_admin/);
    assert.match(scripts, /preuninstall scriptlet[\s\S]*disable --now mfc_daemon\.service/);
    assert.match(scripts, /postuninstall scriptlet[\s\S]*try-restart mfc_daemon\.service/);
    const requires = (await q("--requires")).split("\n").map((l) => l.trim()).filter(Boolean);
    t.diagnostic(`requires: ${requires.filter((r) => !r.includes("(")).join(", ")} + ${requires.filter((r) => r.includes("(")).length} soname/rpmlib entries`);
    const odd = requires.filter((r) => !/^(\/bin\/sh|\/usr\/bin\/env|\/usr\/bin\/getent|\/usr\/sbin\/(useradd|groupadd)|config\(mfc\) = .*|rtld\(GNU_HASH\)|rpmlib\(.*|(ld-linux-x86-64|ld-linux-aarch64|libc|libdl|libm|libpthread|libgcc_s|libstdc\+\+)\.so\.[0-9]+(\(.*\))*(\(64bit\))?)$/.test(r));
    assert.deepEqual(odd, [], "unexpected requirements (musl? a dev tool?)");
  });

  void test("rpm -i --root: installs into a test database and verifies clean", async (t) => {
    if (!need(t, "dpkg", "rpm")) return;
    const root = join(work, "rpmroot");
    await run("rpm", ["--root", root, "--initdb"]);
    const ins = await run("rpm", ["-i", "--root", root, "--nodeps", "--noscripts", built?.rpm ?? ""], { check: false });
    assert.equal(ins.code, 0, ins.stderr);
    // Without %pre the users do not exist in the test root (rpm may fall back to root and say
    // so); Debian's rpm also advises alien on every install.
    const noise = /(user|group) mfc_daemon does not exist - using root|should not be used directly install RPM packages|assuming you know what you are doing/;
    assert.deepEqual(ins.stderr.split("\n").filter((l) => l && !noise.test(l)), []);
    assert.equal((await run("rpm", ["-q", "--root", root, "mfc"])).stdout.trim(), `mfc-${packageVersion()}-1.${process.arch === "arm64" ? "aarch64" : "x86_64"}`);
    const verify = await run("rpm", ["-V", "--root", root, "--nodeps", "--noscripts", "mfc"], { check: false });
    // Only the owner of /var/lib/mfc_daemon may differ (no such user in the test root).
    const problems = verify.stdout.split("\n").filter((l) => l && !/^\.{5}[.U][.G]\.{2}\s+\/var\/lib\/mfc_daemon$/.test(l));
    assert.deepEqual(problems, [], verify.stdout + verify.stderr);
    assert.equal(statSync(join(root, "usr/local/lib/mfc/node/bin/node")).mode & 0o777, 0o755);
    const r = await run(join(root, "usr/local/lib/mfc/node/bin/node"), [join(root, "usr/local/lib/mfc/dist/cli/main.js"), "--version"]);
    assert.match(r.stdout, new RegExp(packageVersion().replace(/[.+]/g, "\\$&")));
    const erase = await run("rpm", ["-e", "--root", root, "--nodeps", "--noscripts", "mfc"], { check: false });
    assert.equal(erase.code, 0, erase.stderr);
    assert.equal(existsSync(join(root, "usr/local/lib/mfc")), false, "files left after rpm -e");
  });

  void test("the packaged config parses with the daemon's parser; the CLI finds the socket through it", async () => {
    const conf = join(PACKAGING, "mfc_daemon.conf");
    const c = loadConfig(conf);
    assert.equal(c.socketPath, "/run/mfc_daemon/mfc_daemon.sock");
    assert.equal(c.stateFile, "/var/lib/mfc_daemon/state.json");
    assert.equal(c.socketGroup, "mfc_admin");
    assert.equal(c.table, undefined);
    // Every key of the config is documented: a comment block right above it.
    const lines = readFileSync(conf, "utf8").split("\n");
    lines.forEach((l, i) => {
      if (/^[a-z_]+\s*=/.test(l)) assert.match(lines[i - 1] ?? "", /^#/, `key without a comment: ${l}`);
    });
    // The CLI reads socket_path from the same file (exit 3: nothing listens there in the test).
    const r = await run(process.execPath, ["dist/cli/main.js", "--config", conf, "status"], { check: false });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /\/run\/mfc_daemon\/mfc_daemon\.sock/);
  });
});
