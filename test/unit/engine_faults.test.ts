/**
 * SPEC §6.1 (all or nothing) and §6.2 (durable), proved by fault injection.
 *
 * For every kind of mutating request, starting from a non-trivial state (pinned VIFs with their
 * own threshold, an any-source route, holes in the VIF numbering, a route whose iif is missing,
 * a route with a missing oif), the request is first run without faults to count its n kernel
 * calls. Then, from a fresh copy of the same state, call k (k = 1..n) fails once, and separately
 * every call from k on fails for good. The answer must be E_KERNEL naming the call, errno and
 * step, and the kernel (FakeKernel.dump()), the engine's memory (snapshot: config + image) and
 * the store (last saved file) must equal the state before. Then the same for a failing save
 * (E_STATE_WRITE), a kernel fault during the undo that follows it, and dry runs. Last, the same
 * from a state where a device vanished and no reconcile ran yet (MFC entries still name its VIF).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Engine, type Snapshot, type TxResult } from "../../src/engine/engine.js";
import type { Image } from "../../src/engine/image.js";
import { MfcError } from "../../src/errors/codes.js";
import { FakeKernel, FakeLinks } from "../support/fake_kernel.js";
import type { Config } from "../../src/model/types.js";
import { parseBatch, parseOp, type Op } from "../../src/protocol/schema.js";
import { MemoryStore, configText } from "../support/memory_store.js";

/** The fake kernel's table plus its memberships ("ifindex/group/source"). */
type Dump = ReturnType<FakeKernel["dump"]> & { joins: string[] };

function dumpOf(kernel: FakeKernel): Dump {
  return { ...kernel.dump(), joins: [...kernel.memberships].sort() };
}
type Outcome = { ok: true; result: TxResult } | { ok: false; err: MfcError };

const ERRNO = "ENOBUFS"; // not the fake's default, so the test sees the errno really travels

const CALL_OF: Record<string, string> = {
  add_vif: "MRT_ADD_VIF", del_vif: "MRT_DEL_VIF", add_mfc: "MRT_ADD_MFC", replace_mfc: "MRT_ADD_MFC", del_mfc: "MRT_DEL_MFC",
  join: "MCAST_JOIN_GROUP", leave: "MCAST_LEAVE_GROUP",
};

/** The kernel call a planned change makes (a source-specific join has calls of its own). */
function callOf(change: Record<string, unknown>): string {
  const call = CALL_OF[change.action as string] as string;
  return typeof change.source === "string" && (change.action === "join" || change.action === "leave") ? call.replace("_GROUP", "_SOURCE_GROUP") : call;
}

async function attempt(p: Promise<TxResult>): Promise<Outcome> {
  try {
    return { ok: true, result: await p };
  } catch (err) {
    if (!(err instanceof MfcError)) throw err;
    return { ok: false, err };
  }
}

/** The image in FakeKernel.dump() form: what the kernel must hold if memory tells the truth. */
function imageDump(image: Image): Dump {
  return {
    vifs: [...image.vifs.values()].filter((v) => v.family === 4).map((v) => [v.vifi, v.ifindex, v.threshold] as [number, number, number]).sort((a, b) => a[0] - b[0]),
    mifs: [...image.vifs.values()].filter((v) => v.family === 6).map((v) => [v.vifi, v.ifindex, v.threshold] as [number, number, number]).sort((a, b) => a[0] - b[0]),
    mfcs: [...image.mfcs.values()].map((m) => {
      const t = [...m.ttls];
      while (t.length && t[t.length - 1] === 0) t.pop();
      return [`${m.source ?? "0.0.0.0"},${m.group}`, m.parent, t] as [string, number, number[]];
    }).sort((a, b) => a[0].localeCompare(b[0])),
    joins: [...(image.joins?.values() ?? [])].map((j) => `${j.ifindex}/${j.group}/${j.source ?? "*"}`).sort(),
  };
}

/**
 * The kernel table in interface names instead of VIF numbers: equal when it forwards the same
 * way, even if VIFs were renumbered (a resync after a failed undo reinstalls from scratch).
 */
