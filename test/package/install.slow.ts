/**
 * The packages installed for real (npm run test:package; too slow for the main suite: it
 * debootstraps once, builds three packages and boots a container).
 *
 * .deb: a fresh copy of a cached Debian 12 root (test/package/chroot.ts) is booted with
 * systemd-nspawn inside the router namespace of a test lab (test/lab/lab.ts), so systemd runs
 * the packaged unit with every sandbox option active (unified cgroup hierarchy and the bpf()
 * syscall allowed, so IPAddressDeny= is enforced too). In it: dpkg -i; users, groups, dirs,
 * modes; the service active as mfc_daemon with exactly CAP_NET_RAW+CAP_NET_ADMIN; a member of
 * mfc_admin adds a route with the installed `mfc` and a packet crosses the lab; an outsider is
 * refused; an instance (mfc_daemon@red, its own table fed by an ip mrule) runs beside it and
 * forwards; an upgrade to a newer build restarts the daemon and the instance, keeps the state
 * file, the routes and a locally modified conffile; purge leaves nothing behind.
 *
 * .rpm: installed with its scriptlets (rpm --root, --nodeps: the Debian root has no rpm
 * database of its dependencies) into another copy; the daemon is started the way the unit
 * does it, without systemd: setpriv to mfc_daemon with the two ambient capabilities, chroot,
 * inside the lab's router namespace; a member of mfc_admin adds a route; a packet crosses.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createLab, type Lab } from "../lab/lab.js";
import { cachedRoot, copyRoot } from "./chroot.js";
import { buildPackages, ensureTool, packageVersion, run, type Built, type RunResult } from "./support.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const CAP_NET_ADMIN = 12;
const CAP_NET_RAW = 13;
const UPGRADE_VERSION = `${packageVersion()}+pkgtest2`;

let skipReason: string | undefined;
let built: Built | undefined;
let upgrade: Built | undefined;
let rootCache = "";
let work = "";

before(async () => {
  if (process.getuid?.() !== 0) { skipReason = "needs root (network namespaces, chroot, systemd-nspawn)"; return; }
  for (const [cmd, pkg] of [["dpkg-deb", "dpkg"], ["debootstrap", "debootstrap"], ["systemd-nspawn", "systemd-container"], ["rpmbuild", "rpm"], ["ip", "iproute2"], ["setpriv", "util-linux"]] as const) {
    const why = await ensureTool(cmd, pkg);
    if (why) { skipReason = why; return; }
  }
  work = mkdtempSync(join(tmpdir(), "mfct-pkginst-"));
  const t0 = Date.now();
  const [cache, v1, v2] = await Promise.all([
    cachedRoot().catch((err: unknown) => err as Error),
    buildPackages(),
    buildPackages({ version: UPGRADE_VERSION, formats: "deb" }),
  ]);
  built = v1;
  upgrade = v2;
  if (cache instanceof Error) { skipReason = cache.message; return; }
  rootCache = cache.path;
  process.stderr.write(`root cache ${cache.path} (mirror ${cache.mirror}${cache.builtIn ? `, debootstrap took ${cache.builtIn.toFixed(0)} s` : ", reused"}); packages built: ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
}, { timeout: 1_200_000 });

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
  for (const b of [built, upgrade]) if (b) rmSync(b.dir, { recursive: true, force: true });
});

/** A booted Debian container: systemd-nspawn --boot in the lab router's network namespace. */
class Container {
  private constructor(readonly root: string, readonly proc: ChildProcess, readonly leader: number, private readonly output: () => string) {}

