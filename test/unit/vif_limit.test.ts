/**
 * E_VIF_LIMIT's details (docs/error-codes.md): `needed` is the number of interfaces the
 * configuration would name after the change, present or missing (what admission counts), and
 * `limit` is 32 — through both of the engine's plans (routes only: incremental; VIFs: full).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Engine } from "../../src/engine/engine.js";
import { MfcError } from "../../src/errors/codes.js";
import { parseOp, type Op } from "../../src/protocol/schema.js";
import { FakeKernel, FakeLinks } from "../support/fake_kernel.js";
import { MemoryStore } from "../support/memory_store.js";

const names = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => `e${from + i}`);
const add = (group: string, iif: string, oifs: string[]): Op =>
  parseOp("ADD_MFC", { source: "10.0.0.1", group, iif, oifs: oifs.map((ifname) => ({ ifname, ttl: 1 })) });

async function refused(engine: Engine, ops: Op[]): Promise<MfcError> {
  try {
    await engine.transact(ops, false);
  } catch (err) {
    assert.ok(err instanceof MfcError, String(err));
    assert.equal(err.code, "E_VIF_LIMIT");
    return err;
  }
  assert.fail("the change was accepted");
}

/** 31 interfaces named: e0 -> e1..e29, and a pinned e30; e29 is missing now (it still counts). */
async function world(): Promise<{ engine: Engine; links: FakeLinks }> {
  const links = new FakeLinks(names(0, 40));
  const engine = new Engine(new FakeKernel(links), links, new MemoryStore());
  await engine.transact([add("239.1.1.1", "e0", names(1, 30)), parseOp("ADD_VIF", { ifname: "e30", threshold: 1 })], false);
  links.remove("e29");
  return { engine, links };
}

void test("needed counts the interfaces the change would name: 31 + 2 new = 33 (routes-only change)", async () => {
  const { engine } = await world();
  const err = await refused(engine, [add("239.1.1.2", "e0", ["e31", "e32"])]);
  assert.deepEqual(err.details, { needed: 33, limit: 32 });
});

void test("needed after a change that also pins a VIF (full plan): 31 + 3 new = 34", async () => {
  const { engine } = await world();
  const err = await refused(engine, [add("239.1.1.2", "e1", ["e31", "e32"]), parseOp("ADD_VIF", { ifname: "e33", threshold: 1 })]);
  assert.deepEqual(err.details, { needed: 34, limit: 32 });
});

void test("interfaces the change stops naming are not counted (one transaction: 31 - 2 + 4 = 33)", async () => {
  const { engine } = await world();
  const err = await refused(engine, [
    parseOp("DEL_MFC", { source: "10.0.0.1", group: "239.1.1.1" }), // e0..e29 (e29 missing)
    add("239.1.1.3", "e0", [...names(1, 28), "e31", "e32", "e33", "e34"]), // e0..e27, e31..e34
  ]);
  // Named after the change: e0..e27 (28), e30 (pinned), e31..e34 (4) = 33; e28 and e29 dropped out.
  assert.deepEqual(err.details, { needed: 33, limit: 32 });
  assert.match(err.message, /more than 32 VIFs/);
});
