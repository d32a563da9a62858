// Issue 10 items 4, 5, 6 on the real daemon (SPEC §6.2): what makes a state file safe to own.
// - One daemon per state file: a second daemon (other table, other socket, same state_file) is
//   refused at start naming the state file; the first keeps serving with its state intact.
// - Symlinks planted in the state directory (at the temp file name and the journal name) are
//   never followed: the victim they point to keeps its bytes. A state directory others can write
//   to is refused (`chmod go-w`). A temp file left by a crash is removed at start and logged.
// - Strict state files: a journal line whose seq goes backwards, a bad middle line (named by its
//   number), a snapshot seq of 2^53 and duplicate oifs are refused at start, files untouched.
// - No-op transactions (an empty batch, an apply of the current state) write nothing — and so
//   succeed even on a read-only state directory.
// Needs root and a built dist/. Run: node --import tsx --test test/e2e/state_guard.test.ts
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLab, type Lab } from "../lab/lab.js";
import { DAEMON_JS, startDaemon, type DaemonHandle } from "../lab/daemon.js";
import { mfcOk, show, type Show } from "../lab/show.js";
import { tempDir } from "../lab/temp_dir.js";
import { sleep } from "../lab/wait.js";

// ---- helpers (shared ones live in test/lab/) ---------------------------------------------------

const groups = (s: Show): string[] => s.routes.map((r) => `${r.source ?? "*"},${r.group} ${r.state}`).sort();

