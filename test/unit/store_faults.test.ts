/**
 * SPEC §6.2 under failing file-system calls: the fault matrix of the store. For every kind of save
 * (first snapshot, journal append creating the journal, journal append, fold into a snapshot,
 * APPLY, FLUSH), every call the save makes (open, write, short write, fsync, fdatasync, truncate,
 * close, rename, directory fsync, unlink) fails at its n-th occurrence, once and for good. The
 * transaction must be acknowledged or refused (E_STATE_WRITE) as a whole; then later transactions
 * run (still failing for good, then healed). After every step: the engine's memory, a reload of
 * the files, and every state a power loss could leave equal the acknowledged history, and the
 * kernel equals the engine's image.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseOp, type Op } from "../../src/protocol/schema.js";
import { FileStateStore } from "../../src/state/store.js";
import { CALLS, FaultyFs } from "../support/fault_fs.js";
import { prng } from "../support/prng.js";
import { SimFs } from "../support/sim_fs.js";
import { StoreWorld, kernelMatchesImage, loadText, randomTx } from "../support/store_world.js";

const route = (i: number, iif = "e0", oifs = ["e1", "e2"]): Record<string, unknown> =>
  ({ source: `10.0.0.${1 + (i % 200)}`, group: `239.1.${Math.floor(i / 200)}.${1 + (i % 200)}`, iif, oifs });
const add = (i: number): Op => parseOp("ADD_MFC", route(i));
const applyOf = (n: number, from = 0): Op => parseOp("APPLY", { state: { vifs: [{ ifname: "e3", threshold: 4 }], routes: Array.from({ length: n }, (_, i) => route(from + i)) } });

interface Kind { name: string; setup: Op[][]; tx: Op[] }

/** The index of the first single add, after `base`, that makes the store write a snapshot again. */
async function foldPoint(base: Op[][]): Promise<number> {
  const sim = new SimFs();
  const w = new StoreWorld(sim);
  for (const ops of base) await w.run(ops);
  for (let i = 1000; ; i++) {
    const r = sim.renames;
    await w.run([add(i)]);
    if (sim.renames > r) return i;
  }
}

async function kinds(): Promise<Kind[]> {
  const big = [[applyOf(25)]];
  const fold = await foldPoint(big);
  return [
    { name: "first snapshot", setup: [], tx: [add(1)] },
    { name: "snapshot of a small table", setup: [[add(1)], [add(2)]], tx: [add(3)] },
    { name: "journal append that creates the journal", setup: big, tx: [add(900)] },
    { name: "journal append", setup: [...big, [add(900)], [add(901)]], tx: [add(902)] },
    { name: "fold of the journal into a snapshot", setup: [...big, ...Array.from({ length: fold - 1000 }, (_, k) => [add(1000 + k)])], tx: [add(fold)] },
    { name: "journal append after a fold (stale records cut first)", setup: [...big, ...Array.from({ length: fold - 999 }, (_, k) => [add(1000 + k)])], tx: [add(fold + 1)] },
    { name: "APPLY", setup: [...big, [add(900)]], tx: [applyOf(20, 10)] },
    { name: "FLUSH", setup: [...big, [add(900)]], tx: [parseOp("FLUSH", {})] },
  ];
}

async function world(setup: Op[][]): Promise<{ w: StoreWorld; sim: SimFs; fs: FaultyFs }> {
  const sim = new SimFs();
  const fs = new FaultyFs(sim);
  const w = new StoreWorld(fs);
  for (const ops of setup) assert.equal(await w.run(ops), "ok", "set-up transaction");
  fs.counts.clear();
  return { w, sim, fs };
}

async function assertConsistent(w: StoreWorld, sim: SimFs, acknowledged: string, where: string, crash: boolean): Promise<number> {
  assert.equal(w.text(), acknowledged, `${where}: memory != acknowledged`);
  assert.ok(kernelMatchesImage(w), `${where}: kernel != image`);
  assert.equal(await loadText(sim.files()), acknowledged, `${where}: reload != acknowledged`);
  if (!crash) return 1;
  const states = sim.crashStates();
  for (const files of states) assert.equal(await loadText(files), acknowledged, `${where}: a crash state != acknowledged`);
  return 1 + states.length;
}