function semanticDump(d: Dump, links: FakeLinks): { vifs: string[]; mfcs: string[]; joins: string[] } {
  const nameOfVif = new Map(d.vifs.map(([vifi, ifindex]) => [vifi, links.nameOf(ifindex) ?? `?ifindex${ifindex}`]));
  const name = (vifi: number): string => nameOfVif.get(vifi) ?? `?vif${vifi}`;
  return {
    vifs: d.vifs.map(([, ifindex, thr]) => `${links.nameOf(ifindex) ?? `?ifindex${ifindex}`}/${thr}`).sort(),
    mfcs: d.mfcs.map(([key, parent, ttls]) => {
      const oifs = ttls.flatMap((t, v) => (t > 0 ? [`${name(v)}:${t}`] : [])).sort();
      return `${key} iif ${name(parent)} oifs ${oifs.join(" ")}`;
    }).sort(),
    joins: d.joins.map((j) => {
      const [ifindex, ...rest] = j.split("/");
      return `${links.nameOf(Number(ifindex)) ?? `?ifindex${ifindex}`}/${rest.join("/")}`;
    }).sort(),
  };
}

const configJson = (c: Config | undefined): string => configText(c);

interface World {
  links: FakeLinks;
  kernel: FakeKernel;
  store: MemoryStore;
  engine: Engine;
}

const add = (source: string | null, group: string, iif: string, oifs: unknown[]): Op => parseOp("ADD_MFC", { source, group, iif, oifs });
const replace = (source: string | null, group: string, iif: string, oifs: unknown[]): Op => parseOp("REPLACE_MFC", { source, group, iif, oifs });
const del = (source: string | null, group: string): Op => parseOp("DEL_MFC", { source, group });
const vifAdd = (ifname: string, threshold?: number): Op => parseOp("ADD_VIF", threshold === undefined ? { ifname } : { ifname, threshold });
const vifDel = (ifname: string): Op => parseOp("DEL_VIF", { ifname });
const join = (ifname: string, group: string, source: string | null = null): Op => parseOp("JOIN", { ifname, group, source });
const leave = (ifname: string, group: string, source: string | null = null): Op => parseOp("LEAVE", { ifname, group, source });

/**
 * The state every request starts from. VIFs: e0 0, e1 1, e2 2, e7 3 (reused hole), e5 5 (pinned,
 * threshold 3), e3 6, e6 7, e11 8, e9 (pinned, unused); e4 was removed after routes named it, so
 * (10.0.0.5, 239.1.1.6) is pending (iif missing) and (10.0.0.4, 239.1.1.5) lacks one oif.
 */
async function priorWorld(): Promise<World> {
  const links = new FakeLinks(Array.from({ length: 14 }, (_, i) => `e${i}`));
  const kernel = new FakeKernel(links);
  const store = new MemoryStore();
  const engine = new Engine(kernel, links, store);
  const prior: Op[][] = [
    [add("10.0.0.1", "239.1.1.1", "e0", ["e1", { ifname: "e2", ttl: 4 }, "e11"])],
    [add("10.0.0.9", "239.9.9.9", "e8", ["e9"])],
    [vifAdd("e5", 3)],
    [add(null, "239.1.1.2", "e1", ["e0", "e3", "e5"])],
    [add("10.0.0.2", "239.1.1.3", "e2", ["e3", { ifname: "e6", ttl: 2 }])],
    [del("10.0.0.9", "239.9.9.9")],
    [add("10.0.0.3", "239.1.1.4", "e3", ["e7"]), vifAdd("e9")],
    [add("10.0.0.4", "239.1.1.5", "e6", ["e4", "e0"]), add("10.0.0.5", "239.1.1.6", "e4", ["e1"])],
    [join("e0", "239.5.5.5"), join("e3", "232.1.1.1", "10.0.0.8"), join("e4", "239.5.5.6")],
  ];
  for (const ops of prior) await engine.transact(ops, false);
  const e4 = links.indexOf("e4") as number;
  links.remove("e4");
  kernel.dropVifOfIfindex(e4);
  await engine.reconcile();
  // The prior state itself must be coherent, or the comparisons below prove nothing.
  assert.deepEqual(dumpOf(kernel), imageDump(engine.snapshot().image), "prior state: kernel != image");
  assert.equal(configJson(store.last), configJson(engine.snapshot().config), "prior state: store != memory");
  kernel.resetCalls();
  return { links, kernel, store, engine };
}

