/**
 * memoForTurn: one read per key while the promise continuations of one callback run (the answers of
 * one commit group), a fresh read in any later callback, wherever the first read was made.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { memoForTurn } from "../../src/daemon/turn_memo.js";

void test("a value is shared by the continuations of one callback and read again in the next", async () => {
  let reads = 0;
  let value = 1;
  const get = memoForTurn((key: string) => { reads++; return `${key}=${value}`; });
  await Promise.resolve(); // inside a promise continuation, as the engine's answers are
  assert.equal(get("a"), "a=1");
  value = 2;
  assert.equal(get("a"), "a=1", "same callback: the value read first");
  assert.equal(get("b"), "b=2");
  await Promise.resolve();
  assert.equal(get("a"), "a=1", "another continuation of the same callback (the next answer of the group)");
  assert.equal(reads, 2);
  await new Promise((r) => setImmediate(r));
  assert.equal(get("a"), "a=2", "a later callback reads again");
  assert.equal(reads, 3);
});

void test("a read made in a setImmediate callback (where requests start) is gone before the next callback", async () => {
  let value = 1;
  const get = memoForTurn((key: string) => `${key}=${value}`);
  await new Promise<void>((r) => setImmediate(() => { assert.equal(get("rp"), "rp=1"); r(); }));
  value = 0;
  await new Promise((r) => setTimeout(r, 0)); // the next iteration's timers
  assert.equal(get("rp"), "rp=0", "not the value read in the previous iteration's check phase");
});
