// Instances (SPEC §7, issue 14): several daemons side by side in one router, each with its own
// table, socket and state file, found by name alone: `mfc_daemon --instance NAME` reads
// /etc/mfc_daemon.d/NAME.conf and defaults to /run/mfc_daemon.d/NAME/mfc_daemon.sock and
// /var/lib/mfc_daemon/NAME.state.json; `mfc -i NAME` derives the same socket.
//
//   sender --- up0 [router: instance A on table 10, instance B on table 20] dn1 --- recv1
//                                                                     dn2 --- recv2 (B's source)
//   ip mrule: iif up0 -> table 10, iif dn2 -> table 20
//
// The real paths are used, but every daemon and CLI runs inside `ip netns exec` (a mount
// namespace of its own) with temp dirs bind-mounted over /etc/mfc_daemon.d, /run/mfc_daemon.d and
// /var/lib/mfc_daemon, so the host's own files are never seen or touched (empty mount points are
// created when missing and removed at the end). Non-default tables are read with rtnetlink
// (`ip mroute show table N`); /proc/net/ip_mr_* shows only the default table.
// Needs root and a built dist/. Run: node --import tsx --test test/e2e/instances.test.ts
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, rmdirSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLab, type ExecResult } from "../lab/lab.js";
import { DAEMON_NODE_FLAGS } from "../../src/daemon/memory.js";
import { CLI_JS, DAEMON_JS, kernelTables } from "../lab/daemon.js";
import { sleep, until } from "../lab/wait.js";

const skip = process.getuid?.() !== 0 ? "needs root (network namespaces, bind mounts)" : false;

/** A datagram that was going to cross a veth has crossed by then. */
const QUIET_MS = 300;
const TABLE_A = 10;
const TABLE_B = 20;