/** Every kind of mutating request, each as the daemon would parse it. */
const REQUESTS: { name: string; ops: () => Op[] }[] = [
  { name: "ADD_VIF (new interface)", ops: () => [vifAdd("e8", 2)] },
  { name: "ADD_VIF (pins an in-use interface with a new threshold)", ops: () => [vifAdd("e3", 5)] },
  { name: "DEL_VIF", ops: () => [vifDel("e9")] },
  { name: "ADD_MFC (needs new VIFs)", ops: () => [add("10.0.0.6", "239.2.2.2", "e8", ["e10", "e1", { ifname: "e5", ttl: 7 }])] },
  { name: "ADD_MFC (*,G) on existing VIFs", ops: () => [add(null, "239.2.2.3", "e2", ["e0", "e1"])] },
  { name: "REPLACE_MFC (new key)", ops: () => [replace("10.0.0.7", "239.2.2.4", "e12", ["e13"])] },
  { name: "REPLACE_MFC (existing route, stable VIFs)", ops: () => [replace(null, "239.1.1.2", "e1", ["e0", { ifname: "e3", ttl: 9 }])] },
  { name: "REPLACE_MFC (existing route, drops one VIF and adds another)", ops: () => [replace("10.0.0.1", "239.1.1.1", "e0", ["e10", { ifname: "e2", ttl: 6 }])] },
  { name: "REPLACE_MFC (existing route, new iif)", ops: () => [replace("10.0.0.2", "239.1.1.3", "e12", ["e3", "e6"])] },
  { name: "DEL_MFC (frees a VIF)", ops: () => [del("10.0.0.2", "239.1.1.3")] },
  { name: "FLUSH", ops: () => [parseOp("FLUSH", {})] },
  { name: "ADD_MFC of a template (a group range) needing new VIFs", ops: () => [add(null, "239.8.0.0/16", "e12", ["e13"])] },
  { name: "JOIN (any-source)", ops: () => [join("e2", "239.6.6.6")] },
  { name: "JOIN (source-specific)", ops: () => [join("e1", "232.2.2.2", "10.0.0.9")] },
  { name: "LEAVE (source-specific)", ops: () => [leave("e3", "232.1.1.1", "10.0.0.8")] },
  { name: "BATCH (a route, two joins, a leave)", ops: () => [add("10.0.0.6", "239.2.2.5", "e8", ["e10"]), join("e8", "239.2.2.5"), join("e10", "239.6.6.7"), leave("e0", "239.5.5.5")] },
  {
    name: "BATCH (several ops)",
    ops: () => parseBatch({
      operations: [
        { action: "REPLACE_MFC", payload: { source: "10.0.0.1", group: "239.1.1.1", iif: "e0", oifs: ["e10", "e2"] } },
        { action: "ADD_MFC", payload: { source: "10.0.0.8", group: "239.3.3.1", iif: "e8", oifs: ["e12", "e1"] } },
        { action: "DEL_MFC", payload: { source: "10.0.0.3", group: "239.1.1.4" } },
        { action: "ADD_VIF", payload: { ifname: "e13", threshold: 4 } },
        { action: "DEL_VIF", payload: { ifname: "e9" } },
        { action: "REPLACE_MFC", payload: { group: "239.1.1.2", iif: "e1", oifs: ["e0", "e5", "e13"] } },
      ],
    }),
  },
  {
    name: "APPLY (adds, replaces, removals, a pending route kept)",
    ops: () => [parseOp("APPLY", {
      state: {
        vifs: [{ ifname: "e5", threshold: 3 }, { ifname: "e12", threshold: 2 }],
        routes: [
          { source: "10.0.0.1", group: "239.1.1.1", iif: "e0", oifs: ["e1", { ifname: "e2", ttl: 4 }, "e11"] }, // unchanged
          { source: null, group: "239.1.1.2", iif: "e1", oifs: ["e0", "e5", "e8"] }, // replaced, new VIF
          { source: "10.0.0.2", group: "239.1.1.3", iif: "e2", oifs: ["e3"] }, // replaced, drops e6
          { source: "10.0.0.5", group: "239.1.1.6", iif: "e4", oifs: ["e1"] }, // pending, kept
          { source: "10.0.0.10", group: "239.4.4.4", iif: "e10", oifs: ["e13", "e12"] }, // added
        ],
      },
    })],
  },
  {
    name: "BATCH that removes VIFs and adds others",
    ops: () => [del("10.0.0.3", "239.1.1.4"), vifDel("e9"), add("10.0.0.7", "239.3.3.3", "e8", ["e10", "e0"]), vifAdd("e13", 2)],
  },
];

