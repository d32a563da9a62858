/**
 * Runs of MFC adds go to the kernel in batches (engine/apply.ts, KernelPort.addMfcs), whose entries
 * all run even when one is refused. The engine must still see the steps one by one: the refusal at
 * its own step, the later entries that took effect undone with the rest in a transaction
 * (applySteps), and counted as installed where nothing is undone (runUntilRefused, converge).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { StepFailed, applySteps, runUntilRefused } from "../../src/engine/apply.js";
import { converge } from "../../src/engine/converge.js";
import { Engine } from "../../src/engine/engine.js";
import { emptyImage } from "../../src/engine/image.js";
import { planSteps, type Step } from "../../src/engine/plan.js";
import { realize } from "../../src/engine/realize.js";
import { emptyConfig, routeKey, type Config, type Route } from "../../src/model/types.js";
import { parseOp } from "../../src/protocol/schema.js";
import { FakeKernel, FakeLinks } from "../support/fake_kernel.js";
import { MemoryStore } from "../support/memory_store.js";

const GROUPS = ["239.1.0.1", "239.1.0.2", "239.1.0.3", "239.1.0.4", "239.1.0.5"];

function world(): { config: Config; links: FakeLinks; kernel: FakeKernel; steps: Step[]; vifs: ReturnType<typeof realize>["vifs"] } {
  const links = new FakeLinks(["e0", "e1", "e2"]);
  const config = emptyConfig();
  GROUPS.forEach((group, i) => {
    const r: Route = { source: "10.0.0.1", group, iif: i % 2 ? "e1" : "e0", oifs: [{ ifname: "e2", ttl: 1 + i }] };
    config.routes.set(routeKey(r.source, r.group), r);
  });
  const target = realize(config, emptyImage(), links);
  return { config, links, kernel: new FakeKernel(links), steps: planSteps(emptyImage(), target), vifs: target.vifs };
}

const installed = (k: FakeKernel): string[] => [...k.mfcs.keys()].map((key) => key.split(",")[1] as string).sort();
const vifSteps = (steps: Step[]): number => steps.filter((s) => s.op === "add_vif").length;

void describe("MFC adds in batches", () => {
  void test("the steps are VIFs first, then one run of adds (what the batch takes)", () => {
    const { steps } = world();
    assert.deepEqual(steps.map((s) => s.op), ["add_vif", "add_vif", "add_vif", ...GROUPS.map(() => "add_mfc")]);
  });

  void test("runUntilRefused: the refusal at its own step; the later adds of the batch in alsoDone, and in the kernel", () => {
    const { kernel, steps, vifs } = world();
    const third = vifSteps(steps) + 3; // the third add, counting calls from the first VIF
    kernel.failAt({ at: third, errno: "ENOBUFS" });
    const refused = runUntilRefused(kernel, steps, undefined, vifs);
    assert.ok(refused);
    assert.equal(refused.index, vifSteps(steps) + 2);
    assert.equal(refused.err.errnoName, "ENOBUFS");
    assert.deepEqual(refused.alsoDone.map((s) => (s.op === "add_mfc" ? s.entry.group : s.op)), [GROUPS[3], GROUPS[4]]);
    assert.deepEqual(installed(kernel), [GROUPS[0], GROUPS[1], GROUPS[3], GROUPS[4]]);
  });

  void test("without the plan's VIFs the adds run one by one and stop at the refusal", () => {
    const { kernel, steps } = world();
    kernel.failAt({ at: vifSteps(steps) + 3, errno: "ENOBUFS" });
    const refused = runUntilRefused(kernel, steps);
    assert.deepEqual(refused?.alsoDone, []);
    assert.deepEqual(installed(kernel), [GROUPS[0], GROUPS[1]]);
    assert.equal(kernel.calls, vifSteps(steps) + 3);
  });

  void test("applySteps: a refusal inside a batch undoes every entry the batch added, and names its step", () => {
    const { kernel, steps, vifs } = world();
    kernel.failAt({ at: vifSteps(steps) + 3, errno: "ENOBUFS" });
    assert.throws(() => applySteps(kernel, steps, vifs), (err: unknown) => {
      assert.ok(err instanceof StepFailed);
      assert.equal(err.index, vifSteps(steps) + 2);
      assert.deepEqual(err.undoFailures, []);
      return true;
    });
    assert.deepEqual(installed(kernel), []);
    assert.equal(kernel.vifs.size, 0);
  });

  void test("converge: the refused route waits, the image holds exactly what the kernel holds", () => {
    const { config, links, kernel, steps } = world();
    kernel.failAt({ at: vifSteps(steps) + 3, errno: "ENOBUFS" });
    const c = converge(kernel, config, emptyImage(), links);
    assert.deepEqual([...c.refused.routes.keys()], [routeKey("10.0.0.1", GROUPS[2] as string)]);
    assert.deepEqual([...c.image.mfcs.values()].map((m) => m.group).sort(), installed(kernel));
    assert.deepEqual(installed(kernel), [GROUPS[0], GROUPS[1], GROUPS[3], GROUPS[4]]);
    assert.deepEqual(c.problems, []);
  });

  void test("each entry of a batch names the device of its parent VIF", () => {
    const { kernel, steps, vifs } = world();
    const seen: [number, number][] = [];
    const addMfcs = kernel.addMfcs.bind(kernel);
    kernel.addMfcs = (entries) => {
      for (const e of entries) seen.push([e.parent, e.iifIndex]);
      return addMfcs(entries);
    };
    assert.equal(runUntilRefused(kernel, steps, undefined, vifs), undefined);
    const deviceOf = new Map([...vifs.values()].map((v) => [v.vifi, v.ifindex]));
    assert.equal(seen.length, GROUPS.length);
    for (const [parent, iifIndex] of seen) assert.equal(iifIndex, deviceOf.get(parent));
  });

  void test("the engine sends a restore's and a transaction's adds in batches, one entry at a time only for a single add", async () => {
    const { config, links, kernel } = world();
    const batches: number[] = [];
    const addMfcs = kernel.addMfcs.bind(kernel);
    kernel.addMfcs = (entries) => {
      batches.push(entries.length);
      return addMfcs(entries);
    };
    const engine = new Engine(kernel, links, new MemoryStore(undefined, config));
    await engine.restore();
    assert.deepEqual(batches, [GROUPS.length], "restore");
    const routes = ["239.2.0.1", "239.2.0.2", "239.2.0.3"].map((group) => ({ group, iif: "e0", oifs: ["e2"] }));
    await engine.transact(routes.map((r) => parseOp("ADD_MFC", r)), false);
    assert.deepEqual(batches, [GROUPS.length, 3], "a transaction of three adds");
    await engine.transact([parseOp("ADD_MFC", { group: "239.3.0.1", iif: "e0", oifs: ["e2"] })], false);
    assert.deepEqual(batches, [GROUPS.length, 3], "a single add goes on its own");
    assert.equal(kernel.mfcs.size, GROUPS.length + 4);
  });

  void test("a batch never holds one entry twice: the run ends where a key comes again (the fallback may reorder a batch)", () => {
    const { kernel, steps, vifs } = world();
    const adds = steps.filter((st) => st.op === "add_mfc");
    const again = adds.map((st): Step => (st.op === "add_mfc" ? { op: "replace_mfc", entry: { ...st.entry, ttls: [0, 0, 9] }, previous: st.entry } : st));
    const batches: string[][] = [];
    const addMfcs = kernel.addMfcs.bind(kernel);
    kernel.addMfcs = (entries) => {
      batches.push(entries.map((e) => e.group));
      return addMfcs(entries);
    };
    assert.equal(runUntilRefused(kernel, [...steps, ...again], undefined, vifs), undefined);
    for (const b of batches) assert.equal(new Set(b).size, b.length, `a batch with a key twice: ${b.join(" ")}`);
    assert.deepEqual([...kernel.mfcs.values()].map((m) => m.ttls[2]), GROUPS.map(() => 9), "the later step of each key is what stays");
  });
});