void describe("state store fault matrix (every call of every kind of save, once and for good)", async () => {
  let combos = 0;
  let refused = 0;
  let checks = 0;
  for (const kind of await kinds()) {
    await test(kind.name, async () => {
      const base = await world(kind.setup);
      const before = base.w.text();
      assert.equal(await base.w.run(kind.tx), "ok");
      const after = base.w.text();
      assert.notEqual(after, before, "the transaction changes something");
      const counts = new Map(base.fs.counts);
      assert.ok((counts.get("fdatasync") ?? 0) + (counts.get("fsync") ?? 0) > 0, "the save syncs");
      for (const call of CALLS) {
        for (let nth = 1; nth <= (counts.get(call) ?? 0); nth++) {
          for (const forGood of [false, true]) {
            const where = `${kind.name}: ${call} #${nth} fails ${forGood ? "for good" : "once"}`;
            const { w, sim, fs } = await world(kind.setup);
            fs.fault = { call: call, nth, forGood, errno: nth % 2 ? "EIO" : "ENOSPC" };
            const outcome = await w.run(kind.tx);
            combos++;
            assert.ok(outcome === "ok" || outcome === "E_STATE_WRITE", `${where}: ${outcome}`);
            if (call !== "short_write" || forGood) assert.ok(fs.injected > 0, `${where}: the fault was reached`);
            if (outcome !== "ok") refused++;
            let acknowledged = outcome === "ok" ? after : before;
            checks += await assertConsistent(w, sim, acknowledged, where, false);
            // Later transactions, the fault still armed (for good) or spent (once).
            const rnd = prng(nth * 31 + (forGood ? 7 : 0));
            for (let i = 0; i < 3; i++) {
              const out = await w.run(randomTx(rnd, w.engine.snapshot().config));
              if (out === "ok") acknowledged = w.text();
              checks += await assertConsistent(w, sim, acknowledged, `${where}, later tx ${i} (${out})`, false);
            }
            // Healed: the repair the daemon retries runs, then more changes; now power loss too.
            fs.fault = undefined;
            assert.equal(await w.engine.repairState(), true, `${where}: repair`);
            assert.equal(w.store.needsRepair, false);
            for (let i = 0; i < 2; i++) {
              assert.equal(await w.run([add(5000 + i)]), "ok", `${where}: healed tx ${i}`);
              acknowledged = w.text();
            }
            checks += await assertConsistent(w, sim, acknowledged, `${where}, healed`, true);
          }
        }
      }
    });
  }
  await test("figures", (t) => {
    t.diagnostic(`${combos} fault points x save kinds tried (${refused} refused with E_STATE_WRITE), ${checks} consistency checks incl. crash states, 0 inconsistent`);
    assert.ok(combos >= 80, "the matrix covers every call of every kind of save");
  });
});

void test("a temp file left by a crash that cannot be removed does not stop the start: it is reported, the others go", async () => {
  const sim = new SimFs(new Map([["/state/.state.json.123.tmp", Buffer.from("{")], ["/state/.state.json.456.tmp", Buffer.from("{")], ["/state/other.tmp", Buffer.from("x")]]));
  const fs = new FaultyFs(sim);
  fs.fault = { call: "unlink", nth: 1, forGood: false, errno: "EIO" };
  const store = new FileStateStore("/state/state.json", fs);
  const removed = await store.removeLeftovers();
  assert.equal(removed.length, 1);
  assert.equal(store.notes.length, 1);
  assert.match(store.notes[0] ?? "", /could not remove \.state\.json\.\d+\.tmp.*EIO/);
  assert.deepEqual([...sim.files().keys()].filter((p) => !p.endsWith("other.tmp")).length, 1, "one temp file left, the one that failed");
  assert.ok(sim.files().has("/state/other.tmp"), "files that are not ours are left alone");
});