function assertUnchanged(w: World, before: { dump: Dump; snap: Snapshot; stored: string; files: number }, what: string): void {
  assert.deepEqual(dumpOf(w.kernel), before.dump, `${what}: kernel differs from the state before`);
  const snap = w.engine.snapshot();
  assert.equal(configJson(snap.config), configJson(before.snap.config), `${what}: memory config differs`);
  assert.deepEqual(snap.image, before.snap.image, `${what}: memory image differs`);
  assert.equal(configJson(w.store.last), before.stored, `${what}: store differs`);
  assert.equal(w.store.saved.length, before.files, `${what}: something was saved`);
  assert.deepEqual(w.store.deltaViolations, [], `${what}: a save's delta missed a change`);
}

/** A deep copy: the engine edits its committed maps in place at the next commit. */
function capture(w: World): { dump: Dump; snap: Snapshot; stored: string; files: number } {
  const snap = w.engine.snapshot();
  return { dump: dumpOf(w.kernel), snap: structuredClone(snap), stored: configJson(w.store.last), files: w.store.saved.length };
}

/** Runs the request once without faults: its kernel calls, plan, and the state it leads to. */
async function cleanRun(ops: Op[]): Promise<{ n: number; changes: Record<string, unknown>[] }> {
  const w = await priorWorld();
  const before = capture(w);
  const r = await attempt(w.engine.transact(ops, false));
  assert.ok(r.ok, `clean run failed: ${r.ok ? "" : `${r.err.code} ${r.err.message}`}`);
  const n = w.kernel.calls;
  assert.equal(n, r.result.changes.length, "one kernel call per planned change");
  assert.ok(n > 0, "the request must change the kernel");
  assert.notDeepEqual(dumpOf(w.kernel), before.dump);
  assert.deepEqual(dumpOf(w.kernel), imageDump(w.engine.snapshot().image), "after the clean run: kernel != image");
  assert.equal(w.store.saved.length, before.files + 1, "the clean run saved once");
  assert.equal(configJson(w.store.last), configJson(w.engine.snapshot().config), "after the clean run: store != memory");
  return { n, changes: r.result.changes };
}

function expectKernelError(r: Outcome, what: string): MfcError {
  assert.ok(!r.ok, `${what}: the request succeeded although a kernel call failed`);
  assert.equal(r.err.code, "E_KERNEL", `${what}: ${r.err.message}`);
  return r.err;
}