  static async boot(root: string, netns: string): Promise<Container> {
    const name = `mfct-${process.pid}`;
    const proc = spawn("systemd-nspawn", [
      "-D", root, "-M", name, "--boot", "--register=no", "--keep-unit",
      `--network-namespace-path=/run/netns/${netns}`,
      // nspawn drops CAP_NET_ADMIN for a shared network, and filters bpf(): without them the
      // unit's CapabilityBoundingSet and IPAddressDeny= could not be exercised as on a host.
      "--capability=CAP_NET_ADMIN", "--system-call-filter=bpf",
    ], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: "1" } });
    let out = "";
    const keep = (d: Buffer): void => { out = (out + d.toString()).slice(-20_000); };
    proc.stdout?.on("data", keep);
    proc.stderr?.on("data", keep);
    const deadline = Date.now() + 30_000;
    let leader: number | undefined;
    while (leader === undefined) {
      if (proc.exitCode !== null || Date.now() > deadline) { proc.kill("SIGKILL"); throw new Error(`systemd-nspawn did not start:\n${out}`); }
      leader = childSystemd(proc.pid ?? -1);
      if (leader === undefined) await sleep(100);
    }
    const c = new Container(root, proc, leader, () => out);
    // "running" or "degraded" once booted (a unit we do not care about may fail in a container).
    for (;;) {
      const r = await c.exec(["systemctl", "is-system-running"], { check: false });
      if (/^(running|degraded)$/m.test(r.stdout)) break;
      if (Date.now() > deadline + 30_000) throw new Error(`container did not finish booting (${r.stdout.trim()}):\n${out}`);
      await sleep(200);
    }
    return c;
  }

  /** Runs a command inside the container, as root, with a clean environment. */
  exec(cmd: string[], opts: { check?: boolean; input?: string } = {}): Promise<RunResult> {
    return run("nsenter", ["-t", String(this.leader), "-m", "-u", "-i", "-n", "-p", "--", "env", "-i", `PATH=${PATH}`, "LANG=C.UTF-8", ...cmd], { check: opts.check, input: opts.input, timeoutMs: 120_000 });
  }

  async sh(script: string): Promise<string> {
    return (await this.exec(["sh", "-ec", script])).stdout;
  }

  logs(): string {
    return this.output();
  }

  async shutdown(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    const exited = new Promise<void>((r) => this.proc.once("exit", () => r()));
    try { process.kill(this.leader, "SIGRTMIN+4"); } catch { /* gone */ } // systemd: poweroff
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), 30_000);
    await exited;
    clearTimeout(timer);
  }
}

/** The container's init: the child of systemd-nspawn named systemd. */
function childSystemd(nspawnPid: number): number | undefined {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(rest[1]) === nspawnPid && readFileSync(`/proc/${entry}/comm`, "utf8").trim() === "systemd") return Number(entry);
    } catch {
      /* exited meanwhile */
    }
  }
  return undefined;
}

function statusField(status: string, name: string): string {
  return new RegExp(`^${name}:\\s*(.*)$`, "m").exec(status)?.[1]?.trim() ?? "";
}

/** Everything on the root file system that a package could leave behind, with owners and modes. */
async function snapshot(c: Container): Promise<Map<string, string>> {
  // Volatile or bookkeeping places that change whether or not a package is installed.
  const prune = ["/proc", "/sys", "/dev", "/run", "/tmp", "/var/tmp", "/var/log", "/var/cache", "/var/lib/dpkg", "/var/lib/apt", "/srv/mfc-test",
    "/var/lib/systemd/random-seed", "/var/lib/systemd/timers", "/var/lib/systemd/catalog", "/var/lib/systemd/coredump", "/var/lib/private", "/etc/machine-id"];
  const expr = prune.map((p) => `-path ${p}`).join(" -o ");
  const out = await c.sh(`find / -xdev \\( ${expr} \\) -prune -o -printf '%p %y %m %U %G\\n'; md5sum /etc/passwd /etc/group /etc/shadow /etc/gshadow`);
  const m = new Map<string, string>();
  for (const line of out.split("\n").filter(Boolean)) {
    const md5 = /^([0-9a-f]{32})\s+(\S+)$/.exec(line);
    if (md5) m.set(`content:${md5[2] ?? ""}`, md5[1] ?? "");
    else m.set(line.split(" ")[0] ?? "", line);
  }
  return m;
}

function diff(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of a) if (b.get(k) !== v) out.push(`- ${v}${b.has(k) ? `  => ${b.get(k) ?? ""}` : ""}`);
  for (const [k, v] of b) if (!a.has(k)) out.push(`+ ${v}`);
  return out;
}

