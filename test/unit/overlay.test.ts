/**
 * OverlayMap (model/overlay.ts) against a plain Map given the same operations: whichever way it
 * iterates (its changes alone after clear(), its base alone when nothing changed, or the two
 * merged), it shows exactly the entries the Map holds.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { OverlayMap } from "../../src/model/overlay.js";

type Op = { kind: "set" | "add"; key: number; value: string } | { kind: "delete"; key: number } | { kind: "clear" };

const key = fc.integer({ min: 0, max: 7 });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("set" as const), key, value: fc.string({ maxLength: 2 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("add" as const), key, value: fc.string({ maxLength: 2 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("delete" as const), key }) },
  { weight: 1, arbitrary: fc.constant({ kind: "clear" as const }) },
);

const sorted = <T>(xs: Iterable<T>): T[] => [...xs].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

function check(overlay: OverlayMap<number, string>, model: Map<number, string>): void {
  assert.equal(overlay.size, model.size);
  assert.deepEqual(sorted(overlay.entries()), sorted(model.entries()));
  assert.deepEqual(sorted(overlay.keys()), sorted(model.keys()));
  assert.deepEqual(sorted(overlay.values()), sorted(model.values()));
  assert.deepEqual(sorted(overlay), sorted(model));
  const seen: [number, string][] = [];
  overlay.forEach((v, k) => seen.push([k, v]));
  assert.deepEqual(sorted(seen), sorted(model.entries()));
  // Each entry once: the merged walk must not show a base entry the changes replaced.
  assert.equal(new Set(overlay.keys()).size, model.size);
}

void describe("OverlayMap", () => {
  void test("iterates exactly what a Map given the same operations holds", () => {
    fc.assert(fc.property(fc.array(fc.tuple(key, fc.string({ maxLength: 2 })), { maxLength: 6 }), fc.array(op, { maxLength: 12 }), (baseEntries, ops) => {
      const base = new Map(baseEntries);
      const overlay = new OverlayMap<number, string>(base);
      const model = new Map(base);
      check(overlay, model);
      for (const o of ops) {
        if (o.kind === "set") { overlay.set(o.key, o.value); model.set(o.key, o.value); }
        else if (o.kind === "add") {
          // set() for a key not held; a held one keeps its value.
          const absent = !model.has(o.key);
          assert.equal(overlay.add(o.key, o.value), absent);
          if (absent) model.set(o.key, o.value);
        }
        else if (o.kind === "delete") assert.equal(overlay.delete(o.key), model.delete(o.key));
        else { overlay.clear(); model.clear(); }
        check(overlay, model);
      }
      // The base is left alone until mergeInto, which makes it the model.
      assert.deepEqual(sorted(base), sorted(baseEntries.reduce((m, [k, v]) => m.set(k, v), new Map<number, string>())));
      overlay.mergeInto(base);
      assert.deepEqual(sorted(base), sorted(model));
    }), { numRuns: 2000 });
  });

  void test("with nothing to merge it iterates with the Map's own iterators, no generator", () => {
    const mapIterator = Object.getPrototypeOf(new Map().values()) as object;
    const overlay = new OverlayMap(new Map([[1, "a"]]));
    assert.equal(Object.getPrototypeOf(overlay.values()), mapIterator, "no change: the base's");
    overlay.clear();
    overlay.set(2, "b");
    for (const it of [overlay.entries(), overlay.keys(), overlay.values()]) assert.equal(Object.getPrototypeOf(it), mapIterator, "after clear(): the changes'");
    overlay.delete(2);
    assert.notEqual(Object.getPrototypeOf(overlay.values()), mapIterator, "a deletion to hide: merged");
  });

  void test("a cleared overlay whose last change is a delete hides the deleted key", () => {
    const overlay = new OverlayMap(new Map([[1, "a"]]));
    overlay.clear();
    overlay.set(2, "b");
    overlay.set(3, "c");
    overlay.delete(3);
    assert.deepEqual([...overlay.values()], ["b"]);
    assert.deepEqual([...overlay.keys()], [2]);
  });
});

void test("takeMap: the content as a map of the caller's own, whatever the overlay held; the overlay keeps nothing of it", () => {
  const base = new Map([["a", 1], ["b", 2], ["c", 3]]);
  const cases: [string, (o: OverlayMap<string, number>) => void, [string, number][]][] = [
    ["nothing changed", () => undefined, [["a", 1], ["b", 2], ["c", 3]]],
    ["changes over the base", (o) => { o.set("b", 20); o.delete("c"); o.set("d", 4); }, [["a", 1], ["b", 20], ["d", 4]]],
    ["cleared, then set (an APPLY)", (o) => { o.clear(); o.set("x", 9); o.set("y", 8); }, [["x", 9], ["y", 8]]],
    ["cleared, then set and deleted", (o) => { o.clear(); o.set("x", 9); o.set("y", 8); o.delete("x"); }, [["y", 8]]],
  ];
  for (const [what, edit, expected] of cases) {
    const o = new OverlayMap(base);
    edit(o);
    const taken = o.takeMap();
    assert.deepEqual([...taken].sort(), expected, what);
    o.set("later", 7);
    o.delete("y");
    assert.deepEqual([...taken].sort(), expected, `${what}: later writes to the overlay do not reach the map taken`);
    assert.notEqual(taken, base, `${what}: never the base itself`);
    assert.deepEqual([...base], [["a", 1], ["b", 2], ["c", 3]], `${what}: the base is untouched`);
  }
});
