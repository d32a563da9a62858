/**
 * Joins (SPEC §7) are state like routes: all-or-nothing transactions (a refused membership or a
 * failed save leaves kernel, memory and file as before), durable (snapshot and journal, restored
 * at start), best effort at restore (a join the kernel refuses waits with the errno, the rest is
 * installed), pending while the interface is missing and joined again on its new index.
 * FakeKernel here; the real kernel in test/e2e/joins.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Engine } from "../../src/engine/engine.js";
import { parseOp, type Op } from "../../src/protocol/schema.js";
import { FileStateStore } from "../../src/state/store.js";
import { buildShowView } from "../../src/view/model.js";
import { FakeKernel, FakeLinks } from "../support/fake_kernel.js";
import { MemoryStore, configText } from "../support/memory_store.js";
import { code } from "../support/outcome.js";
import { SimFs } from "../support/sim_fs.js";
import { STATE } from "../support/store_world.js";

const join = (ifname: string, group: string, source: string | null = null): Op => parseOp("JOIN", { ifname, group, source });
const leave = (ifname: string, group: string, source: string | null = null): Op => parseOp("LEAVE", { ifname, group, source });
const add = (group: string): Op => parseOp("ADD_MFC", { source: "10.0.0.1", group, iif: "e0", oifs: ["e1"] });

function world(store = new MemoryStore()): { links: FakeLinks; kernel: FakeKernel; store: MemoryStore; engine: Engine } {
  const links = new FakeLinks(["e0", "e1", "e2"]);
  const kernel = new FakeKernel(links);
  return { links, kernel, store, engine: new Engine(kernel, links, store) };
}

const held = (k: FakeKernel): string[] => [...k.memberships].sort();
const noCounters = { sgCounters: () => undefined, vifCounters: () => undefined };
const joinStates = (e: Engine): string[] => {
  const { config, image } = e.snapshot();
  return (buildShowView(config, image, noCounters, "joins").joins ?? []).map((j) => `${j.ifname} ${j.source ?? "*"},${j.group} ${j.state}${j.reason ? ` (${j.reason})` : ""}`);
};

void test("join and leave: any-source and source-specific, by interface index; errors change nothing; a dry run touches nothing", async () => {
  const { links, kernel, engine, store } = world();
  const e0 = links.indexOf("e0") as number;
  assert.equal(await code(engine.transact([join("e0", "239.1.1.1")], true)), "ok");
  assert.deepEqual(held(kernel), [], "a dry run joins nothing");
  assert.equal(store.attempts, 0);
  assert.deepEqual((await engine.transact([join("e0", "239.1.1.1"), join("e0", "232.1.1.1", "10.9.9.9")], false)).changes.map((c) => c.action), ["join", "join"]);
  assert.deepEqual(held(kernel), [`${e0}/232.1.1.1/10.9.9.9`, `${e0}/239.1.1.1/*`]);
  assert.equal(await code(engine.transact([join("e0", "239.1.1.1")], false)), "E_JOIN_EXISTS");
  assert.equal(await code(engine.transact([leave("e1", "239.1.1.1")], false)), "E_JOIN_NOT_FOUND");
  assert.equal(await code(engine.transact([join("nope0", "239.1.1.1")], false)), "E_IF_NOT_FOUND");
  assert.equal(await code(Promise.resolve().then(() => join("e0", "224.0.0.5"))), "E_INVALID_ADDRESS", "link-local groups are refused like for routes");
  await engine.transact([leave("e0", "239.1.1.1")], false);
  assert.deepEqual(held(kernel), [`${e0}/232.1.1.1/10.9.9.9`]);
  assert.equal(configText(store.last), configText(engine.snapshot().config));
  assert.deepEqual(store.deltaViolations, []);
});

void test("a join the kernel refuses fails the whole transaction; a failed save leaves the group again", async () => {
  const { links, kernel, engine, store } = world();
  await engine.transact([add("239.5.5.5"), join("e1", "239.2.2.2")], false);
  const before = { kernel: JSON.stringify(kernel.dump()), held: held(kernel), memory: configText(engine.snapshot().config), file: configText(store.last) };
  // Batch: a route, then two joins; the second join is refused (ENOBUFS, as past a socket cap).
  kernel.resetCalls();
  kernel.failAt({ at: 3, errno: "ENOBUFS" });
  const batch = [add("239.6.6.6"), join("e0", "239.3.3.3"), join("e2", "239.4.4.4")];
  assert.equal(await code(engine.transact(batch, false)), "E_KERNEL");
  kernel.clearFaults();
  assert.deepEqual({ kernel: JSON.stringify(kernel.dump()), held: held(kernel), memory: configText(engine.snapshot().config), file: configText(store.last) }, before);
  store.failSaves(1);
  assert.equal(await code(engine.transact(batch, false)), "E_STATE_WRITE");
  assert.deepEqual({ kernel: JSON.stringify(kernel.dump()), held: held(kernel), memory: configText(engine.snapshot().config), file: configText(store.last) }, before);
  await engine.transact(batch, false);
  assert.equal(held(kernel).length, 3);
  assert.ok(held(kernel).includes(`${links.indexOf("e2") as number}/239.4.4.4/*`));
});

void test("joins survive a restart: snapshot and journal records (join and leave), restored before serving", async () => {
  const sim = new SimFs();
  const links = new FakeLinks(["e0", "e1", "e2"]);
  let kernel = new FakeKernel(links);
  let engine = new Engine(kernel, links, new FileStateStore(STATE, sim));
  // A big enough snapshot first, so that what follows goes to the journal.
  await engine.transact(Array.from({ length: 30 }, (_, i) => add(`239.0.0.${i + 1}`)), false);
  await engine.transact([join("e0", "239.1.1.1")], false);
  await engine.transact([join("e1", "232.1.1.1", "10.0.0.9")], false);
  await engine.transact([leave("e0", "239.1.1.1")], false);
  await engine.transact([join("e2", "239.7.7.7")], false);
  const journal = sim.files().get(`${STATE}.journal`)?.toString("utf8") ?? "";
  assert.match(journal, /"joins_set":\[\{"ifname":"e1","group":"232.1.1.1","source":"10.0.0.9"\}\]/);
  assert.match(journal, /"joins_del":\[\{"ifname":"e0","group":"239.1.1.1","source":null\}\]/);
  const want = configText(engine.snapshot().config);
  const wantHeld = held(kernel);
  kernel.close();
  kernel = new FakeKernel(links);
  engine = new Engine(kernel, links, new FileStateStore(STATE, sim));
  await engine.restore();
  assert.equal(configText(engine.snapshot().config), want);
  assert.deepEqual(held(kernel), wantHeld, "every join is held again after the restore");
  // A FLUSH (snapshot) drops them, and a restart then holds none.
  await engine.transact([parseOp("FLUSH", {})], false);
  assert.deepEqual(held(kernel), []);
  const k2 = new FakeKernel(links);
  const e2 = new Engine(k2, links, new FileStateStore(STATE, sim));
  await e2.restore();
  assert.deepEqual(held(k2), []);
});

void test("a join waits while its interface is missing and is joined again on the new index when it returns", async () => {
  const { links, kernel, engine } = world();
  await engine.transact([join("e2", "239.1.1.1"), join("e2", "232.2.2.2", "10.1.1.1")], false);
  const old = links.indexOf("e2") as number;
  links.remove("e2");
  kernel.dropVifOfIfindex(old);
  await engine.reconcile();
  assert.deepEqual(joinStates(engine), ["e2 10.1.1.1,232.2.2.2 pending (interface missing)", "e2 *,239.1.1.1 pending (interface missing)"]);
  assert.deepEqual(held(kernel), []);
  const now = links.add("e2");
  assert.notEqual(now, old);
  assert.ok(engine.retryWanted(), "a waiting join whose interface is back asks for a retry");
  await engine.reconcile();
  assert.deepEqual(held(kernel), [`${now}/232.2.2.2/10.1.1.1`, `${now}/239.1.1.1/*`]);
  assert.deepEqual(joinStates(engine), ["e2 10.1.1.1,232.2.2.2 installed", "e2 *,239.1.1.1 installed"]);
});

void test("restore never refuses a join: one the kernel refuses waits with the errno, the rest is held, a reconcile retries it", async () => {
  const store = new MemoryStore();
  const first = world(store);
  await first.engine.transact([join("e0", "239.1.1.1"), join("e1", "239.2.2.2"), add("239.3.3.3")], false);
  const links = first.links;
  const kernel = new FakeKernel(links);
  const engine = new Engine(kernel, links, store);
  // Restore: VIF e0, VIF e1, the route, then the joins (sorted as the config holds them): refuse the first join.
  kernel.failAt({ at: 4, errno: "ENOBUFS" });
  await engine.restore();
  kernel.clearFaults();
  assert.deepEqual(joinStates(engine), ["e0 *,239.1.1.1 pending (kernel refused join: ENOBUFS)", "e1 *,239.2.2.2 installed"]);
  assert.equal(kernel.dump().mfcs.length, 1, "the route is installed all the same");
  assert.ok(engine.retryWanted());
  // A transaction that leaves the join alone keeps it waiting (reconcile, not the transaction, retries).
  assert.equal(await code(engine.transact([add("239.9.9.9")], false)), "ok");
  assert.match(joinStates(engine)[0] ?? "", /pending \(kernel refused/);
  await engine.reconcile();
  assert.deepEqual(joinStates(engine), ["e0 *,239.1.1.1 installed", "e1 *,239.2.2.2 installed"]);
  assert.equal(held(kernel).length, 2);
});

void test("APPLY is declarative for joins too: listed ones are joined, others left; show -j's joins apply as they are", async () => {
  const { engine, kernel } = world();
  await engine.transact([join("e0", "239.1.1.1"), join("e1", "239.2.2.2")], false);
  const { config, image } = engine.snapshot();
  const shown = JSON.parse(JSON.stringify(buildShowView(config, image, noCounters, "all"))) as Record<string, unknown>;
  const same = parseOp("APPLY", { state: shown });
  assert.deepEqual((await engine.transact([same], false)).changes, [], "applying show -j changes nothing");
  const apply = parseOp("APPLY", { state: { routes: [], joins: [{ ifname: "e1", group: "239.2.2.2", source: null }, { ifname: "e2", group: "239.8.8.8", source: null }] } });
  const changes = (await engine.transact([apply], true)).changes.map((c) => `${String(c.action)} ${String(c.ifname)} ${String(c.group)}`);
  assert.deepEqual(changes, ["leave e0 239.1.1.1", "join e2 239.8.8.8"]);
  await engine.transact([apply], false);
  assert.equal(held(kernel).length, 2);
  assert.equal(await code(engine.transact([parseOp("APPLY", { state: { routes: [] } })], false)), "ok");
  assert.deepEqual(held(kernel), [], "an APPLY without joins leaves them all");
});

void test("a join on a device that vanished is no step of an unrelated transaction (no leave to undo, no flush when it fails)", async () => {
  const links = new FakeLinks(["e0", "e1", "e2"]);
  const kernel = new FakeKernel(links);
  const store = new MemoryStore();
  const logs: string[] = [];
  const engine = new Engine(kernel, links, store, (_p, m) => logs.push(m));
  await engine.transact([add("239.1.1.1"), join("e2", "239.5.5.5")], false);
  const gone = links.indexOf("e2") as number;
  links.remove("e2");
  kernel.dropVifOfIfindex(gone);
  // No reconcile yet (the daemon waits ~50 ms for link events to settle): a transaction comes first.
  assert.deepEqual((await engine.transact([add("239.1.1.2")], true)).changes.map((c) => c.action), ["add_mfc"]);
  store.failSaves(1);
  assert.equal(await code(engine.transact([add("239.1.1.2")], false)), "E_STATE_WRITE");
  assert.ok(!logs.some((l) => l.includes("flushing the multicast table")), "the failed save flushed the table");
  assert.equal(engine.degraded, undefined);
  await engine.reconcile(); // what the link event brings a moment later
  assert.deepEqual(joinStates(engine), ["e2 *,239.5.5.5 pending (interface missing)"]);
  links.add("e2");
  await engine.reconcile();
  assert.deepEqual(joinStates(engine), ["e2 *,239.5.5.5 installed"]);
});