void describe("engine: all or nothing under kernel faults (SPEC §6.1)", () => {
  for (const req of REQUESTS) {
    void test(req.name, async (t) => {
      const { n, changes } = await cleanRun(req.ops());
      for (let k = 1; k <= n; k++) {
        const expected = changes[k - 1] as Record<string, unknown>;
        const expectedCall = callOf(expected);

        // --- call k fails once: the undo works, everything must be exactly as before.
        await t.test(`call ${k}/${n} (${expectedCall}) fails once`, async () => {
          const what = `${req.name}: call ${k}/${n} fails once`;
          const w = await priorWorld();
          const before = capture(w);
          w.kernel.failAt({ at: k, errno: ERRNO });
          const err = expectKernelError(await attempt(w.engine.transact(req.ops(), false)), what);
          assert.deepEqual(
            { call: err.details?.call, errno: err.details?.errno, step: err.details?.step, steps: err.details?.steps, failed_step: err.details?.failed_step },
            { call: expectedCall, errno: ERRNO, step: k, steps: n, failed_step: expected },
            `${what}: error details`,
          );
          assert.ok(!("undo_failures" in (err.details ?? {})), `${what}: an undo failed: ${JSON.stringify(err.details)}`);
          assert.match(err.message, new RegExp(`${expectedCall}.*${ERRNO}.*step ${k} of ${n}`), what);
          assert.equal(w.kernel.calls, k + (k - 1), `${what}: k calls, then k-1 undo calls`);
          assertUnchanged(w, before, what);
          assert.equal(w.engine.degraded, undefined, what);
        });

        // --- every call from k on fails: the undo fails too, the engine must resync.
        await t.test(`calls ${k}..${n} fail for good`, async () => {
          const what = `${req.name}: calls ${k}.. fail for good`;
          const w = await priorWorld();
          const before = capture(w);
          w.kernel.failAt({ at: k, persistent: true, errno: ERRNO });
          const err = expectKernelError(await attempt(w.engine.transact(req.ops(), false)), what);
          assert.deepEqual(
            { call: err.details?.call, errno: err.details?.errno, step: err.details?.step, steps: err.details?.steps, failed_step: err.details?.failed_step },
            { call: expectedCall, errno: ERRNO, step: k, steps: n, failed_step: expected },
            `${what}: error details`,
          );
          // Nothing changed in memory or in the store, whatever the kernel did.
          const snap = w.engine.snapshot();
          assert.equal(configJson(snap.config), configJson(before.snap.config), `${what}: memory config differs`);
          assert.equal(configJson(w.store.last), before.stored, `${what}: store differs`);
          assert.equal(w.store.saved.length, before.files, `${what}: something was saved`);
          if (k === 1) {
            // Nothing to undo: exactly as before.
            assertUnchanged(w, before, what);
          } else {
            const undo = err.details?.undo_failures as { call: string; errno: string }[] | undefined;
            assert.ok(Array.isArray(undo), `${what}: undo_failures missing: ${JSON.stringify(err.details)}`);
            assert.equal(undo.length, k - 1, `${what}: each of the k-1 undo calls failed`);
            assert.ok(undo.every((u) => u.errno === ERRNO), what);
            assert.equal(typeof err.details?.degraded, "string", `${what}: the failed resync must be reported`);
            assert.equal(typeof w.engine.degraded, "string", `${what}: engine.degraded must say the table is incomplete`);
            // Memory must describe what the kernel really holds (here: the flushed, empty table).
            assert.deepEqual(imageDump(w.engine.snapshot().image), dumpOf(w.kernel), `${what}: memory image != kernel`);
          }
          // Once the kernel works again, a reconcile brings back the state before.
          w.kernel.clearFaults();
          await w.engine.reconcile();
          assert.deepEqual(semanticDump(dumpOf(w.kernel), w.links), semanticDump(before.dump, w.links), `${what}: kernel after reconcile`);
          assert.deepEqual(imageDump(w.engine.snapshot().image), dumpOf(w.kernel), `${what}: memory image != kernel after reconcile`);
          assert.equal(configJson(w.engine.snapshot().config), configJson(before.snap.config), what);
          assert.equal(w.store.saved.length, before.files, `${what}: reconcile saved`);
          assert.equal(w.engine.degraded, undefined, `${what}: a clean reconcile must clear engine.degraded`);
        });
      }
    });
  }
});

