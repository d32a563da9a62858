// Issue 10 item 2 on the real kernel: interface churn at the VIF limit (MAXVIFS = 32).
// - Admission counts the interfaces that routes over a *missing* interface will need: after one
//   of 32 used interfaces vanishes, a route naming a 33rd interface is refused (E_VIF_LIMIT), else
//   the table would need 33 VIFs when the interface returns.
// - A state past the limit that was acknowledged before (a legacy state file naming 33 interfaces)
//   never stops the daemon: it starts and serves, 32 VIFs are installed, the routes over the 33rd
//   are `pending` ("VIF limit"), `status` lists the waiting interface and `mfc check` says
//   IF_NO_VIF; freeing a VIF installs the waiting routes within seconds; changes on interfaces that
//   have VIFs keep working; restart works. Kernel (/proc, default table) = `show -j` throughout.
// Needs root and a built dist/. Run: node --import tsx --test test/e2e/churn.test.ts
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createLab, type Lab } from "../lab/lab.js";
import { startDaemon } from "../lab/daemon.js";
import { assertKernelEqualsShow } from "../lab/kernel_view.js";
import { mfcOk, route, show, status, type Oif } from "../lab/show.js";
import { tempDir } from "../lab/temp_dir.js";
import { until } from "../lab/wait.js";

// ---- helpers (shared ones live in test/lab/) ---------------------------------------------------

/**
 * Creates peer-less interfaces in the router namespace in one `ip -batch` (fast): dummy, or ifb
 * where the kernel lacks CONFIG_DUMMY (as lab.addDummy does).
 */
async function addDummies(lab: Lab, names: string[]): Promise<void> {
  for (const type of ["dummy", "ifb"]) {
    const lines = names.flatMap((n) => [`link add ${n} type ${type}`, `link set ${n} multicast on up`]);
    const r = await lab.exec(lab.ns.router, ["ip", "-batch", "-"], { input: lines.join("\n") + "\n", allowFail: true });
    if (r.code === 0) return;
    if (!/Unknown device type/i.test(r.stderr)) throw new Error(`ip -batch failed: ${r.stderr}`);
  }
  throw new Error("neither dummy nor ifb interfaces can be created");
}

const pad = (i: number): string => String(i).padStart(2, "0");

// ---- tests ------------------------------------------------------------------------------------

void test("admission counts missing interfaces: after one of 32 vanishes, a route over a 33rd is refused (E_VIF_LIMIT)", async (t) => {
  const lab = await createLab();
  t.after(() => lab.destroy());
  const dir = tempDir(t, "mfct-churn-");
  const names = Array.from({ length: 33 }, (_, i) => `c${pad(i)}`); // c00..c32
  await addDummies(lab, names);
  const d = await startDaemon(lab, { dir });
  t.after(() => d.cleanup());

  const GA = "239.8.0.1"; // c00 -> c01..c31: 32 interfaces, every VIF
  const GB = "239.8.0.2";
  const GC = "239.8.0.3";
  await mfcOk(d, ["add", "to", GA, "iif", "c00", "oif", ...names.slice(1, 32)]);
  assert.equal((await show(d)).vifs.filter((v) => v.vifi !== null).length, 32);

  await lab.delLink("c05");
  await until("route A to name c05 as missing", async () => /c05/.test(route(await show(d), GA).reason ?? ""));

  // c32 is free and 31 VIFs are in use, but c05 will need its VIF back: 33 > 32.
  const stateBefore = readFileSync(d.stateFile);
  const b = await d.mfc(["add", "to", GB, "iif", "c32", "oif", "c01"]);
  assert.equal(b.code, 1, `route B over a 33rd interface must be refused, got ${b.code}: ${b.stdout}${b.stderr}`);
  assert.match(b.stderr, /E_VIF_LIMIT/);
  assert.equal((await show(d)).routes.some((r) => r.group === GB), false, "route B was not added");
  assert.deepEqual(readFileSync(d.stateFile), stateBefore, "the refused change wrote nothing");

  // A change on interfaces that are already counted is fine.
  await mfcOk(d, ["add", "to", GC, "iif", "c00", "oif", "c02"]);

  // c05 returns: everything fits and is installed again, without operator action.
  await addDummies(lab, ["c05"]);
  const s = await until("everything installed again", async () => {
    const v = await show(d);
    return v.routes.every((r) => r.state === "installed" && r.reason === undefined) ? v : undefined;
  });
  assert.deepEqual(s.routes.map((r) => r.group).sort(), [GA, GC]);
  assert.equal(s.vifs.filter((v) => v.vifi !== null).length, 32);
  await assertKernelEqualsShow(lab, s);
  const st = await status(d);
  assert.deepEqual(st.interfaces_waiting, {});
  assert.equal(st.degraded, null);

  // And a restart starts from it.
  assert.equal(await d.stop(), 0, d.logs());
  const d2 = await startDaemon(lab, { dir });
  t.after(() => d2.cleanup());
  const s2 = await show(d2);
  assert.ok(s2.routes.every((r) => r.state === "installed"), JSON.stringify(s2.routes));
  await assertKernelEqualsShow(lab, s2);
});

