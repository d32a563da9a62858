// SPEC §6.1 (all or nothing) and §4 --dry-run on the real kernel: a transaction that cannot be
// completed — refused by validation (E_VIF_LIMIT) or failed by the kernel mid-way (E_KERNEL) —
// leaves kernel, daemon memory and state files exactly as before; a dry run of every mutating
// command changes nothing; concurrent clients lose nothing. Needs root and a built dist/.
// Run: node --import tsx --test test/e2e/reliability.test.ts
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLab, type Lab } from "../lab/lab.js";
import { NdjsonClient } from "../support/ndjson_client.js";
import { DAEMON_JS, kernelTables, startDaemon, type DaemonHandle } from "../lab/daemon.js";

// ---- helpers (kept local: each e2e file is self-contained) ------------------------------------

type Json = Record<string, unknown>;

async function newLab(t: TestContext): Promise<Lab> {
  const lab = await createLab();
  t.after(() => lab.destroy());
  return lab;
}

async function start(t: TestContext, lab: Lab): Promise<DaemonHandle> {
  const d = await startDaemon(lab);
  t.after(() => d.cleanup());
  return d;
}

async function mfcOk(d: DaemonHandle, args: string[], input?: string): Promise<string> {
  const r = await d.mfc(args, input === undefined ? undefined : { input });
  assert.equal(r.code, 0, `mfc ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/**
 * Everything observable about the daemon's state: `show -j` (memory, incl. counters: no traffic
 * flows in these tests), the kernel tables (rows sorted: the kernel lists MFC entries in insertion
 * order, which an undo changes legitimately) and every file the daemon keeps in its directory.
 */
interface World { show: string; kernel: { vif: string[]; cache: string[] }; files: Map<string, Buffer> }

async function world(lab: Lab, d: DaemonHandle): Promise<World> {
  const files = new Map(readdirSync(d.dir).filter((f) => f !== "mfc.sock" && f !== "mfc_daemon.conf").sort()
    .map((f) => [f, readFileSync(join(d.dir, f))]));
  const k = await kernelTables(lab);
  return { show: await mfcOk(d, ["-j", "show"]), kernel: { vif: [...k.vif].sort(), cache: [...k.cache].sort() }, files };
}

function assertSameWorld(after: World, before: World, what: string): void {
  assert.deepEqual(after.kernel, before.kernel, `${what}: kernel VIF/MFC tables changed`);
  assert.deepEqual([...after.files.keys()], [...before.files.keys()], `${what}: files in the state directory changed`);
  for (const [f, b] of before.files) assert.ok(b.equals(after.files.get(f) as Buffer), `${what}: ${f} changed`);
  assert.equal(after.show, before.show, `${what}: show -j changed`);
}


interface Route { source: string | null; group: string; iif: string; oifs: { ifname: string; ttl: number }[] }

function canon(routes: readonly Route[]): string[] {
  return routes.map((r) => JSON.stringify([r.source, r.group, r.iif, r.oifs.map((o) => [o.ifname, o.ttl])])).sort();
}

/** "239.1.2.3" -> "030201EF", the way /proc/net/ip_mr_cache prints addresses (little-endian hex). */
function procHex(ip: string): string {
  return ip.split(".").reverse().map((o) => Number(o).toString(16).toUpperCase().padStart(2, "0")).join("");
}

// ---- tests ----------------------------------------------------------------------------------------

void test("a batch that needs a 33rd VIF fails with E_VIF_LIMIT and changes neither kernel nor state", async (t) => {
  const lab = await newLab(t);
  // up0, dn1, dn2 + 30 more = 33 interfaces, one more than MAXVIFS.
  const extra = Array.from({ length: 30 }, (_, i) => `v${String(i).padStart(2, "0")}`);
  await Promise.all(extra.map((n) => lab.addDummy(n)));
  const d = await start(t, lab);
  const S = lab.addr.sender;

  // 31 VIFs in use: three routes over up0/dn1/dn2/v00..v26, and a pinned VIF on v27.
  await mfcOk(d, ["add", "from", S, "to", "239.8.0.1", "iif", "up0", "oif", "dn1"]);
  await mfcOk(d, ["add", "to", "239.8.0.2", "iif", "up0", "oif", "dn2", "dn1"]);
  await mfcOk(d, ["add", "from", S, "to", "239.8.0.3", "iif", "up0", "oif", ...extra.slice(0, 27)]);
  await mfcOk(d, ["vif", "add", "dev", "v27", "threshold", "2"]);
  const before = await world(lab, d);
  assert.equal(before.kernel.vif.length, 31, "31 VIFs in the kernel before the batch");
  assert.equal(before.kernel.cache.length, 3);

  // Changes that would fit come first, the 33rd VIF last: all of it must be refused.
  const batch = [
    "# needs VIFs for v28 and v29 on top of 31: 33 > MAXVIFS",
    `replace to 239.8.0.2 iif up0 oif dn2 ttl 4`,
    `del from ${S} to 239.8.0.1`,
    `add from ${S} to 239.8.0.1 iif up0 oif dn1 dn2`,
    `add from ${S} to 239.8.0.4 iif up0 oif v28`,
    `vif add dev v29 threshold 3`,
    `add from ${S} to 239.8.0.5 iif dn1 oif v29`,
  ].join("\n") + "\n";
  const r = await d.mfc(["-j", "batch", "-"], { input: batch });
  assert.equal(r.code, 1, `exit status 1 (refused): ${r.stderr}`);
  assert.match(r.stderr, /^mfc: E_VIF_LIMIT: /m);
  assert.equal((JSON.parse(r.stdout) as Json).error_code, "E_VIF_LIMIT");
  assertSameWorld(await world(lab, d), before, "after the refused batch");

  // The same batch without the 33rd VIF fits exactly (32 VIFs) and commits: the limit is 32, not less.
  const fits = batch.split("\n").filter((l) => !l.includes("v29")).join("\n");
  await mfcOk(d, ["batch", "-"], fits);
  const k = await kernelTables(lab);
  assert.equal(k.vif.length, 32, "32 VIFs after the batch that fits");
  assert.equal(k.cache.length, 4);
});

void test("a kernel call failing mid-transaction (step k) rolls back steps 1..k-1: E_KERNEL, nothing changed", async (t) => {
  const lab = await newLab(t);
  await lab.addDummy("x0");
  const d = await start(t, lab);
  const S = lab.addr.sender;
  await mfcOk(d, ["add", "from", S, "to", "239.9.0.1", "iif", "up0", "oif", "dn1"]);
  await mfcOk(d, ["add", "from", S, "to", "239.9.0.2", "iif", "up0", "oif", "x0"]);
  // An MTU below 68 takes IPv4 off `lo`: it still exists (validation passes) but MRT_ADD_VIF
  // fails with EADDRNOTAVAIL — a kernel failure we can place after other steps.
  await lab.exec(lab.ns.router, ["ip", "link", "set", "lo", "mtu", "60"]);
  const before = await world(lab, d);

  // Planned: replace (S,.1); delete (S,.2) and x0's VIF; VIFs for dn2 and lo (fails); then the add.
  const batch = [
    `replace from ${S} to 239.9.0.1 iif up0 oif dn1 ttl 5`,
    `del from ${S} to 239.9.0.2`,
    `add from ${S} to 239.9.0.3 iif up0 oif dn2 lo`,
  ].join("\n");
  const r = await d.mfc(["-j", "batch", "-"], { input: batch });
  assert.equal(r.code, 1, `refused: ${r.stdout}${r.stderr}`);
  const res = JSON.parse(r.stdout) as { error_code: string; details?: Json };
  assert.equal(res.error_code, "E_KERNEL", r.stdout);
  assert.equal(res.details?.call, "MRT_ADD_VIF", r.stdout);
  assert.ok(Number(res.details?.step) > 1, `the failure came after other kernel steps (step ${String(res.details?.step)})`);
  assertSameWorld(await world(lab, d), before, "after the failed batch");
  // And the daemon still works: without lo the same change commits.
  await mfcOk(d, ["batch", "-"], batch.replace(" lo", ""));
  assert.ok((await kernelTables(lab)).cache.some((l) => l.startsWith(procHex("239.9.0.3"))));
  await lab.exec(lab.ns.router, ["ip", "link", "set", "lo", "mtu", "65536"]);
});

void test("a full disk: a save that fails is E_STATE_WRITE with the kernel rolled back; an acknowledged change survives a crash", async (t) => {
  const lab = await newLab(t);
  await lab.addDummy("x0");
  // The daemon's directory on a small tmpfs we can fill. Mounted before the daemon starts, so its
  // mount namespace (ip netns exec) has it.
  const dir = mkdtempSync(join(tmpdir(), "mfct-full-"));
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=512k,mode=0700", "tmpfs", dir]);
  let d: DaemonHandle | undefined;
  t.after(async () => {
    await d?.cleanup();
    execFileSync("umount", [dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  d = await startDaemon(lab, { dir });
  const S = lab.addr.sender;
  const lines = (from: number, n: number, oif: string): string =>
    Array.from({ length: n }, (_, i) => `add from ${S} to 239.11.${Math.floor((from + i) / 250)}.${((from + i) % 250) + 1} iif up0 oif ${oif}`).join("\n") + "\n";
  await mfcOk(d, ["batch", "-"], lines(0, 300, "dn1"));
  await mfcOk(d, ["add", "from", S, "to", "239.11.9.1", "iif", "up0", "oif", "dn2"]);

  // Fill the file system.
  const filler = join(dir, "filler");
  const fd = openSync(filler, "w");
  try {
    for (;;) writeSync(fd, Buffer.alloc(4096));
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, "ENOSPC");
  } finally {
    closeSync(fd);
  }
  const withoutFiller = (w: World): World => ({ ...w, files: new Map([...w.files].filter(([f]) => f !== "filler")) });
  const before = withoutFiller(await world(lab, d));

  // A flush cannot be saved: refused, and the 300+ kernel deletions it made are undone.
  const f = await d.mfc(["-j", "flush"]);
  assert.equal(f.code, 1, f.stdout);
  assert.equal((JSON.parse(f.stdout) as Json).error_code, "E_STATE_WRITE", f.stdout);
  assertSameWorld(withoutFiller(await world(lab, d)), before, "after the flush that could not be saved");

  // A batch (with a new VIF) whose record is larger than what is left: refused the same way, or
  // acknowledged — and then it must survive a crash.
  const r = await d.mfc(["-j", "batch", "-"], { input: lines(1000, 60, "x0") });
  const res = JSON.parse(r.stdout) as Json;
  if (res.status === "error") {
    assert.equal(res.error_code, "E_STATE_WRITE", r.stdout);
    assertSameWorld(withoutFiller(await world(lab, d)), before, "after the batch that could not be saved");
    t.diagnostic("the batch was refused with E_STATE_WRITE");
    return;
  }
  t.diagnostic("the batch was acknowledged on the full disk; checking it survives a crash");
  assert.equal(res.status, "ok", r.stdout);
  const acked = JSON.parse(await mfcOk(d, ["-j", "show", "routes"])) as { routes: Json[] };
  assert.equal(acked.routes.length, 361);
  await d.stop("SIGKILL");
  rmSync(filler);
  d = await startDaemon(lab, { dir });
  const restored = JSON.parse(await mfcOk(d, ["-j", "show", "routes"])) as { routes: Json[] };
  assert.equal(restored.routes.length, 361, "the acknowledged batch survives a crash (it was saved on a full disk)");
});

void test("--dry-run of every mutating command changes neither the kernel nor the state file", async (t) => {
  const lab = await newLab(t);
  await lab.addDummy("pin0");
  await lab.addDummy("x0");
  const d = await start(t, lab);
  const S = lab.addr.sender;
  await mfcOk(d, ["vif", "add", "dev", "pin0", "threshold", "2"]);
  await mfcOk(d, ["add", "from", S, "to", "239.4.0.1", "iif", "up0", "oif", "dn1"]);
  await mfcOk(d, ["add", "to", "239.4.0.2", "iif", "up0", "oif", "dn1", "dn2"]);
  const before = await world(lab, d);
  assert.ok(before.files.size > 0, "the daemon keeps a state file");

  const applyState = JSON.stringify({ vifs: [], routes: [{ source: S, group: "239.4.0.20", iif: "up0", oifs: [{ ifname: "x0", ttl: 1 }] }] });
  const cases: { name: string; args: string[]; input?: string }[] = [
    { name: "add", args: ["-n", "add", "from", S, "to", "239.4.0.9", "iif", "up0", "oif", "x0"] },
    { name: "replace", args: ["replace", "to", "239.4.0.2", "iif", "up0", "oif", "dn2", "ttl", "4", "--dry-run"] },
    { name: "del", args: ["--dry-run", "del", "from", S, "to", "239.4.0.1"] },
    { name: "vif add", args: ["-n", "vif", "add", "dev", "x0", "threshold", "7"] },
    { name: "vif del", args: ["vif", "del", "dev", "pin0", "-n"] },
    { name: "flush", args: ["-n", "flush"] },
    {
      name: "batch", args: ["-n", "batch", "-"],
      input: `del from ${S} to 239.4.0.1\nadd from ${S} to 239.4.0.10 iif dn2 oif up0 x0\nvif add dev dn1 threshold 3\n`,
    },
    { name: "apply", args: ["-n", "apply", "-"], input: applyState },
  ];
  for (const c of cases) {
    const out = await mfcOk(d, ["-j", ...c.args], c.input);
    const res = JSON.parse(out) as { status: string; dry_run: boolean; changes: unknown[] };
    assert.equal(res.status, "ok", `${c.name}: ${out}`);
    assert.equal(res.dry_run, true, `${c.name}: the answer says dry_run`);
    assert.ok(res.changes.length > 0, `${c.name}: the dry run reports the kernel actions it would take`);
    assertSameWorld(await world(lab, d), before, `dry-run ${c.name}`);
  }

  // Control: the same comparison sees a real change.
  await mfcOk(d, ["flush"]);
  const flushed = await world(lab, d);
  assert.notDeepEqual(flushed.kernel, before.kernel);
  assert.notDeepEqual(flushed.files, before.files);
});

void test("20 concurrent clients adding 10 distinct routes each: all 200 in show, kernel and state file", async (t) => {
  const lab = await newLab(t);
  const d = await start(t, lab);
  const S = lab.addr.sender;
  const CLIENTS = 20;
  const PER = 10;
  const oifSets = [["dn1"], ["dn2"], ["dn1", "dn2"]];
  const routeOf = (c: number, i: number): Route => ({
    source: (c + i) % 3 === 0 ? null : S, group: `239.7.${c}.${i + 1}`, iif: "up0",
    oifs: (oifSets[(c * PER + i) % oifSets.length] ?? ["dn1"]).map((ifname) => ({ ifname, ttl: 1 + (i % 2) })),
  });
  const expected: Route[] = [];
  for (let c = 0; c < CLIENTS; c++) for (let i = 0; i < PER; i++) expected.push(routeOf(c, i));

  const clients = await Promise.all(Array.from({ length: CLIENTS }, () => NdjsonClient.connect(d.socket)));
  t.after(() => clients.forEach((c) => c.close()));
  // Even clients wait for each answer; odd ones pipeline all ten requests at once.
  const answers = await Promise.all(clients.map(async (client, c) => {
    const reqs = Array.from({ length: PER }, (_, i) => ({ action: "ADD_MFC", payload: routeOf(c, i), id: `${c}/${i}` }));
    if (c % 2 === 1) return Promise.all(reqs.map((q) => client.request(q)));
    const out: Json[] = [];
    for (const q of reqs) out.push(await client.request(q));
    return out;
  }));
  answers.forEach((list, c) => list.forEach((res, i) => {
    assert.equal(res.status, "ok", `client ${c} request ${i}: ${JSON.stringify(res)}`);
    assert.equal(res.id, `${c}/${i}`, "answers come back in request order");
  }));

  const shown = JSON.parse(await mfcOk(d, ["-j", "show", "routes"])) as { routes: (Route & { state: string })[] };
  assert.deepEqual(canon(shown.routes.map(({ source, group, iif, oifs }) => ({ source, group, iif, oifs }))), canon(expected), "show -j");
  assert.ok(shown.routes.every((r) => r.state === "installed"));

  const k = await kernelTables(lab);
  assert.equal(k.cache.length, CLIENTS * PER, "kernel MFC entries");
  const kernelKeys = k.cache.map((l) => l.split(/\s+/).slice(0, 2).join(" ")).sort();
  assert.deepEqual(kernelKeys, expected.map((r) => `${procHex(r.group)} ${procHex(r.source ?? "0.0.0.0")}`).sort(), "kernel (group, origin) pairs");

  // The durable state: as `mfc_daemon --dump-state` reads it, and as the next start restores it.
  const dump = spawnSync(process.execPath, [DAEMON_JS, "--config", d.configPath, "--dump-state"], { encoding: "utf8", timeout: 20_000 });
  assert.equal(dump.status, 0, dump.stderr);
  assert.deepEqual(canon((JSON.parse(dump.stdout) as { routes: Route[] }).routes), canon(expected), "state file (--dump-state)");
  assert.equal(await d.stop("SIGTERM"), 0);
  const d2 = await startDaemon(lab, { dir: d.dir });
  t.after(() => d2.cleanup());
  const restored = JSON.parse(await mfcOk(d2, ["-j", "show", "routes"])) as { routes: Route[] };
  assert.deepEqual(canon(restored.routes.map(({ source, group, iif, oifs }) => ({ source, group, iif, oifs }))), canon(expected), "restored after restart");
  assert.equal(await d2.stop("SIGTERM"), 0);
});