void describe(".deb in a booted Debian 12 container: install, use, upgrade, purge", { timeout: 900_000 }, () => {
  let lab: Lab | undefined;
  let c: Container | undefined;
  let before0: Map<string, string> | undefined;
  const group = "239.77.1.1";
  const port = 5077;

  before(async () => {
    if (skipReason) return;
    lab = await createLab();
    const root = join(work, "deb-root");
    await copyRoot(rootCache, root);
    mkdirSync(join(root, "srv/mfc-test"), { recursive: true });
    copyFileSync(built?.deb ?? "", join(root, "srv/mfc-test/mfc-v1.deb"));
    copyFileSync(upgrade?.deb ?? "", join(root, "srv/mfc-test/mfc-v2.deb"));
    c = await Container.boot(root, lab.ns.router);
    // The operators exist before the package, as on a real router.
    await c.sh("useradd -m alice; useradd -m bob");
    before0 = await snapshot(c);
  });

  after(async () => {
    await c?.shutdown();
    await lab?.destroy();
  });

  const box = (): Container => { assert.ok(c); return c; };
  const mfcAs = (user: string, args: string[]): Promise<RunResult> => box().exec(["runuser", "-u", user, "--", "mfc", ...args], { check: false });

  void test("dpkg -i: users, groups, directories, modes, the service running as designed", async (t) => {
    if (skipReason) return t.skip(skipReason);
    const ct = box();
    const t0 = Date.now();
    const ins = await ct.exec(["dpkg", "-i", "/srv/mfc-test/mfc-v1.deb"], { check: false });
    t.diagnostic(`dpkg -i: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    assert.equal(ins.code, 0, ins.stdout + ins.stderr);
    assert.doesNotMatch(ins.stderr, /warning|error/i, ins.stderr);

    const [pw, adm, dgrp] = (await ct.sh("getent passwd mfc_daemon; getent group mfc_admin; getent group mfc_daemon")).trim().split("\n");
    const [, , uid, gid, , home, shell] = (pw ?? "").split(":");
    assert.ok(Number(uid) > 0 && Number(uid) < 1000, `system uid: ${pw ?? ""}`);
    assert.equal(shell, "/usr/sbin/nologin");
    assert.equal(home, "/var/lib/mfc_daemon");
    assert.equal((dgrp ?? "").split(":")[2], gid, "primary group mfc_daemon");
    assert.ok(Number((adm ?? "").split(":")[2]) < 1000, `mfc_admin is a system group: ${adm ?? ""}`);

    const modes = await ct.sh("stat -c '%n %a %U %G' /var/lib/mfc_daemon /etc/mfc_daemon.conf /usr/local/sbin/mfc_daemon /usr/local/bin/mfc /usr/local/lib/mfc/node/bin/node /run/mfc_daemon /run/mfc_daemon/mfc_daemon.sock");
    assert.match(modes, /^\/var\/lib\/mfc_daemon 750 mfc_daemon mfc_daemon$/m);
    assert.match(modes, /^\/etc\/mfc_daemon\.conf 644 root root$/m);
    assert.match(modes, /^\/usr\/local\/sbin\/mfc_daemon 755 root root$/m);
    assert.match(modes, /^\/usr\/local\/bin\/mfc 755 root root$/m);
    assert.match(modes, /^\/usr\/local\/lib\/mfc\/node\/bin\/node 755 root root$/m);
    assert.match(modes, /^\/run\/mfc_daemon 755 mfc_daemon mfc_daemon$/m);
    assert.match(modes, /^\/run\/mfc_daemon\/mfc_daemon\.sock 660 mfc_daemon mfc_admin$/m);
    assert.equal((await ct.sh("readlink /run/mfc_daemon.sock")).trim(), "mfc_daemon/mfc_daemon.sock");

    assert.equal((await ct.exec(["systemctl", "is-enabled", "mfc_daemon"], { check: false })).stdout.trim(), "enabled");
    assert.equal((await ct.exec(["systemctl", "is-active", "mfc_daemon"], { check: false })).stdout.trim(), "active");
    const pid = (await ct.sh("systemctl show -p MainPID --value mfc_daemon")).trim();
    const status = await ct.sh(`cat /proc/${pid}/status`);
    assert.equal(statusField(status, "Uid").split(/\s+/)[0], uid);
    assert.deepEqual(statusField(status, "Groups").split(/\s+/).sort(), [(adm ?? "").split(":")[2], gid].sort());
    const want = ((1n << BigInt(CAP_NET_ADMIN)) | (1n << BigInt(CAP_NET_RAW))).toString(16).padStart(16, "0");
    for (const set of ["CapEff", "CapPrm", "CapAmb", "CapBnd"]) assert.equal(statusField(status, set), want, set);
    assert.equal(statusField(status, "NoNewPrivs"), "1");
    assert.equal(statusField(status, "Seccomp"), "2");
    // The daemon's own view of the file system: read-only everywhere but its two directories,
    // /proc/sys readable (rp_filter diagnostics), no home directories.
    const view = await ct.sh(`nsenter -t ${pid} -m sh -c 'cat /proc/sys/net/ipv4/conf/all/rp_filter; ls -A /home | wc -l; touch /etc/x 2>&1 || echo ro-etc; touch /usr/local/x 2>&1 || echo ro-usr'`);
    assert.match(view, /^\d\n0\n(.|\n)*ro-etc(.|\n)*ro-usr/);
    // Type=notify: systemd got READY=1 and the STATUS= line.
    assert.match(await ct.sh("systemctl show -p StatusText --value mfc_daemon"), /route\(s\) installed/);
  });

  void test("a member of mfc_admin adds a route with the installed mfc; a packet crosses the lab; outsiders are refused", async (t) => {
    if (skipReason) return t.skip(skipReason);
    assert.ok(lab);
    const ct = box();
    await ct.sh("adduser --quiet alice mfc_admin");
    const add = await mfcAs("alice", ["add", "from", lab.addr.sender, "to", group, "iif", "up0", "oif", "dn1"]);
    assert.equal(add.code, 0, add.stderr);
    const bob = await mfcAs("bob", ["show"]);
    assert.equal(bob.code, 3, "an outsider cannot reach the daemon");
    // The SPEC path works too (symlink).
    const show = await mfcAs("alice", ["-s", "/var/run/mfc_daemon.sock", "-j", "show"]);
    assert.equal(show.code, 0, show.stderr);
    const routes = (JSON.parse(show.stdout) as { routes: { group: string; state: string }[] }).routes;
    assert.deepEqual(routes.map((r) => [r.group, r.state]), [[group, "installed"]]);

    // IPAddressDeny= is really enforced in this container (cgroup BPF), so the packet below
    // proves the daemon and forwarding work under it: a unit with it cannot send UDP, without it can.
    const probe = async (deny: string): Promise<number> => {
      await ct.sh(`printf '[Service]\\nType=oneshot\\nIPAddressDeny=${deny}\\nExecStart=/bin/bash -c "echo x > /dev/udp/127.0.0.1/9"\\n' > /run/systemd/system/mfct-ipdeny.service; systemctl daemon-reload`);
      const r = await ct.exec(["systemctl", "start", "mfct-ipdeny.service"], { check: false });
      await ct.sh("systemctl reset-failed mfct-ipdeny.service 2>/dev/null || true; rm -f /run/systemd/system/mfct-ipdeny.service; systemctl daemon-reload");
      return r.code;
    };
    assert.equal(await probe(""), 0, "control: UDP without IPAddressDeny");
    assert.notEqual(await probe("any"), 0, "IPAddressDeny=any is not enforced in the test container: this test would prove nothing about it");
    const rx = await lab.listen("recv1", group, port);
    try {
      await lab.send(group, port, 3, { intervalMs: 50 });
      assert.ok(await rx.waitFor(1, 5_000), "no packet crossed the router (IPAddressDeny? rp_filter? the route?)");
    } finally {
      await rx.stop();
    }
    const after1 = await mfcAs("alice", ["-j", "show"]);
    const pkts = (JSON.parse(after1.stdout) as { routes: { packets: number }[] }).routes[0]?.packets ?? 0;
    assert.ok(pkts >= 1, `route counters: ${pkts}`);
    assert.ok(existsSync(join(ct.root, "var/lib/mfc_daemon/state.json")), "state file written");
  });

  /** The instance beside the main daemon: table 10, fed by dn2 (an ip mrule), route dn2 -> dn1. */
  const instGroup = "239.77.2.1";
  const instPort = 5078;
  const instanceForwards = async (): Promise<boolean> => {
    assert.ok(lab);
    const rx = await lab.listen("recv1", instGroup, instPort);
    try {
      await lab.send(instGroup, instPort, 3, { intervalMs: 50, fromNs: lab.ns.recv2, localAddr: lab.addr.recv2 });
      return await rx.waitFor(1, 5_000);
    } finally {
      await rx.stop();
    }
  };

  void test("an instance: mfc_daemon@red runs beside the main daemon on its own table, mfc -i red reaches it, a packet crosses", async (t) => {
    if (skipReason) return t.skip(skipReason);
    assert.ok(lab);
    const ct = box();
    await lab.exec(lab.ns.router, ["ip", "mrule", "add", "iif", "dn2", "lookup", "10"]);
    await ct.sh("cp /etc/mfc_daemon.d/instance.conf.example /etc/mfc_daemon.d/red.conf; systemctl enable --now mfc_daemon@red"); // table = 10 there
    assert.equal((await ct.exec(["systemctl", "is-active", "mfc_daemon@red"], { check: false })).stdout.trim(), "active", await ct.sh("journalctl -u mfc_daemon@red --no-pager | tail -20"));
    assert.equal((await ct.exec(["systemctl", "is-active", "mfc_daemon"], { check: false })).stdout.trim(), "active", "the main daemon runs on");
    const pid = (await ct.sh("systemctl show -p MainPID --value mfc_daemon@red")).trim();
    assert.equal(statusField(await ct.sh(`cat /proc/${pid}/status`), "Uid").split(/\s+/)[0], (await ct.sh("id -u mfc_daemon")).trim(), "runs as mfc_daemon");
    assert.equal((await ct.sh("stat -c '%U %a' /run/mfc_daemon.d/red")).trim(), "mfc_daemon 755", "its RuntimeDirectory");
    const add = await mfcAs("alice", ["-i", "red", "add", "from", lab.addr.recv2, "to", instGroup, "iif", "dn2", "oif", "dn1"]);
    assert.equal(add.code, 0, add.stderr);
    const st = JSON.parse((await mfcAs("alice", ["-i", "red", "-j", "status"])).stdout) as { result: { pid: number; table: unknown; state_file: string } };
    assert.equal(String(st.result.pid), pid);
    assert.equal(String(st.result.table), "10");
    assert.equal(st.result.state_file, "/var/lib/mfc_daemon/red.state.json");
    const main = JSON.parse((await mfcAs("alice", ["-j", "show"])).stdout) as { routes: { group: string }[] };
    assert.deepEqual(main.routes.map((r) => r.group), [group], "the main daemon does not see the instance's route");
    assert.match((await lab.exec(lab.ns.router, ["ip", "mroute", "show", "table", "10"])).stdout, new RegExp(`\\(${lab.addr.recv2.replace(/\./g, "\\.")},${instGroup.replace(/\./g, "\\.")}\\)\\s+Iif: dn2`));
    assert.ok(await instanceForwards(), "no packet crossed through the instance's table");
    assert.equal((await mfcAs("bob", ["-i", "red", "show"])).code, 3, "an outsider cannot reach the instance");
  });

  void test("upgrade to a newer build: the daemon restarts on it, state, routes and a modified conffile are kept", async (t) => {
    if (skipReason) return t.skip(skipReason);
    assert.ok(lab);
    const ct = box();
    const pid1 = (await ct.sh("systemctl show -p MainPID --value mfc_daemon")).trim();
    const instPid1 = (await ct.sh("systemctl show -p MainPID --value mfc_daemon@red")).trim();
    const state1 = readFileSync(join(ct.root, "var/lib/mfc_daemon/state.json"), "utf8");
    await ct.sh("sed -i 's/^client_timeout_s = 60$/client_timeout_s = 61/' /etc/mfc_daemon.conf");
    const up = await ct.exec(["dpkg", "-i", "/srv/mfc-test/mfc-v2.deb"], { check: false });
    assert.equal(up.code, 0, up.stdout + up.stderr);
    assert.equal((await ct.sh("dpkg-query -W -f '${Version}' mfc")).trim(), UPGRADE_VERSION);
    assert.match(await ct.sh("cat /etc/mfc_daemon.conf"), /^client_timeout_s = 61$/m, "local conffile change kept");
    assert.equal(existsSync(join(ct.root, "etc/mfc_daemon.conf.dpkg-dist")), false);
    assert.equal((await ct.exec(["systemctl", "is-active", "mfc_daemon"], { check: false })).stdout.trim(), "active");
    const pid2 = (await ct.sh("systemctl show -p MainPID --value mfc_daemon")).trim();
    assert.notEqual(pid2, pid1, "the daemon was restarted");
    const instPid2 = (await ct.sh("systemctl show -p MainPID --value mfc_daemon@red")).trim();
    assert.notEqual(instPid2, instPid1, "the instance was restarted too");
    assert.equal((await ct.exec(["systemctl", "is-active", "mfc_daemon@red"], { check: false })).stdout.trim(), "active");
    assert.ok(await instanceForwards(), "the instance restored its route after the upgrade");
    const st = await mfcAs("alice", ["-j", "status"]);
    const stj = JSON.parse(st.stdout) as { version?: string; result?: { version?: string } };
    assert.equal(stj.result?.version ?? stj.version, UPGRADE_VERSION, st.stdout);
    assert.equal(readFileSync(join(ct.root, "var/lib/mfc_daemon/state.json"), "utf8").length > 0, true);
    assert.ok(state1.includes(group));
    const show = JSON.parse((await mfcAs("alice", ["-j", "show"])).stdout) as { routes: { group: string; state: string }[] };
    assert.deepEqual(show.routes.map((r) => [r.group, r.state]), [[group, "installed"]], "restored from the state file");
    const rx = await lab.listen("recv1", group, port);
    try {
      await lab.send(group, port, 3, { intervalMs: 50 });
      assert.ok(await rx.waitFor(1, 5_000), "no packet crossed the router after the upgrade");
    } finally {
      await rx.stop();
    }
  });

  void test("purge: service stopped, kernel table released, nothing left behind", async (t) => {
    if (skipReason) return t.skip(skipReason);
    assert.ok(lab && before0);
    const ct = box();
    const purge = await ct.exec(["dpkg", "--purge", "mfc"], { check: false });
    assert.equal(purge.code, 0, purge.stdout + purge.stderr);
    assert.notEqual((await ct.exec(["systemctl", "is-active", "mfc_daemon"], { check: false })).stdout.trim(), "active");
    const vifs = await lab.exec(lab.ns.router, ["cat", "/proc/net/ip_mr_vif"]);
    assert.equal(vifs.stdout.trim().split("\n").length, 1, `VIFs left in the kernel:\n${vifs.stdout}`);
    assert.equal((await ct.exec(["getent", "passwd", "mfc_daemon"], { check: false })).code, 2);
    assert.equal((await ct.exec(["getent", "group", "mfc_admin"], { check: false })).code, 2);
    assert.equal((await ct.exec(["getent", "group", "mfc_daemon"], { check: false })).code, 2);
    assert.notEqual((await ct.exec(["systemctl", "is-active", "mfc_daemon@red"], { check: false })).stdout.trim(), "active");
    assert.equal((await lab.exec(lab.ns.router, ["ip", "mroute", "show", "table", "10"])).stdout.trim(), "", "the instance released table 10");
    for (const p of ["run/mfc_daemon", "run/mfc_daemon.sock", "run/mfc_daemon.d"]) assert.equal((await ct.exec(["test", "-e", `/${p}`], { check: false })).code, 1, `/${p} left`);
    const left = diff(before0, await snapshot(ct));
    assert.deepEqual(left, [], "the file system differs from before the installation");
  });
});

void describe(".rpm with its scriptlets in a Debian root; the daemon started as the unit does, without systemd", { timeout: 600_000 }, () => {
  let lab: Lab | undefined;
  let root = "";
  let daemon: ChildProcess | undefined;
  let daemonLog = "";

  before(async () => {
    if (skipReason) return;
    lab = await createLab();
    root = join(work, "rpm-root");
    await copyRoot(rootCache, root);
  });

  after(async () => {
    if (daemon && daemon.exitCode === null) {
      daemon.kill("SIGTERM");
      await new Promise((r) => { daemon?.once("exit", r); setTimeout(r, 5_000); });
    }
    await lab?.destroy();
  });

  /** chroot + a private /proc (the daemon reads /proc/self/status), in the lab's router ns. */
  const inRoot = (cmd: string[]): string[] => ["unshare", "--mount", "--propagation", "private", "--", "sh", "-ec",
    'mount -t proc proc "$0/proc"; exec chroot "$0" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"', root, ...cmd];

  void test("rpm -i runs %pre (users, groups) and installs the files with their owners", async (t) => {
    if (skipReason) return t.skip(skipReason);
    await run("rpm", ["--root", root, "--initdb"]);
    const ins = await run("rpm", ["-i", "--root", root, "--nodeps", built?.rpm ?? ""], { check: false });
    assert.equal(ins.code, 0, ins.stdout + ins.stderr);
    const ids = (await run("chroot", [root, "sh", "-c", "getent passwd mfc_daemon; getent group mfc_admin; stat -c '%n %a %U %G' /var/lib/mfc_daemon /etc/mfc_daemon.conf /usr/local/sbin/mfc_daemon"])).stdout;
    assert.match(ids, /^mfc_daemon:x:\d+:\d+:[^:]*:\/var\/lib\/mfc_daemon:\/sbin\/nologin$/m);
    assert.match(ids, /^mfc_admin:x:\d+:$/m);
    assert.match(ids, /^\/var\/lib\/mfc_daemon 750 mfc_daemon mfc_daemon$/m);
    assert.match(ids, /^\/usr\/local\/sbin\/mfc_daemon 755 root root$/m);
    const v = await run("rpm", ["-V", "--root", root, "--nodeps", "mfc"], { check: false });
    assert.equal(v.stdout.trim(), "", `rpm -V: ${v.stdout}`);
  });

  void test("setpriv to mfc_daemon with CAP_NET_RAW+CAP_NET_ADMIN (as the unit), an mfc_admin member adds a route, a packet crosses", async (t) => {
    if (skipReason) return t.skip(skipReason);
    assert.ok(lab);
    // What systemd does for the unit: RuntimeDirectory=, then User=, Group=, SupplementaryGroups=,
    // AmbientCapabilities=, CapabilityBoundingSet=, NoNewPrivileges=.
    await run("chroot", [root, "install", "-d", "-o", "mfc_daemon", "-g", "mfc_daemon", "-m", "0755", "/run/mfc_daemon"]);
    daemon = lab.spawn(lab.ns.router, inRoot(["setpriv", "--reuid=mfc_daemon", "--regid=mfc_daemon", "--groups=mfc_admin",
      "--inh-caps=-all,+net_raw,+net_admin", "--ambient-caps=-all,+net_raw,+net_admin", "--bounding-set=-all,+net_raw,+net_admin", "--no-new-privs",
      "/usr/local/sbin/mfc_daemon", "--config", "/etc/mfc_daemon.conf"]));
    daemon.stderr?.on("data", (d: Buffer) => (daemonLog += d.toString()));
    const sock = join(root, "run/mfc_daemon/mfc_daemon.sock");
    const deadline = Date.now() + 20_000;
    while (!existsSync(sock)) {
      assert.equal(daemon.exitCode, null, `daemon exited: ${daemonLog}`);
      assert.ok(Date.now() < deadline, `no socket: ${daemonLog}`);
      await sleep(50);
    }
    await run("chroot", [root, "sh", "-ec", "useradd -m carol; usermod -aG mfc_admin carol"]);
    const group = "239.77.2.2";
    const asCarol = (args: string[]): Promise<RunResult> => lab?.exec(lab.ns.router, inRoot(["setpriv", "--reuid=carol", "--regid=carol", "--init-groups", "mfc", ...args]), { allowFail: true }) as Promise<RunResult>;
    const add = await asCarol(["add", "from", lab.addr.sender, "to", group, "iif", "up0", "oif", "dn2"]);
    assert.equal(add.code, 0, add.stderr + daemonLog);
    const rx = await lab.listen("recv2", group, 5078);
    try {
      await lab.send(group, 5078, 3, { intervalMs: 50 });
      assert.ok(await rx.waitFor(1, 5_000), "no packet crossed the router");
    } finally {
      await rx.stop();
    }
    daemon.kill("SIGTERM");
    const code = await new Promise<number | null>((r) => daemon?.once("exit", (c) => r(c)));
    assert.equal(code, 0, daemonLog);
    assert.match(readFileSync(join(root, "var/lib/mfc_daemon/state.json"), "utf8"), new RegExp(group.replace(/\./g, "\\.")));
  });

  void test("rpm -e removes the files; state and users stay (RPM convention, documented)", async (t) => {
    if (skipReason) return t.skip(skipReason);
    const e = await run("rpm", ["-e", "--root", root, "--nodeps", "mfc"], { check: false });
    assert.equal(e.code, 0, e.stdout + e.stderr);
    assert.equal(existsSync(join(root, "usr/local/lib/mfc")), false);
    assert.equal(existsSync(join(root, "usr/local/sbin/mfc_daemon")), false);
    assert.ok(existsSync(join(root, "var/lib/mfc_daemon/state.json")), "the routes survive an erase");
    writeFileSync(join(work, "done"), "");
  });
});