void describe("instances side by side", { skip }, async () => {
  const lab = await createLab();
  after(() => lab.destroy());
  const tag = `t${process.pid}`;
  const A = `${tag}-a`;
  const B = `${tag}_b`;
  const G1 = `239.77.${lab.x}.1`;
  const G2 = `239.77.${lab.x}.2`;
  const P1 = 42001;
  const P2 = 42002;

  // The host paths the instances use, each replaced by a temp dir inside the namespaces.
  const mounts = { "/etc/mfc_daemon.d": "", "/run/mfc_daemon.d": "", "/var/lib/mfc_daemon": "" };
  const created: string[] = [];
  for (const target of Object.keys(mounts) as (keyof typeof mounts)[]) {
    if (!existsSync(target)) { mkdirSync(target, { mode: 0o755 }); created.push(target); }
    mounts[target] = mkdtempSync(join(tmpdir(), "mfct-inst-"));
  }
  after(() => {
    for (const dir of Object.values(mounts)) rmSync(dir, { recursive: true, force: true });
    for (const target of created) {
      try { rmdirSync(target); } catch { /* someone else put something there meanwhile: keep it */ }
    }
  });
  const [etcDir, runDir, libDir] = Object.values(mounts) as [string, string, string];
  /** argv prefix: bind the temp dirs over the real paths, then exec the command. */
  const inMounts = (cmd: string[]): string[] => [
    "sh", "-c", 'mount --bind "$1" /etc/mfc_daemon.d && mount --bind "$2" /run/mfc_daemon.d && mount --bind "$3" /var/lib/mfc_daemon && shift 3 && exec "$@"',
    "sh", etcDir, runDir, libDir, ...cmd,
  ];
  const writeConf = (name: string, lines: string[]): void => {
    writeFileSync(join(etcDir, `${name}.conf`), `[daemon]\nsocket_group =\n${lines.join("\n")}\n`);
  };
  /** The instance's state (snapshot and journal) as its default state file holds it, from the host. */
  const stateText = (name: string): string => [".state.json", ".state.json.journal"]
    .map((ext) => join(libDir, name + ext)).filter((f) => existsSync(f)).map((f) => readFileSync(f, "utf8")).join("");
  /** The instance's default socket, as seen from the host. */
  const hostSocket = (name: string): string => join(runDir, name, "mfc_daemon.sock");

  interface Instance { name: string; proc: ChildProcess; pid: number; log(): string; exited: Promise<number | null>; stop(): Promise<number | null> }
  const running = new Set<Instance>();
  after(async () => { for (const i of running) await i.stop(); });

  function spawnInstance(name: string, extra: string[] = []): Instance {
    const proc = lab.spawn(lab.ns.router, inMounts([process.execPath, ...DAEMON_NODE_FLAGS, DAEMON_JS, "--instance", name, ...extra]));
    let log = "";
    proc.stderr?.on("data", (d: Buffer) => (log += d.toString()));
    proc.stdout?.on("data", (d: Buffer) => (log += d.toString()));
    let code: number | null | undefined;
    const exited = new Promise<number | null>((res) => proc.once("exit", (c) => { code = c; res(c); }));
    const inst: Instance = {
      name, proc, pid: proc.pid ?? -1, log: () => log, exited,
      stop: async () => {
        running.delete(inst);
        if (code === undefined) proc.kill("SIGTERM");
        return exited;
      },
    };
    running.add(inst);
    return inst;
  }

  function ping(socket: string): Promise<boolean> {
    return new Promise((res) => {
      const c = createConnection(socket);
      c.once("connect", () => c.write('{"action":"PING"}\n'));
      c.once("data", () => { c.destroy(); res(true); });
      c.once("error", () => res(false));
    });
  }

  async function startInstance(name: string): Promise<Instance> {
    const inst = spawnInstance(name);
    let gone = false;
    void inst.exited.then(() => { gone = true; });
    await until(`instance ${name} ready`, async () => {
      if (gone) throw new Error(`instance ${name} exited during start-up:\n${inst.log()}`);
      return existsSync(hostSocket(name)) && (await ping(hostSocket(name)));
    }, 15_000);
    return inst;
  }

  /** An instance that must refuse to start: its exit code and log. */
  async function refused(name: string, extra: string[] = []): Promise<{ code: number | null; log: string }> {
    const inst = spawnInstance(name, extra);
    const timer = setTimeout(() => inst.proc.kill("SIGKILL"), 15_000);
    const code = await inst.exited;
    clearTimeout(timer);
    running.delete(inst);
    return { code, log: inst.log() };
  }

  /** The built `mfc` in the router, in the same bind mounts (no -s: it finds the socket itself). */
  const mfc = (args: string[]): Promise<ExecResult> => lab.exec(lab.ns.router, inMounts([process.execPath, CLI_JS, ...args]), { allowFail: true });
  async function mfcOk(args: string[]): Promise<string> {
    const r = await mfc(args);
    assert.equal(r.code, 0, `mfc ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  }
  const status = async (args: string[]): Promise<Record<string, unknown>> =>
    (JSON.parse(await mfcOk([...args, "-j", "status"])) as { result: Record<string, unknown> }).result;
  const shownGroups = async (name: string): Promise<string[]> =>
    (JSON.parse(await mfcOk(["-i", name, "-j", "show"])) as { routes: { group: string }[] }).routes.map((r) => r.group).sort();

  /** `ip mroute show table N` (rtnetlink) in the router: one line per resolved entry of that table. */
  async function table(n: number): Promise<string[]> {
    const r = await lab.exec(lab.ns.router, ["ip", "mroute", "show", "table", String(n)], { allowFail: true });
    if (r.code !== 0 && /table does not exist/i.test(r.stderr)) return [];
    assert.equal(r.code, 0, `ip mroute show table ${n}: ${r.stderr}`);
    return r.stdout.split("\n").filter((l) => l.startsWith("(") && !l.includes("Iif: unresolved"));
  }

  /** A line of `ip mroute show`: `(S,G)  Iif: IIF  Oifs: OIF  State: resolved`. */
  const entry = (source: string, group: string, iif: string, oif: string): RegExp =>
    new RegExp(`^\\(${source},${group}\\)\\s+Iif: ${iif}\\s+Oifs: ${oif}\\s+State: resolved`.replace(/\./g, "\\."));

  /** How many of n datagrams for (group, port), sent from `from`, reach recv1 behind dn1. */
  async function delivered(group: string, port: number, from: "sender" | "recv2", n = 4): Promise<number> {
    const rx = await lab.listen("recv1", group, port);
    try {
      if (from === "sender") await lab.send(group, port, n, { payload: from });
      else await lab.send(group, port, n, { fromNs: lab.ns.recv2, localAddr: lab.addr.recv2, payload: from });
      await rx.waitFor(n);
      await sleep(QUIET_MS);
      return rx.count();
    } finally {
      await rx.stop();
    }
  }

  let a: Instance;
  let b: Instance;

  before(async () => {
    // Traffic from up0 is looked up in table 10, from dn2 in table 20; nothing reaches the default table's owner.
    await lab.exec(lab.ns.router, ["ip", "mrule", "add", "iif", "up0", "lookup", String(TABLE_A)]);
    await lab.exec(lab.ns.router, ["ip", "mrule", "add", "iif", "dn2", "lookup", String(TABLE_B)]);
    writeConf(A, [`table = ${TABLE_A}`]);
    writeConf(B, [`table = ${TABLE_B}`]);
    a = await startInstance(A);
    b = await startInstance(B);
    await mfcOk(["-i", A, "add", "from", lab.addr.sender, "to", G1, "iif", "up0", "oif", "dn1"]);
    await mfcOk(["--instance", B, "add", "from", lab.addr.recv2, "to", G2, "iif", "dn2", "oif", "dn1"]);
  });

  void it("each instance has its own socket and state file, found by name", async () => {
    assert.notEqual(hostSocket(A), hostSocket(B));
    const sa = await status(["-i", A]);
    const sb = await status([`--instance=${B}`]);
    assert.equal(sa.pid, a.pid, "mfc -i A reaches A");
    assert.equal(sb.pid, b.pid, "mfc --instance=B reaches B");
    assert.equal(String(sa.table), String(TABLE_A));
    assert.equal(String(sb.table), String(TABLE_B));
    assert.equal(sa.socket, `/run/mfc_daemon.d/${A}/mfc_daemon.sock`);
    assert.equal(sa.state_file, `/var/lib/mfc_daemon/${A}.state.json`);
    assert.equal(sb.state_file, `/var/lib/mfc_daemon/${B}.state.json`);
    assert.deepEqual(await shownGroups(A), [G1]);
    assert.deepEqual(await shownGroups(B), [G2]);
    // Each change went to its own state file only.
    assert.ok(stateText(A).includes(`"${G1}"`) && !stateText(A).includes(`"${G2}"`), stateText(A));
    assert.ok(stateText(B).includes(`"${G2}"`) && !stateText(B).includes(`"${G1}"`), stateText(B));
    // An explicit -s wins over -i.
    assert.equal((await status(["-i", A, "-s", `/run/mfc_daemon.d/${B}/mfc_daemon.sock`])).pid, b.pid);
  });

  void it("each instance programs its own table (rtnetlink), not the default one (/proc)", async () => {
    const t10 = await table(TABLE_A);
    const t20 = await table(TABLE_B);
    assert.equal(t10.length, 1, `table ${TABLE_A}: ${t10.join(" | ")}`);
    assert.match(t10[0] as string, entry(lab.addr.sender, G1, "up0", "dn1"));
    assert.equal(t20.length, 1, `table ${TABLE_B}: ${t20.join(" | ")}`);
    assert.match(t20[0] as string, entry(lab.addr.recv2, G2, "dn2", "dn1"));
    const proc = await kernelTables(lab);
    assert.deepEqual(proc.vif, [], "the default table has no VIFs");
    assert.deepEqual(proc.cache.filter((row) => row.split(/\s+/)[2] !== "-1"), [], "the default table has no entries");
  });

  void it("both forward real traffic, each its own group from its own upstream", async () => {
    assert.equal(await delivered(G1, P1, "sender"), 4, "A forwards G1 from up0 (table 10)");
    assert.equal(await delivered(G2, P2, "recv2"), 4, "B forwards G2 from dn2 (table 20)");
  });

  void it("a second instance on an owned table is refused naming the table; the owner keeps its table and state", async () => {
    const C = `${tag}-c`;
    writeConf(C, [`table = ${TABLE_B}`]);
    const stateB = stateText(B);
    const r = await refused(C);
    assert.equal(r.code, 1, r.log);
    assert.match(r.log, new RegExp(`table ${TABLE_B} is already owned by another process`), r.log);
    assert.equal(existsSync(hostSocket(C)), false, "no socket");
    assert.equal(stateText(B), stateB, "B's state files unchanged");
    assert.equal((await table(TABLE_B)).length, 1, "B's entry is still in table 20");
    assert.equal(await delivered(G2, P2, "recv2"), 4, "B still forwards");
  });

  void it("a second instance on a used state file is refused naming the holder's pid, before it takes a table", async () => {
    const D = `${tag}-d`;
    writeConf(D, ["table = 30", `state_file = /var/lib/mfc_daemon/${B}.state.json`]);
    const r = await refused(D);
    assert.equal(r.code, 1, r.log);
    assert.match(r.log, new RegExp(`state file /var/lib/mfc_daemon/${B}\\.state\\.json is in use by another mfc_daemon \\(pid ${b.pid}\\)`), r.log);
    const t30 = await lab.exec(lab.ns.router, ["ip", "mroute", "show", "table", "30"], { allowFail: true });
    assert.match(t30.stderr, /table does not exist/i, "table 30 was never created");
    assert.deepEqual(await shownGroups(B), [G2]);
  });

  void it("an instance without a table of its own, or on the default table, is refused with the fix", async () => {
    const E = `${tag}-e`;
    writeConf(E, []);
    const none = await refused(E);
    assert.equal(none.code, 2);
    assert.match(none.log, new RegExp(`instance '${E}' needs a table of its own: set table = N .* in /etc/mfc_daemon\\.d/${E}\\.conf`));
    for (const t of ["253", "0"]) {
      writeConf(E, [`table = ${t}`]);
      const dflt = await refused(E);
      assert.equal(dflt.code, 2);
      assert.match(dflt.log, new RegExp(`may not use table ${t}, the kernel's default table`));
    }
    const missing = await refused(`${tag}-nosuch`);
    assert.equal(missing.code, 2);
    assert.match(missing.log, new RegExp(`instance '${tag}-nosuch' has no config: /etc/mfc_daemon\\.d/${tag}-nosuch\\.conf does not exist`));
    for (const bad of ["../x", "a.b", "a b", "x".repeat(33), ""]) {
      const r = await refused(bad);
      assert.equal(r.code, 2, `--instance '${bad}'`);
      assert.match(r.log, /--instance: instance name .* is not valid: use 1-32 letters, digits, '-' or '_'/);
    }
    assert.equal(readdirSync(libDir).some((f) => f.startsWith(E) || f.includes("nosuch")), false, "refused before touching a state file");
  });

  void it("an instance on table 254 (the default IPv6 table) starts with a warning naming the fix", async () => {
    const E = `${tag}-w`;
    // 254 is the IPv4 table 254 but the default IPv6 table (RT6_TABLE_DFLT): it starts, warned.
    writeConf(E, ["table = 254"]);
    const on254 = await startInstance(E);
    try {
      assert.match(on254.log(), new RegExp(`warning: instance '${E}' uses table 254, the kernel's default IPv6 table .*to route IPv6 set table = N`));
      const t254 = await lab.exec(lab.ns.router, ["ip", "mroute", "show", "table", "254"], { allowFail: true });
      assert.equal(t254.code, 0, `IPv4 table 254 exists while the instance runs: ${t254.stderr}`);
    } finally {
      await on254.stop();
    }
  });

  void it("mfc -i: a bad name is a usage error, an instance without a config is named", async () => {
    const bad = await mfc(["-i", "a/b", "status"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^mfc: E_USAGE: --instance: instance name 'a\/b' is not valid/);
    const none = await mfc(["-i", `${tag}-nosuch`, "status"]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, new RegExp(`instance '${tag}-nosuch' has no config: /etc/mfc_daemon\\.d/${tag}-nosuch\\.conf does not exist`));
  });

  void it("stopping one instance leaves the other forwarding; a restart restores its own state", async () => {
    assert.equal(await a.stop(), 0);
    assert.deepEqual(await table(TABLE_A), [], "A released table 10");
    assert.equal((await table(TABLE_B)).length, 1, "B's table is untouched");
    assert.equal(await delivered(G2, P2, "recv2"), 4, "B forwards on");
    assert.equal(await delivered(G1, P1, "sender"), 0, "nothing forwards G1 without A");
    assert.equal((await mfc(["-i", A, "status"])).code, 3, "A's socket is gone");

    a = await startInstance(A);
    assert.deepEqual(await shownGroups(A), [G1], "A restored its own state file");
    assert.equal(await delivered(G1, P1, "sender"), 4, "A forwards again");
    assert.equal(await b.stop(), 0);
    assert.equal(await a.stop(), 0);
  });
});
