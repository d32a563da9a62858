/**
 * Group commit (issue 13, SPEC §6.1/§6.2 per transaction): transactions that arrive while a save
 * is in flight share the next save; each is answered only after that save succeeded; when the
 * shared save fails, every transaction in it fails with E_STATE_WRITE and kernel, memory and
 * state file are back where they were before the group — whatever mix of routes-only changes,
 * VIF changes and FLUSH/APPLY the group held. A transaction the kernel or the validation refuses
 * fails alone inside a group.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Engine, GROUP_WORK, type TxResult } from "../../src/engine/engine.js";
import { MfcError } from "../../src/errors/codes.js";
import type { Config } from "../../src/model/types.js";
import { parseBatch, parseOp, type Op } from "../../src/protocol/schema.js";
import type { Delta } from "../../src/state/store.js";
import { FakeKernel, FakeLinks } from "../support/fake_kernel.js";
import { MemoryStore, configText } from "../support/memory_store.js";

/** A MemoryStore whose saves wait for the test to let them finish, one by one. */
class GatedStore extends MemoryStore {
  private gates: (() => void)[] = [];
  started = 0;

  override async save(config: Config, delta?: Delta): Promise<void> {
    this.started++;
    // What reaches the disk is what the engine handed over when the save began.
    const failure = await super.save(config, delta).then(() => undefined, (err: unknown) => err as Error);
    await new Promise<void>((release) => this.gates.push(release));
    if (failure !== undefined) throw failure;
  }

  /** Lets the oldest waiting save finish. */
  release(): void {
    const gate = this.gates.shift();
    assert.ok(gate, "no save is waiting");
    gate();
  }

  get waiting(): number {
    return this.gates.length;
  }
}

const add = (group: string, iif = "e0", oifs = ["e1"]): Op =>
  parseOp("ADD_MFC", { source: "10.0.0.1", group, iif, oifs: oifs.map((ifname) => ({ ifname })) });
const del = (group: string): Op => parseOp("DEL_MFC", { source: "10.0.0.1", group });

function world(): { links: FakeLinks; kernel: FakeKernel; store: GatedStore; engine: Engine } {
  const links = new FakeLinks(["e0", "e1", "e2", "e3"]);
  const kernel = new FakeKernel(links);
  const store = new GatedStore();
  return { links, kernel, store, engine: new Engine(kernel, links, store) };
}

type Outcome = { settled: false } | { settled: true; ok: true; result: TxResult } | { settled: true; ok: false; err: MfcError };

/** Starts a transaction and tracks how it ends, without awaiting it. */
function start(engine: Engine, ops: Op[]): { outcome: Outcome; done: Promise<void> } {
  const t: { outcome: Outcome; done: Promise<void> } = { outcome: { settled: false }, done: Promise.resolve() };
  t.done = engine.transact(ops, false).then(
    (result) => { t.outcome = { settled: true, ok: true, result }; },
    (err: unknown) => {
      if (!(err instanceof MfcError)) throw err;
      t.outcome = { settled: true, ok: false, err };
    },
  );
  return t;
}