void describe("engine: durable, rolled back when the save fails (SPEC §6.2)", () => {
  for (const req of REQUESTS) {
    void test(req.name, async (t) => {
      const { n } = await cleanRun(req.ops());

      await t.test("save fails", async () => {
        const what = `${req.name}: save fails`;
        const w = await priorWorld();
        const before = capture(w);
        w.store.failSaves(1);
        const r = await attempt(w.engine.transact(req.ops(), false));
        assert.ok(!r.ok, `${what}: succeeded`);
        assert.equal(r.err.code, "E_STATE_WRITE", `${what}: ${r.err.message}`);
        assert.equal(r.err.details?.path, w.store.path, what);
        assert.ok(!("undo_failures" in (r.err.details ?? {})), what);
        assert.equal(w.kernel.calls, 2 * n, `${what}: n calls and n undo calls`);
        assert.equal(w.store.attempts, 10, `${what}: the save was attempted`); // 9 prior + 1
        assertUnchanged(w, before, what);
        // The engine is still usable: the same request now succeeds and is saved.
        const again = await attempt(w.engine.transact(req.ops(), false));
        assert.ok(again.ok, `${what}: retry failed`);
        assert.equal(w.store.saved.length, before.files + 1, what);
        assert.equal(configJson(w.store.last), configJson(w.engine.snapshot().config), what);
      });

      // A kernel call of the undo fails once: the engine must resync to the state before.
      for (let j = 1; j <= n; j++) await t.test(`save fails, then undo call ${j}/${n} fails once`, async () => {
        const what = `${req.name}: save fails, then undo call ${j}/${n} fails once`;
        const w = await priorWorld();
        const before = capture(w);
        w.store.failSaves(1);
        w.kernel.failAt({ at: n + j, errno: ERRNO });
        const r = await attempt(w.engine.transact(req.ops(), false));
        assert.ok(!r.ok, `${what}: succeeded`);
        assert.equal(r.err.code, "E_STATE_WRITE", `${what}: ${r.err.message}`);
        const undo = r.err.details?.undo_failures as { call: string; errno: string }[] | undefined;
        // The failed undo call is reported first; undo steps that depended on it may fail after it.
        assert.ok(Array.isArray(undo) && undo.length >= 1 && undo[0]?.errno === ERRNO, `${what}: undo_failures: ${JSON.stringify(r.err.details)}`);
        assertUnchanged(w, before, what);
        assert.equal(w.engine.degraded, undefined, what);
      });

      // Every undo call fails for good: the kernel cannot be restored now, but memory must say so,
      // and once the kernel works again a reconcile must bring the state before back.
      await t.test("save fails, then the kernel fails for good during the undo", async () => {
        const what = `${req.name}: save fails, then the kernel fails for good during the undo`;
        const w = await priorWorld();
        const before = capture(w);
        w.store.failSaves(1);
        w.kernel.failAt({ at: n + 1, persistent: true, errno: ERRNO });
        const r = await attempt(w.engine.transact(req.ops(), false));
        assert.ok(!r.ok, `${what}: succeeded`);
        assert.equal(r.err.code, "E_STATE_WRITE", `${what}: ${r.err.message}`);
        const undo = r.err.details?.undo_failures as unknown[] | undefined;
        assert.ok(Array.isArray(undo) && undo.length === n, `${what}: undo_failures: ${JSON.stringify(r.err.details)}`);
        assert.equal(configJson(w.engine.snapshot().config), configJson(before.snap.config), `${what}: memory config`);
        assert.equal(configJson(w.store.last), before.stored, `${what}: store`);
        assert.equal(typeof w.engine.degraded, "string", `${what}: engine.degraded must report the incomplete table`);
        assert.deepEqual(imageDump(w.engine.snapshot().image), dumpOf(w.kernel), `${what}: memory image != kernel`);
        w.kernel.clearFaults();
        await w.engine.reconcile();
        assert.deepEqual(semanticDump(dumpOf(w.kernel), w.links), semanticDump(before.dump, w.links), `${what}: kernel after reconcile`);
        assert.deepEqual(imageDump(w.engine.snapshot().image), dumpOf(w.kernel), `${what}: memory image != kernel after reconcile`);
        assert.equal(w.engine.degraded, undefined, `${what}: a clean reconcile must clear engine.degraded`);
      });
    });
  }
});

/**
 * The prior state plus one more fact the engine has not processed yet: device e6 was deleted (the
 * kernel dropped its VIF; MFC entries (10.0.0.2, 239.1.1.3) and (10.0.0.4, 239.1.1.5) still name
 * its VIF number) and no reconcile ran. Every transaction plans from the live image, so it must
 * leave no entry naming a vanished VIF, and a failed one must leave the kernel exactly as it was.
 */
async function dirtyWorld(): Promise<World> {
  const w = await priorWorld();
  const e6 = w.links.indexOf("e6") as number;
  w.links.remove("e6");
  w.kernel.dropVifOfIfindex(e6);
  w.kernel.resetCalls();
  return w;
}

/**
 * Every MFC entry names only VIFs that exist and belong to its route's interfaces: an entry naming
 * a vanished VIF forwards into whatever interface gets that number next (STACK.md).
 */
