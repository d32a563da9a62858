/** memoForTurn: one read per key per event-loop turn, a fresh read in the next turn. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { memoForTurn } from "../../src/daemon/turn_memo.js";

void test("a value is read once per turn and read again in the next turn", async () => {
  let reads = 0;
  let value = 1;
  const get = memoForTurn((key: string) => { reads++; return `${key}=${value}`; });
  assert.equal(get("a"), "a=1");
  value = 2;
  assert.equal(get("a"), "a=1", "same turn: the value read first");
  assert.equal(get("b"), "b=2");
  assert.equal(reads, 2);
  await Promise.resolve();
  assert.equal(get("a"), "a=1", "a microtask is still the same turn (the answers of one commit group)");
  await new Promise((r) => setImmediate(r));
  assert.equal(get("a"), "a=2", "next turn: read again");
  assert.equal(reads, 3);
});