/** Lets every pending promise callback run (the engine's queue, the stores' gates). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
}

const codeOf = (o: Outcome): string => (!o.settled ? "pending" : o.ok ? "ok" : o.err.code);

void test("transactions that arrive during a save share the next one, and none is answered before it is durable", async () => {
  const { store, engine } = world();
  const first = start(engine, [add("239.1.1.1")]);
  await settle();
  assert.equal(store.waiting, 1, "the first transaction's save is in flight");
  const rest = Array.from({ length: 9 }, (_, i) => start(engine, [add(`239.1.2.${i + 1}`)]));
  await settle();
  assert.equal(store.started, 1, "nothing else is saved while a save is in flight");
  assert.deepEqual([first, ...rest].map((t) => codeOf(t.outcome)), Array(10).fill("pending"), "nobody is answered before the save ends");

  store.release();
  await settle();
  assert.equal(codeOf(first.outcome), "ok");
  assert.equal(store.started, 2, "the nine waiting transactions share one save");
  assert.deepEqual(rest.map((t) => codeOf(t.outcome)), Array(9).fill("pending"), "the group is answered only once its save is durable");

  store.release();
  await Promise.all(rest.map((t) => t.done));
  assert.deepEqual(rest.map((t) => codeOf(t.outcome)), Array(9).fill("ok"));
  assert.equal(store.saved.length, 2);
  assert.equal(configText(store.last), configText(engine.snapshot().config), "the shared save holds every change of the group");
  assert.equal(engine.snapshot().config.routes.size, 10);
  assert.deepEqual(store.deltaViolations, [], "the shared save's delta names every route of the group");
  assert.equal(store.deltas[1]?.routes.size, 9, "one record for the group, touching the nine routes");
});

/** Holds a first transaction's save open, queues `group`, fails the group's save, returns outcomes. */
async function failGroup(setup: Op[][], group: Op[][]): Promise<{ outcomes: Outcome[]; before: { kernel: string; memory: string; file: string }; w: ReturnType<typeof world> }> {
  const w = world();
  for (const ops of setup) {
    const t = start(w.engine, ops);
    await settle();
    w.store.release();
    await t.done;
    assert.equal(codeOf(t.outcome), "ok", "set-up transaction");
  }
  const blocker = start(w.engine, [add("239.9.9.9", "e3", ["e2"])]);
  await settle();
  // The blocker is committed in memory and its save has begun: what the group must return to.
  const before = { kernel: JSON.stringify(w.kernel.dump()), memory: configText(w.engine.snapshot().config), file: configText(w.store.last) };
  const txs = group.map((ops) => start(w.engine, ops));
  await settle();
  // The group's save fails (the disk filled up meanwhile).
  w.store.failSaves(1);
  w.store.release();
  await blocker.done;
  assert.equal(codeOf(blocker.outcome), "ok");
  await settle();
  w.store.release();
  await Promise.all(txs.map((t) => t.done));
  return { outcomes: txs.map((t) => t.outcome), before, w };
}

void test("a failed shared save fails every transaction in it and undoes them all, in reverse, whatever they were", async () => {
  const { outcomes, before, w } = await failGroup(
    [[add("239.1.1.1")], [add("239.1.1.2", "e0", ["e1", "e2"])]],
    [
      [add("239.2.0.1")], // routes only, new
      [del("239.1.1.1")], // routes only, removal
      [add("239.1.1.2")], // refused by validation: exists
      [parseOp("ADD_VIF", { ifname: "e2", threshold: 5 })], // a VIF change: the full plan
      [add("239.2.0.2", "e1", ["e0"])], // routes only again, on top of the full plan
      parseBatch({ operations: [{ action: "REPLACE_MFC", payload: { source: "10.0.0.1", group: "239.1.1.2", iif: "e1", oifs: [{ ifname: "e3" }] } }, { action: "DEL_MFC", payload: { source: "10.0.0.1", group: "239.2.0.1" } }] }),
    ],
  );
  assert.deepEqual(outcomes.map(codeOf), ["E_STATE_WRITE", "E_STATE_WRITE", "E_MFC_EXISTS", "E_STATE_WRITE", "E_STATE_WRITE", "E_STATE_WRITE"]);
  const failed = outcomes[0] as Extract<Outcome, { ok: false }>;
  assert.equal(failed.err.details?.transactions_in_failed_save, 5);
  assert.equal(JSON.stringify(w.kernel.dump()), before.kernel, "kernel as before the group");
  assert.equal(configText(w.engine.snapshot().config), before.memory, "memory as before the group");
  assert.equal(configText(w.store.last), before.file, "state file as before the group");
  assert.equal(before.file, before.memory);

  // The engine goes on from the restored state: a later change is planned against it and saved.
  const later = start(w.engine, [add("239.3.0.1", "e2", ["e3"])]);
  await settle();
  w.store.release();
  await later.done;
  assert.equal(codeOf(later.outcome), "ok");
  assert.equal(configText(w.store.last), configText(w.engine.snapshot().config));
  assert.equal(w.engine.snapshot().config.routes.size, 4);
  assert.deepEqual(w.store.deltaViolations, []);
});