function assertNoStaleEntries(w: World, what: string): void {
  const routes = w.engine.snapshot().config.routes;
  for (const [key, e] of w.kernel.mfcs) {
    const route = routes.get(`${e.origin === "0.0.0.0" || e.origin === "::" ? "*" : e.origin},${e.group}`);
    assert.ok(route, `${what}: kernel entry ${key} has no route`);
    const table = e.group.includes(":") ? w.kernel.mifs : w.kernel.vifs;
    const parent = table.get(e.parent);
    assert.ok(parent, `${what}: ${key} has parent VIF ${e.parent}, which does not exist`);
    assert.equal(w.links.nameOf(parent.ifindex), route.iif, `${what}: ${key}: parent VIF ${e.parent} is not the route's iif ${route.iif}`);
    e.ttls.forEach((t, v) => {
      if (t === 0 || v === e.parent) return;
      const vif = table.get(v);
      assert.ok(vif, `${what}: ${key} has ttls[${v}]=${t} for a VIF that does not exist`);
      const name = w.links.nameOf(vif.ifindex) ?? "?";
      assert.ok(route.oifs.some((o) => o.ifname === name), `${what}: ${key} forwards on VIF ${v} (${name}), not an oif of the route`);
    });
  }
}

/** A dump without TTLs on VIF numbers that do not exist: those OIFs forward nothing. */
function forwardingDump(d: Dump): Dump {
  const exists = { 4: new Set(d.vifs.map((v) => v[0])), 6: new Set(d.mifs.map((v) => v[0])) };
  return {
    vifs: d.vifs,
    mifs: d.mifs,
    joins: d.joins,
    mfcs: d.mfcs.map(([key, parent, ttls]) => {
      const t = ttls.map((x, v) => (exists[key.includes(":") ? 6 : 4].has(v) ? x : 0));
      while (t.length && t[t.length - 1] === 0) t.pop();
      return [key, parent, t] as [string, number, number[]];
    }),
  };
}

/** The image minus VIFs whose device is gone: what the kernel holds if memory tells the truth. */
function liveImageDump(w: World): Dump {
  const image = w.engine.snapshot().image;
  return imageDump({ vifs: new Map([...image.vifs].filter(([, v]) => w.links.nameOf(v.ifindex) !== undefined)), mfcs: image.mfcs, joins: image.joins });
}

const DIRTY_REQUESTS: { name: string; ops: () => Op[] }[] = [
  { name: "ADD_MFC on existing VIFs", ops: () => [add(null, "239.2.2.3", "e2", ["e0", "e1"])] },
  { name: "ADD_MFC needing a new VIF", ops: () => [add("10.0.0.6", "239.2.2.2", "e8", ["e10"])] },
  { name: "REPLACE_MFC of a route that used e6", ops: () => [replace("10.0.0.2", "239.1.1.3", "e2", ["e3", "e7"])] },
  { name: "DEL_MFC", ops: () => [del("10.0.0.3", "239.1.1.4")] },
  { name: "ADD_VIF", ops: () => [vifAdd("e8", 2)] },
];