void test("a legacy acknowledged state needing 33 VIFs: starts, serves, 32 installed, the rest pending until a VIF is freed", async (t) => {
  const lab = await createLab();
  t.after(() => lab.destroy());
  const dir = tempDir(t, "mfct-churn-");
  // up0, dn1, dn2 (the lab's) + w00..w29 = 33 interfaces.
  const w = Array.from({ length: 30 }, (_, i) => `w${pad(i)}`);
  await addDummies(lab, [...w, "x0"]);
  const S = lab.addr.sender;
  const GA = "239.7.0.1"; // (S,G) up0 -> dn1, dn2, w00..w27 (31 oifs)
  const GF = "239.7.0.2"; // (*,G) up0 -> w28: the only route over w28
  const GW = "239.7.0.3"; // (*,G) up0 -> w29: the only route over w29
  const oif = (ifname: string): Oif => ({ ifname, ttl: 1 });
  writeFileSync(join(dir, "state.json"), JSON.stringify({
    format: "mfc_daemon-state", version: 1, seq: 3, vifs: [],
    routes: [
      { source: S, group: GA, iif: "up0", oifs: ["dn1", "dn2", ...w.slice(0, 28)].map(oif) },
      { source: null, group: GF, iif: "up0", oifs: [oif("w28")] },
      { source: null, group: GW, iif: "up0", oifs: [oif("w29")] },
    ],
  }) + "\n", { mode: 0o640 });

  const d = await startDaemon(lab, { dir });
  t.after(() => d.cleanup());
  assert.doesNotMatch(d.logs(), /cannot start/);

  const s = await show(d);
  assert.equal(s.vifs.filter((v) => v.vifi !== null).length, 32, "32 VIFs installed");
  const st = await status(d);
  const waiting = st.interfaces_waiting as Record<string, string>;
  const waitingNames = Object.keys(waiting);
  assert.equal(waitingNames.length, 1, `exactly one interface waits: ${JSON.stringify(waiting)}`);
  const x = waitingNames[0] as string;
  assert.match(waiting[x] ?? "", /VIF limit/);
  for (const r of s.routes) {
    const needsX = r.iif === x || r.oifs.some((o) => o.ifname === x);
    if (needsX) assert.match(r.reason ?? "", /VIF limit/, `route ${r.group} over ${x} has a VIF-limit reason`);
    else assert.equal(r.state, "installed", `route ${r.group} does not need ${x}: installed`);
  }
  assert.equal(s.vifs.find((v) => v.ifname === x)?.vifi, null);
  assert.equal(st.routes, 3);
  await assertKernelEqualsShow(lab, s);

  const check = await d.mfc(["-j", "check"]);
  const findings = (JSON.parse(check.stdout) as { result: { findings: { code: string; ifname?: string; message: string }[] } }).result.findings;
  assert.ok(findings.some((f) => f.code === "IF_NO_VIF" && f.ifname === x && /VIF limit/.test(f.message)), `mfc check names IF_NO_VIF on ${x}: ${check.stdout}`);

  // It serves: the installed (S,G) forwards real multicast.
  if (x !== "dn1" && x !== "up0") {
    const rx = await lab.listen("recv1", GA, 5501);
    try {
      await lab.send(GA, 5501, 5, { ttl: 8 });
      assert.ok(await rx.waitFor(5, 3_000), `recv1 got ${rx.count()} of 5 for ${GA}`);
    } finally {
      await rx.stop();
    }
  }

  // Unrelated changes on interfaces that have VIFs succeed; a new interface is refused.
  await mfcOk(d, ["add", "from", S, "to", "239.7.0.9", "iif", "up0", "oif", "dn2"]);
  await mfcOk(d, ["del", "from", S, "to", "239.7.0.9"]);
  const extra = await d.mfc(["add", "to", "239.7.0.10", "iif", "up0", "oif", "x0"]);
  assert.equal(extra.code, 1, `a route over yet another interface is refused: ${extra.stdout}${extra.stderr}`);
  assert.match(extra.stderr, /E_VIF_LIMIT/);

  // Free a VIF: delete the route that alone holds w28 (or w29 if w28 is the waiting one).
  const victim = x === "w28" ? GW : GF;
  await mfcOk(d, ["del", "to", victim]);
  const after = await until("the waiting interface to get a VIF", async () => {
    const v = await show(d);
    return v.routes.every((r) => r.state === "installed" && r.reason === undefined) ? v : undefined;
  }, 8_000);
  assert.equal(after.routes.length, 2);
  assert.ok(after.vifs.find((v) => v.ifname === x)?.vifi !== null, `${x} has a VIF now`);
  assert.deepEqual((await status(d)).interfaces_waiting, {});
  await assertKernelEqualsShow(lab, after);

  // Restart: same routes, all installed.
  assert.equal(await d.stop(), 0, d.logs());
  const d2 = await startDaemon(lab, { dir });
  t.after(() => d2.cleanup());
  const s2 = await show(d2);
  assert.deepEqual(s2.routes.map((r) => `${r.group} ${r.state}`).sort(), after.routes.map((r) => `${r.group} installed`).sort());
  await assertKernelEqualsShow(lab, s2);
});