void test("a failed shared save that held a FLUSH undoes it too", async () => {
  const { outcomes, before, w } = await failGroup(
    [[add("239.1.1.1")], [parseOp("ADD_VIF", { ifname: "e2", threshold: 3 })]],
    [[add("239.2.0.1")], [parseOp("FLUSH", {})], [add("239.2.0.3", "e1", ["e2"])]],
  );
  assert.deepEqual(outcomes.map(codeOf), ["E_STATE_WRITE", "E_STATE_WRITE", "E_STATE_WRITE"]);
  assert.equal(JSON.stringify(w.kernel.dump()), before.kernel);
  assert.equal(configText(w.engine.snapshot().config), before.memory);
  assert.equal(configText(w.store.last), before.file);
});

void test("inside a group, a transaction the kernel refuses fails alone; the others are saved and acknowledged", async () => {
  const w = world();
  const blocker = start(w.engine, [add("239.9.9.9")]); // e0 -> e1: the VIFs the others need
  await settle();
  const a = start(w.engine, [add("239.2.0.1")]);
  const b = start(w.engine, [add("239.2.0.2")]);
  const c = start(w.engine, [add("239.2.0.3")]);
  // Counted from here: a's MRT_ADD_MFC is call 1, b's is call 2.
  w.kernel.resetCalls();
  w.kernel.failAt({ at: 2, errno: "ENOBUFS" });
  w.store.release();
  await settle();
  w.store.release();
  await Promise.all([blocker, a, b, c].map((t) => t.done));
  assert.deepEqual([a, b, c].map((t) => codeOf(t.outcome)), ["ok", "E_KERNEL", "ok"]);
  assert.deepEqual([...w.engine.snapshot().config.routes.keys()].sort(), ["10.0.0.1,239.2.0.1", "10.0.0.1,239.2.0.3", "10.0.0.1,239.9.9.9"]);
  assert.equal(configText(w.store.last), configText(w.engine.snapshot().config));
  assert.equal(w.store.saved.length, 2, "the group's two changes shared one save");
  assert.equal(w.kernel.dump().mfcs.length, 3);
});

void test("a dry run waits for the group before it and sees its changes; it never joins a save", async () => {
  const w = world();
  const blocker = start(w.engine, [add("239.9.9.9")]); // e0 -> e1: the VIFs the others need
  await settle();
  const a = start(w.engine, [add("239.2.0.1")]);
  const dry = w.engine.transact([del("239.2.0.1")], true);
  w.store.release();
  await settle();
  w.store.release();
  assert.equal((await dry).changes.length, 1, "the dry run sees the route the group before it added");
  await Promise.all([blocker.done, a.done]);
  assert.equal(w.store.started, 2);
  assert.equal(w.engine.snapshot().config.routes.size, 2);
});

void test("a no-op or a refusal decided on top of a group whose save fails is planned again, not answered from the undone state", async () => {
  const { store, engine, kernel } = world();
  const blocker = start(engine, [add("239.9.9.9", "e3", ["e2"])]);
  await settle();
  const t1 = start(engine, [add("239.1.1.1")]);
  const t2 = start(engine, [parseOp("REPLACE_MFC", { source: "10.0.0.1", group: "239.1.1.1", iif: "e0", oifs: [{ ifname: "e1" }] })]); // a no-op on top of t1
  const t3 = start(engine, [add("239.1.1.1", "e0", ["e2"])]); // E_MFC_EXISTS on top of t1
  await settle();
  store.failSaves(1);
  store.release(); // the blocker's save
  await settle();
  store.release(); // the group's save fails: t1 is undone
  await settle();
  assert.deepEqual([t1, t2, t3].map((t) => codeOf(t.outcome)), ["E_STATE_WRITE", "pending", "pending"], "t2 and t3 are not answered from the undone state");
  store.release(); // t2 and t3, planned again on the state that stands, share the next save
  await Promise.all([blocker, t1, t2, t3].map((t) => t.done));
  assert.deepEqual([t2, t3].map((t) => codeOf(t.outcome)), ["ok", "E_MFC_EXISTS"]);
  assert.ok(engine.snapshot().config.routes.has("10.0.0.1,239.1.1.1"), "t2's REPLACE really added the route this time");
  assert.equal(configText(store.last), configText(engine.snapshot().config));
  assert.equal(kernel.dump().mfcs.length, 2);
});

