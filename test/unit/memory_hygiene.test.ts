/**
 * src/daemon/memory.ts: the full GC that hands memory back runs once a burst of large work pauses,
 * and a burst that never pauses postpones it by maxDelayMs at most (it used to be postponed for as
 * long as large SHOWs kept coming, each within the delay of the one before).
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { MemoryHygiene } from "../../src/daemon/memory.js";

function rig(t: TestContext): { hygiene: MemoryHygiene; releases: number[]; advance: (ms: number) => void } {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  let now = 0;
  const releases: number[] = [];
  const hygiene = new MemoryHygiene(2_000, 10_000, () => releases.push(now), () => now);
  return {
    hygiene, releases,
    advance: (ms) => {
      for (let i = 0; i < ms; i += 100) {
        now += 100;
        t.mock.timers.tick(100);
      }
    },
  };
}

void test("one GC, 2 s after the last of a burst that pauses", (t) => {
  const { hygiene, releases, advance } = rig(t);
  hygiene.largeWorkDone();
  advance(1_000);
  hygiene.largeWorkDone();
  advance(1_900);
  assert.deepEqual(releases, []);
  advance(200);
  assert.deepEqual(releases, [3_000]);
  advance(10_000);
  assert.deepEqual(releases, [3_000], "once");
  hygiene.stop();
});

void test("a burst that never pauses gets its GC 10 s after it began, and the next one 10 s later", (t) => {
  const { hygiene, releases, advance } = rig(t);
  for (let s = 0; s < 25; s++) {
    hygiene.largeWorkDone();
    advance(1_000);
  }
  assert.deepEqual(releases, [10_000, 20_000]);
  hygiene.stop();
  advance(5_000);
  assert.deepEqual(releases, [10_000, 20_000], "stop() cancels the pending one");
});
