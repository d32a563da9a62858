/**
 * SPEC §6.2, power loss: random transaction sequences run through the engine onto a
 * FileStateStore whose disk is a SimFs (POSIX durability rules: unsynced data may be lost or torn
 * at any byte or left as zeros, unsynced creations/renames/removals may be lost in order). After
 * every change the store makes to the disk, every file system a power loss at that instant may
 * leave is loaded by a fresh store: it must load (never "unusable") to the state before the
 * transaction or to the one it makes; once a transaction is acknowledged, every crash state must
 * load to exactly it. The anchor is SQLite's crash-test VFS.
 *
 * Default: a representative slice; MFC_EXHAUSTIVE=1 runs many more sequences.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { prng } from "../support/prng.js";
import { SimFs, type Files } from "../support/sim_fs.js";
import { EMPTY_TEXT, StoreWorld, loadText, randomTx } from "../support/store_world.js";

const EXHAUSTIVE = process.env.MFC_EXHAUSTIVE === "1";
const SEQUENCES = EXHAUSTIVE ? 120 : 10;
const TXS = EXHAUSTIVE ? 80 : 50;

async function check(states: Files[], allowed: Set<string>, where: string): Promise<number> {
  for (const files of states) {
    let text: string;
    try {
      text = await loadText(files);
    } catch (err) {
      const listing = [...files].map(([p, b]) => `${p} (${b.length} B): ${JSON.stringify(b.toString("utf8").slice(-200))}`).join("\n");
      assert.fail(`${where}: a crash state does not load: ${(err as Error).message}\n${listing}`);
    }
    assert.ok(allowed.has(text), `${where}: a crash state loads to a state that was never acknowledged nor in flight:\n${text}`);
  }
  return states.length;
}

void test(`power loss at every step of ${SEQUENCES} random sequences of ${TXS} transactions loads to an acknowledged state`, async (t) => {
  let statesChecked = 0;
  let changes = 0;
  let acknowledged = 0;
  let journalAppends = 0;
  let snapshots = 0;
  for (let seq = 0; seq < SEQUENCES; seq++) {
    const rnd = prng(0x5eed + seq);
    const sim = new SimFs();
    const w = new StoreWorld(sim);
    let before = EMPTY_TEXT;
    for (let i = 0; i < TXS; i++) {
      const ops = randomTx(rnd, w.engine.snapshot().config);
      const captured: Files[][] = [];
      const renames0 = sim.renames;
      sim.afterChange = () => {
        changes++;
        captured.push(sim.crashStates());
      };
      const outcome = await w.run(ops);
      sim.afterChange = undefined;
      const after = w.text();
      const where = `sequence ${seq} tx ${i} (${ops.map((o) => o.action).join("+")}, ${outcome})`;
      const allowed = new Set([before, after]);
      for (const states of captured) statesChecked += await check(states, allowed, where);
      // Acknowledged: durable now, whatever a power loss does next.
      statesChecked += await check(sim.crashStates(), new Set([after]), `${where}, after the acknowledgement`);
      if (outcome === "ok" && after !== before) {
        acknowledged++;
        if (sim.renames > renames0) snapshots++;
        else journalAppends++;
      }
      before = after;
    }
  }
  t.diagnostic(`${SEQUENCES} sequences, ${acknowledged} acknowledged transactions (${journalAppends} journal appends, ${snapshots} snapshots), ${changes} disk changes, ${statesChecked} crash states loaded, 0 inconsistent`);
  assert.ok(journalAppends > SEQUENCES * 5 && snapshots > SEQUENCES, "both kinds of save were exercised");
});