void test("a group is bounded (GROUP_WORK operations): big applies queued together are committed one after the other", async () => {
  const { store, engine } = world();
  const apply = (base: number): Op => parseOp("APPLY", { state: { routes: Array.from({ length: 6_000 }, (_, i) => ({ source: "10.0.0.1", group: `239.${base}.${Math.floor(i / 250)}.${(i % 250) + 1}`, iif: "e0", oifs: ["e1"] })) } });
  assert.ok(2 * 6_000 > GROUP_WORK && 6_000 + 5 <= GROUP_WORK, "premise: two applies exceed a group, one with the adds does not");
  const blocker = start(engine, [add("239.9.9.9", "e3", ["e2"])]);
  await settle();
  const a = start(engine, [apply(10)]);
  const b = start(engine, [apply(20)]);
  const adds = Array.from({ length: 5 }, (_, i) => start(engine, [add(`239.30.0.${i + 1}`)]));
  await settle();
  store.release();
  await settle();
  assert.equal(store.started, 2, "the first apply alone makes the next group");
  store.release();
  await settle();
  assert.equal(codeOf(a.outcome), "ok");
  assert.equal(store.started, 3, "the second apply and the adds share the one after");
  store.release();
  await Promise.all([blocker, a, b, ...adds].map((t) => t.done));
  assert.deepEqual([b, ...adds].map((t) => codeOf(t.outcome)), Array(6).fill("ok"));
  assert.equal(engine.snapshot().config.routes.size, 6_005);
});

void test("a group's answers reach their callers before the next group's kernel work begins, however many promise steps they take", async () => {
  const { store, engine, kernel } = world();
  const events: string[] = [];
  const blocker = engine.transact([add("239.9.9.9")], false);
  let answered = blocker;
  for (let i = 0; i < 10; i++) answered = answered.then((r) => r); // a caller's chain of continuations
  void answered.then(() => events.push("answered"));
  await settle();
  const next = start(engine, [add("239.2.0.1"), add("239.2.0.2")]); // queued behind the blocker's save
  await settle();
  for (const call of ["addMfc", "addMfcs"] as const) {
    const real = kernel[call].bind(kernel) as (...a: unknown[]) => unknown;
    (kernel as unknown as Record<string, unknown>)[call] = (...a: unknown[]): unknown => {
      events.push("kernel");
      return real(...a);
    };
  }
  store.release();
  await settle();
  store.release();
  await next.done;
  assert.equal(codeOf(next.outcome), "ok");
  assert.equal(events[0], "answered", events.join(", "));
  assert.ok(events.includes("kernel"), "premise: the next group programmed the kernel");
});

/** A MemoryStore that records the routes text each save was handed (StateStore.save). */
class TextStore extends MemoryStore {
  readonly texts: (string | undefined)[] = [];
  override save(config: Config, delta?: Delta, routesText?: Uint8Array): Promise<void> {
    this.texts.push(routesText && Buffer.from(routesText).toString());
    return super.save(config, delta);
  }
}

void test("an APPLY's routes text reaches the save only when that APPLY alone set every route", async () => {
  const links = new FakeLinks(["e0", "e1", "e2", "e3"]);
  const store = new TextStore();
  const engine = new Engine(new FakeKernel(links), links, store);
  const route = { source: "10.0.0.1", group: "239.7.0.1", iif: "e0", oifs: [{ ifname: "e1", ttl: 1 }] };
  const text = JSON.stringify(route);
  const apply = (family?: 4): Op => parseOp("APPLY", { ...(family ? { family } : {}), state: { vifs: [], routes: [route] } });
  await engine.transact([apply()], false, Buffer.from(text));
  // Of one family only: the other family's routes stay, so the text is not all of them.
  await engine.transact([add("239.7.0.2")], false);
  await engine.transact([apply(4)], false, Buffer.from(text));
  // With another change in the same save (group commit), or in the same BATCH.
  await Promise.all([engine.transact([apply()], false, Buffer.from(text)), engine.transact([add("239.7.0.3")], false)]);
  await engine.transact([apply(), add("239.7.0.4")], false, Buffer.from(text));
  assert.deepEqual(store.texts, [text, undefined, undefined, undefined, undefined]);
});