void describe("engine: a link vanished and no reconcile ran yet", () => {
  for (const req of DIRTY_REQUESTS) {
    void test(req.name, async (t) => {
      let n = 0;
      await t.test("the transaction cleans up entries naming the vanished VIF", async () => {
        const w = await dirtyWorld();
        const r = await attempt(w.engine.transact(req.ops(), false));
        assert.ok(r.ok, `failed: ${r.ok ? "" : r.err.message}`);
        n = w.kernel.calls;
        assertNoStaleEntries(w, req.name);
        assert.deepEqual(dumpOf(w.kernel), liveImageDump(w), `${req.name}: kernel != image`);
        // And the reconcile that follows the link event has nothing left to do to the MFC table.
        const rec = await w.engine.reconcile();
        assert.deepEqual(rec.changes.filter((c) => c.action !== "del_vif" && c.action !== "add_vif"), [], `${req.name}: MFC work was left for the reconcile`);
      });
      for (let k = 1; k <= n; k++) {
        await t.test(`call ${k}/${n} fails once: the kernel is exactly as before`, async () => {
          const w = await dirtyWorld();
          const before = forwardingDump(dumpOf(w.kernel));
          const config = configJson(w.engine.snapshot().config);
          w.kernel.failAt({ at: k, errno: ERRNO });
          expectKernelError(await attempt(w.engine.transact(req.ops(), false)), `${req.name}: call ${k}`);
          // An OIF on the vanished VIF cannot be re-added by an undo (the kernel drops OIFs naming
          // missing VIFs), so "as before" is judged on what forwards: dead OIFs are left out.
          assert.deepEqual(forwardingDump(dumpOf(w.kernel)), before, `${req.name}: call ${k}: kernel differs from the state before`);
          assert.equal(configJson(w.engine.snapshot().config), config, `${req.name}: call ${k}: memory config`);
          assert.deepEqual(forwardingDump(dumpOf(w.kernel)), forwardingDump(liveImageDump(w)), `${req.name}: call ${k}: kernel != image`);
          // The entries that lost their dead OIF are marked stale, so the next plan rewrites them.
          await w.engine.reconcile();
          assertNoStaleEntries(w, `${req.name}: call ${k}, after reconcile`);
        });
      }
    });
  }
});

void describe("engine: dry run touches nothing", () => {
  for (const req of REQUESTS) {
    void test(req.name, async () => {
      const { changes } = await cleanRun(req.ops());
      const w = await priorWorld();
      const before = capture(w);
      const attemptsBefore = w.store.attempts;
      // Even a kernel that fails every call cannot fail a dry run: it must not call it.
      w.kernel.failAt({ at: 1, persistent: true });
      const r = await attempt(w.engine.transact(req.ops(), true));
      assert.ok(r.ok, `dry run failed: ${r.ok ? "" : r.err.message}`);
      assert.deepEqual(r.result.changes, changes, "dry run plans what the real run does");
      assert.equal(w.kernel.calls, 0, "dry run made kernel calls");
      assert.equal(w.store.attempts, attemptsBefore, "dry run tried to save");
      assertUnchanged(w, before, "dry run");
    });
  }

  void test("a dry run that fails validation changes nothing either", async () => {
    const w = await priorWorld();
    const before = capture(w);
    const r = await attempt(w.engine.transact([add("10.0.0.1", "239.1.1.1", "e0", ["e1"])], true));
    assert.ok(!r.ok && r.err.code === "E_MFC_EXISTS");
    assert.equal(w.kernel.calls, 0);
    assertUnchanged(w, before, "failed dry run");
  });
});

void describe("engine: validation failures never reach the kernel (SPEC §6.5)", () => {
  const cases: [string, () => Op[], string][] = [
    ["E_MFC_EXISTS", () => [add("10.0.0.1", "239.1.1.1", "e0", ["e1"])], "E_MFC_EXISTS"],
    ["E_IF_NOT_FOUND (missing oif)", () => [add("10.0.0.1", "239.5.5.5", "e0", ["e4"])], "E_IF_NOT_FOUND"],
    ["E_VIF_IN_USE", () => [vifDel("e5")], "E_VIF_IN_USE"],
    ["E_VIF_NOT_FOUND", () => [vifDel("e10")], "E_VIF_NOT_FOUND"],
    ["E_VIF_EXISTS", () => [vifAdd("e9")], "E_VIF_EXISTS"],
    ["E_MFC_NOT_FOUND", () => [del("10.0.0.1", "239.7.7.7")], "E_MFC_NOT_FOUND"],
    ["last op of a batch fails", () => [add("10.0.0.1", "239.5.5.5", "e10", ["e12"]), parseOp("FLUSH", {}), del("10.0.0.1", "239.1.1.1")], "E_MFC_NOT_FOUND"],
  ];
  for (const [name, ops, code] of cases) {
    void test(name, async () => {
      const w = await priorWorld();
      const before = capture(w);
      const r = await attempt(w.engine.transact(ops(), false));
      assert.ok(!r.ok, "succeeded");
      assert.equal(r.err.code, code, r.err.message);
      assert.equal(w.kernel.calls, 0);
      assertUnchanged(w, before, name);
    });
  }
});