/** Runs a daemon that is expected to refuse to start; resolves with its exit code and log. */
async function refusedStart(lab: Lab, config: Record<string, string>): Promise<{ code: number | null; log: string }> {
  const dir = mkdtempSync(join(tmpdir(), "mfct-guard2-"));
  try {
    const conf = join(dir, "mfc_daemon.conf");
    writeFileSync(conf, `[daemon]\nsocket_group =\n${Object.entries(config).map(([k, v]) => `${k} = ${v}`).join("\n")}\n`);
    const proc = lab.spawn(lab.ns.router, [process.execPath, DAEMON_JS, "--config", conf]);
    let log = "";
    proc.stderr?.on("data", (d: Buffer) => (log += d.toString()));
    proc.stdout?.on("data", (d: Buffer) => (log += d.toString()));
    const code = await new Promise<number | null>((res) => {
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      proc.once("exit", (c) => { clearTimeout(timer); res(c); });
    });
    return { code, log };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The daemon's own pid (`ip netns exec` execs the command, so it is the spawned child's). */
function daemonPid(d: DaemonHandle): number {
  const pid = d.proc.pid ?? -1;
  assert.match(readFileSync(`/proc/${pid}/cmdline`, "utf8"), /daemon_main\.js/, "the spawned pid is the daemon itself");
  return pid;
}

/** Identity and bytes of the state files: an untouched file keeps inode, mtime and content. */
function fileFacts(dir: string, names: string[]): string {
  return names.map((n) => {
    const p = join(dir, n);
    if (!existsSync(p)) return `${n}: absent`;
    const st = statSync(p, { bigint: true });
    return `${n}: ino ${st.ino} mtime ${st.mtimeNs} size ${st.size} ${readFileSync(p).toString("base64")}`;
  }).join("\n");
}

const SNAP = (seq: number, routes: object[]): string => JSON.stringify({ format: "mfc_daemon-state", version: 1, seq, vifs: [], routes }) + "\n";
const R = (group: string, oifs: string[] = ["dn1"]): object => ({ source: null, group, iif: "up0", oifs: oifs.map((ifname) => ({ ifname, ttl: 1 })) });
const REC = (seq: number, group: string): string => JSON.stringify({ seq, set: [R(group)], del: [], vifs_set: [], vifs_del: [] });

// ---- tests ------------------------------------------------------------------------------------

void test("a second daemon on the same state file (other table, other socket) is refused; the first keeps serving, state intact", async (t) => {
  const lab = await createLab();
  t.after(() => lab.destroy());
  const dir = tempDir(t, "mfct-guard-");
  const d = await startDaemon(lab, { dir });
  t.after(() => d.cleanup());
  await mfcOk(d, ["add", "to", "239.40.0.1", "iif", "up0", "oif", "dn1"]);
  await mfcOk(d, ["add", "to", "239.40.0.2", "iif", "up0", "oif", "dn2"]);
  const files = fileFacts(dir, ["state.json", "state.json.journal"]);

  const other = tempDir(t, "mfct-guard-");
  const second = await refusedStart(lab, { socket_path: join(other, "mfc.sock"), state_file: d.stateFile, table: "100" });
  assert.equal(second.code, 1, second.log);
  assert.ok(second.log.includes(d.stateFile), `the message names the state file: ${second.log}`);
  assert.match(second.log, /in use/);
  assert.equal(existsSync(join(other, "mfc.sock")), false, "the second daemon never listened");
  assert.equal(fileFacts(dir, ["state.json", "state.json.journal"]), files, "the second daemon wrote nothing");

  // The first one serves on, and what it acknowledges survives its restart.
  await mfcOk(d, ["add", "to", "239.40.0.3", "iif", "up0", "oif", "dn1"]);
  await mfcOk(d, ["del", "to", "239.40.0.2"]);
  const want = ["*,239.40.0.1 installed", "*,239.40.0.3 installed"];
  assert.deepEqual(groups(await show(d)), want);
  assert.equal(await d.stop(), 0, d.logs());
  const d2 = await startDaemon(lab, { dir });
  t.after(() => d2.cleanup());
  assert.deepEqual(groups(await show(d2)), want);
});

void test("symlinks planted at the temp file and journal names are never followed: the victim keeps its bytes", async (t) => {
  const lab = await createLab();
  t.after(() => lab.destroy());
  const dir = tempDir(t, "mfct-guard-");
  const victimDir = tempDir(t, "mfct-victim-");
  const victim = join(victimDir, "victim");
  const precious = "precious bytes: must never be truncated or appended to\n";
  writeFileSync(victim, precious);
  const victimFacts = (): string => fileFacts(victimDir, ["victim"]);
  const victimBefore = victimFacts();

  const d = await startDaemon(lab, { dir });
  t.after(() => d.cleanup());
  const pid = daemonPid(d);
  // Planted while it runs, at exactly the names it will open next.
  symlinkSync(victim, join(dir, `.state.json.${pid}.tmp`));
  symlinkSync(victim, join(dir, "state.json.journal"));

  const acked: string[] = [];
  for (let i = 1; i <= 6; i++) {
    const g = `239.41.0.${i}`;
    const r = await d.mfc(["add", "to", g, "iif", "up0", "oif", "dn1"]);
    if (r.code === 0) acked.push(`*,${g} installed`);
    else assert.match(r.stderr, /E_STATE_WRITE/, `a refused save is E_STATE_WRITE: ${r.stderr}`);
    assert.equal(victimFacts(), victimBefore, `after add ${i}: the victim is untouched`);
  }
  assert.ok(acked.length >= 1, "the snapshot replaced the planted temp file and was saved");
  t.diagnostic(`${acked.length} of 6 adds acknowledged while the journal name was a symlink`);
  assert.deepEqual(groups(await show(d)), acked.sort(), "memory = acknowledged");
  assert.equal(await d.stop(), 0);
  assert.equal(victimFacts(), victimBefore);

  // A start with the journal symlink still there refuses to read through it.
  const r = await startDaemon(lab, { dir, expectExit: true });
  assert.equal(await r.exited(), 1, r.logs());
  assert.match(r.logs(), /state\.json\.journal/);
  assert.equal(victimFacts(), victimBefore);
  // So does a symlinked snapshot.
  unlinkSync(join(dir, "state.json.journal"));
  const snap = readFileSync(d.stateFile);
  unlinkSync(d.stateFile);
  const realSnap = join(victimDir, "snap.json");
  writeFileSync(realSnap, snap);
  symlinkSync(realSnap, d.stateFile);
  const r2 = await startDaemon(lab, { dir, expectExit: true });
  assert.equal(await r2.exited(), 1, r2.logs());
  assert.ok(r2.logs().includes(d.stateFile), r2.logs());
  unlinkSync(d.stateFile);
  writeFileSync(d.stateFile, snap, { mode: 0o640 });

  // Without the journal symlink it starts with exactly what was acknowledged.
  const d2 = await startDaemon(lab, { dir });
  t.after(() => d2.cleanup());
  assert.deepEqual(groups(await show(d2)), acked.sort());
  assert.equal(victimFacts(), victimBefore);
});

void test("a state directory others can write to is refused (chmod go-w); a crash's temp file is removed at start", async (t) => {
  const lab = await createLab();
  t.after(() => lab.destroy());
  const dir = tempDir(t, "mfct-guard-");
  for (const mode of [0o770, 0o757, 0o1777]) {
    chmodSync(dir, mode);
    const d = await startDaemon(lab, { dir, expectExit: true });
    assert.equal(await d.exited(), 1, `mode ${mode.toString(8)}: ${d.logs()}`);
    assert.ok(d.logs().includes(dir), `the message names the directory: ${d.logs()}`);
    assert.match(d.logs(), /chmod go-w/);
    assert.equal(existsSync(d.socket), false);
  }
  chmodSync(dir, 0o700);

  writeFileSync(join(dir, "state.json"), SNAP(3, [R("239.42.0.1")]), { mode: 0o640 });
  writeFileSync(join(dir, ".state.json.12345.tmp"), "half a snapshot");
  writeFileSync(join(dir, ".other.12345.tmp"), "not ours");
  const d = await startDaemon(lab, { dir });
  t.after(() => d.cleanup());
  assert.equal(existsSync(join(dir, ".state.json.12345.tmp")), false, `left: ${readdirSync(dir).join(" ")}`);
  assert.equal(existsSync(join(dir, ".other.12345.tmp")), true, "only the state file's own temp files are removed");
  assert.match(d.logs(), /removed \.state\.json\.12345\.tmp/);
  assert.deepEqual(groups(await show(d)), ["*,239.42.0.1 installed"]);
});

void test("strict state files: seq going backwards, a bad middle line, seq 2^53, duplicate oifs are refused at start; files untouched", async (t) => {
  const lab = await createLab();
  t.after(() => lab.destroy());
  const cases: { name: string; snap: string; journal?: string; expect: RegExp; file: string }[] = [
    { name: "last journal line goes back", snap: SNAP(5, [R("239.43.0.1")]),
      journal: [REC(6, "239.43.0.6"), REC(7, "239.43.0.7"), REC(6, "239.43.0.8")].join("\n") + "\n",
      expect: /line 3\b.*sequence 6 does not follow 7/, file: "state.json.journal" },
    { name: "bad middle line", snap: SNAP(5, [R("239.43.0.1")]),
      journal: [REC(6, "239.43.0.6"), REC(7, "239.43.0.7"), "{not json", REC(8, "239.43.0.8")].join("\n") + "\n",
      expect: /line 3\b/, file: "state.json.journal" },
    { name: "bad middle record after stale ones", snap: SNAP(5, [R("239.43.0.1")]),
      journal: [REC(4, "239.43.0.4"), REC(5, "239.43.0.5"), REC(6, "239.43.0.6"), JSON.stringify({ seq: 7, set: [R("239.43.0.7", ["dn1", "dn1"])], del: [], vifs_set: [], vifs_del: [] }), REC(8, "239.43.0.8")].join("\n") + "\n",
      expect: /line 4\b.*twice/, file: "state.json.journal" },
    { name: "snapshot seq 2^53", snap: SNAP(2 ** 53, [R("239.43.0.1")]), expect: /seq/, file: "state.json" },
    { name: "duplicate oifs in the snapshot", snap: SNAP(5, [R("239.43.0.1", ["dn1", "dn2", "dn1"])]), expect: /twice/, file: "state.json" },
  ];
  for (const c of cases) {
    const dir = tempDir(t, "mfct-guard-");
    writeFileSync(join(dir, "state.json"), c.snap, { mode: 0o640 });
    if (c.journal !== undefined) writeFileSync(join(dir, "state.json.journal"), c.journal, { mode: 0o640 });
    const before = fileFacts(dir, ["state.json", "state.json.journal"]);
    const d = await startDaemon(lab, { dir, expectExit: true });
    assert.equal(await d.exited(), 1, `${c.name}: must be refused\n${d.logs()}`);
    assert.ok(d.logs().includes(join(dir, c.file)), `${c.name}: the message names ${c.file}: ${d.logs()}`);
    assert.match(d.logs(), c.expect, `${c.name}: ${d.logs()}`);
    assert.equal(fileFacts(dir, ["state.json", "state.json.journal"]), before, `${c.name}: files untouched`);
  }
});

void test("an empty batch and a no-op apply write nothing, and succeed on a read-only state directory", async (t) => {
  const lab = await createLab();
  t.after(() => lab.destroy());
  const dir = tempDir(t, "mfct-guard-");
  const d = await startDaemon(lab, { dir });
  t.after(() => d.cleanup());
  for (let i = 1; i <= 4; i++) await mfcOk(d, ["add", "to", `239.44.0.${i}`, "iif", "up0", "oif", i % 2 ? "dn1" : "dn2"]);
  await mfcOk(d, ["vif", "add", "dev", "dn2", "threshold", "3"]);
  const names = ["state.json", "state.json.journal"];
  const before = fileFacts(dir, names);
  const listing = readdirSync(dir).sort();
  await sleep(20); // a write now would change the mtime visibly

  await mfcOk(d, ["batch", "-"], "# nothing to do\n\n   # still nothing\n");
  const current = await mfcOk(d, ["-j", "show"]);
  await mfcOk(d, ["apply", "-"], current);
  await mfcOk(d, ["replace", "to", "239.44.0.1", "iif", "up0", "oif", "dn1"]);
  assert.equal(fileFacts(dir, names), before, "no-op transactions did not touch the state files");
  assert.deepEqual(readdirSync(dir).sort(), listing, "no temp file was created");

  // Root ignores permission bits, so make the directory really read-only: a read-only bind mount
  // of it inside the daemon's own mount namespace (`ip netns exec` gave it one; it dies with it).
  const pid = daemonPid(d);
  await lab.exec(lab.ns.router, ["nsenter", "-t", String(pid), "-m", "--", "sh", "-c", `mount --bind '${dir}' '${dir}' && mount -o remount,ro,bind '${dir}'`]);
  try {
    await mfcOk(d, ["batch", "-"], "# nothing\n");
    await mfcOk(d, ["apply", "-"], current);
    // The mount is effective: a real change cannot be saved and is rolled back.
    const real = await d.mfc(["add", "to", "239.44.0.9", "iif", "up0", "oif", "dn1"]);
    assert.equal(real.code, 1, real.stdout);
    assert.match(real.stderr, /E_STATE_WRITE/);
  } finally {
    await lab.exec(lab.ns.router, ["nsenter", "-t", String(pid), "-m", "--", "umount", dir], { allowFail: true });
  }
  assert.equal(fileFacts(dir, names), before);
  assert.deepEqual(JSON.parse(await mfcOk(d, ["-j", "show"])), JSON.parse(current));
});

void test("--dump-state into a pipe: the whole state arrives (process.exit must not cut the output short)", async (t) => {
  const dir = tempDir(t, "mfc-dump-");
  const routes = Array.from({ length: 30_000 }, (_, i) => ({ source: "10.0.0.1", group: `239.7.${i >> 8}.${i & 255}`, iif: "eth0", oifs: [{ ifname: "eth1", ttl: 1 }] }));
  writeFileSync(join(dir, "state.json"), JSON.stringify({ format: "mfc_daemon-state", version: 1, seq: 1, vifs: [], routes }) + "\n");
  writeFileSync(join(dir, "d.conf"), `[daemon]\nstate_file = ${join(dir, "state.json")}\nsocket_group =\n`);
  // execFile reads stdout through a pipe, like `| jq` or a backup script.
  const { execFile } = await import("node:child_process");
  const out = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, [DAEMON_JS, "--config", join(dir, "d.conf"), "--dump-state"], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout) => (err ? reject(new Error(err.message)) : resolve(stdout)));
  });
  assert.ok(out.length > 1 << 20, `only ${out.length} bytes arrived`);
  assert.equal((JSON.parse(out) as { routes: unknown[] }).routes.length, 30_000);
});
