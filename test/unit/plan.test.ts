/**
 * src/engine/realize.ts (Config -> kernel image, VIF allocation) and src/engine/plan.ts (image diff
 * -> ordered kernel steps and their inverses), checked against FakeKernel's kernel rules.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { MfcError } from "../../src/errors/codes.js";
import { applySteps, undoSteps } from "../../src/engine/apply.js";
import { emptyImage, type Image } from "../../src/engine/image.js";
import { describeStep, inverse, planSteps, type Step } from "../../src/engine/plan.js";
import { admitInterfaces, pendingReason, realize } from "../../src/engine/realize.js";
import { FakeKernel, FakeLinks } from "../support/fake_kernel.js";
import { MAXVIFS } from "../../src/kernel/port.js";
import { emptyConfig, routeKey, type Config, type Route } from "../../src/model/types.js";

type Oifs = (string | [string, number])[];

function route(source: string | null, group: string, iif: string, oifs: Oifs): Route {
  return { source, group, iif, oifs: oifs.map((o) => (typeof o === "string" ? { ifname: o, ttl: 1 } : { ifname: o[0], ttl: o[1] })) };
}

function config(routes: Route[], pinned: [string, number][] = []): Config {
  const c = emptyConfig();
  for (const [ifname, threshold] of pinned) c.vifs.set(ifname, { ifname, threshold });
  for (const r of routes) c.routes.set(routeKey(r.source, r.group), r);
  return c;
}

const vifNumbers = (img: Image): Record<string, number> =>
  Object.fromEntries([...img.vifs.values()].map((v) => [v.ifname, v.vifi]));

const ops = (steps: Step[]): string[] =>
  steps.map((s) => (s.op.endsWith("_vif") ? `${s.op} ${(s as { vif: { ifname: string } }).vif.ifname}` : `${s.op} ${(s as { entry: { key: string } }).entry.key}`));

/**
 * The ordering rule of plan.ts: MFC removals and rewrites naming only unchanged VIFs, then VIF
 * removals, then VIF additions, then MFC additions and rewrites naming a new VIF.
 */
function assertPhases(from: Image, to: Image, steps: Step[]): void {
  const stable = new Set<number>();
  for (const [name, v] of to.vifs) {
    const old = from.vifs.get(name);
    if (old && old.vifi === v.vifi && old.ifindex === v.ifindex && old.threshold === v.threshold) stable.add(v.vifi);
  }
  const phase = (s: Step): number => {
    switch (s.op) {
      case "del_mfc": return 0;
      case "del_vif": return 1;
      case "add_vif": return 2;
      case "add_mfc": return 3;
      case "replace_mfc": return stable.has(s.entry.parent) && s.entry.oifs.every((o) => stable.has(o.vifi)) ? 0 : 3;
      case "leave":
      case "join": return 4; // planSteps never makes them (joins.ts does)
    }
  };
  const phases = steps.map(phase);
  assert.deepEqual(phases, [...phases].sort((x, y) => x - y), `steps out of order: ${ops(steps).join(", ")}`);
}

/** Steps that write an MFC entry into the kernel. */
const writesEntry = (s: Step): s is Extract<Step, { op: "add_mfc" | "replace_mfc" }> => s.op === "add_mfc" || s.op === "replace_mfc";

/** A kernel holding `img`, built by applying the plan from an empty image. */
function kernelWith(links: FakeLinks, img: Image): FakeKernel {
  const k = new FakeKernel(links);
  applySteps(k, planSteps(emptyImage(), img));
  return k;
}

void describe("realize: VIF allocation", () => {
  void test("a fresh image numbers VIFs from 0 in interface-name order", () => {
    const links = new FakeLinks(["eth1", "eth0", "aaa0"]);
    const img = realize(config([route(null, "239.1.1.1", "eth0", ["eth1", "aaa0"])]), emptyImage(), links);
    assert.deepEqual(vifNumbers(img), { aaa0: 0, eth0: 1, eth1: 2 });
    assert.equal(img.vifs.get("eth0")?.ifindex, links.indexOf("eth0"));
  });

  void test("VIF numbers stay stable when other interfaces come and go", () => {
    const links = new FakeLinks(["eth0", "eth1", "aaa0", "eth2"]);
    const r1 = route("10.0.0.1", "239.1.1.1", "eth0", ["eth1"]);
    const img1 = realize(config([r1]), emptyImage(), links);
    assert.deepEqual(vifNumbers(img1), { eth0: 0, eth1: 1 });
    // aaa0 sorts first, but existing VIFs keep their numbers.
    const r2 = route("10.0.0.2", "239.1.1.2", "aaa0", ["eth1", "eth2"]);
    const img2 = realize(config([r1, r2]), img1, links);
    assert.deepEqual(vifNumbers(img2), { eth0: 0, eth1: 1, aaa0: 2, eth2: 3 });
    // The unchanged route needs no kernel step at all.
    assert.deepEqual(ops(planSteps(img1, img2)), ["add_vif aaa0", "add_vif eth2", `add_mfc ${routeKey("10.0.0.2", "239.1.1.2")}`]);
    // Removing r1 (eth0 unused now) keeps every other number.
    const img3 = realize(config([r2]), img2, links);
    assert.deepEqual(vifNumbers(img3), { eth1: 1, aaa0: 2, eth2: 3 });
  });

  void test("a new VIF gets the lowest free number", () => {
    const links = new FakeLinks(["eth0", "eth1", "eth2", "eth3"]);
    const img1 = realize(config([route(null, "239.1.1.1", "eth0", ["eth1", "eth2"])]), emptyImage(), links);
    assert.deepEqual(vifNumbers(img1), { eth0: 0, eth1: 1, eth2: 2 });
    const img2 = realize(config([route(null, "239.1.1.1", "eth0", ["eth2"])]), img1, links);
    assert.deepEqual(vifNumbers(img2), { eth0: 0, eth2: 2 });
    const img3 = realize(config([route(null, "239.1.1.1", "eth0", ["eth2", "eth3"])]), img2, links);
    assert.deepEqual(vifNumbers(img3), { eth0: 0, eth2: 2, eth3: 1 });
  });

  void test("a number freed in a transaction is not reused in the same transaction when another is free", () => {
    const links = new FakeLinks(["eth0", "eth1", "eth2", "eth3"]);
    const img1 = realize(config([route(null, "239.1.1.1", "eth0", ["eth1", "eth2"])]), emptyImage(), links);
    const img2 = realize(config([route(null, "239.1.1.1", "eth0", ["eth2", "eth3"])]), img1, links);
    assert.deepEqual(vifNumbers(img2), { eth0: 0, eth2: 2, eth3: 3 });
  });

  void test("when all 32 numbers were held, a freed number is reused (del before add)", () => {
    const names = Array.from({ length: MAXVIFS }, (_, i) => `if${i}`);
    const links = new FakeLinks([...names, "new0"]);
    const pinned = names.map((n): [string, number] => [n, 1]);
    const img1 = realize(config([], pinned), emptyImage(), links);
    assert.equal(img1.vifs.size, MAXVIFS);
    const freed = img1.vifs.get("if5")?.vifi;
    const img2 = realize(config([], [...pinned.filter(([n]) => n !== "if5"), ["new0", 1]]), img1, links);
    assert.equal(img2.vifs.get("new0")?.vifi, freed);
    const steps = planSteps(img1, img2);
    assert.deepEqual(ops(steps), ["del_vif if5", "add_vif new0"]);
    const k = kernelWith(links, img1);
    applySteps(k, steps);
    assert.equal(k.vifs.get(freed as number)?.ifindex, links.indexOf("new0"));
  });

  void test("past 32 VIFs the rest wait with a reason (restore never refuses); admission counts missing interfaces too", () => {
    const names = Array.from({ length: MAXVIFS + 1 }, (_, i) => `if${i}`);
    const links = new FakeLinks(names);
    const pin = (n: string[]): [string, number][] => n.map((x) => [x, 1]);
    assert.equal(realize(config([], pin(names.slice(0, MAXVIFS))), emptyImage(), links).vifs.size, MAXVIFS);
    const over = realize(config([], pin(names)), emptyImage(), links);
    assert.equal(over.vifs.size, MAXVIFS);
    assert.deepEqual([...(over.waiting ?? [])], [["if9", "VIF limit: 32 in use"]], "the last in name order waits");
    links.remove("if32");
    const gone = realize(config([], pin(names)), emptyImage(), links);
    assert.equal(gone.vifs.size, MAXVIFS);
    assert.deepEqual([...(gone.waiting ?? [])], [["if32", "interface missing"]]);
    // Admission: a 33rd name is refused even while one of the 33 is missing...
    const current = new Map(names.slice(0, MAXVIFS).map((n) => [n, 1]));
    assert.throws(() => admitInterfaces(new Set(names), current), (err: unknown) => {
      assert.ok(err instanceof MfcError);
      assert.equal(err.code, "E_VIF_LIMIT");
      assert.match(err.message, /if32.*missing now count too/);
      return true;
    });
    // ...but a configuration already past the limit blocks only changes naming yet another one.
    assert.doesNotThrow(() => admitInterfaces(new Set(names), new Map(names.map((n) => [n, 1]))));
    assert.doesNotThrow(() => admitInterfaces(new Set(names.slice(0, MAXVIFS)), current));
  });

  void test("an interface the kernel refused waits with that reason; its routes stay pending, others install", () => {
    const links = new FakeLinks(["eth0", "eth1", "eth2"]);
    const r1 = route(null, "239.1.1.1", "eth0", ["eth1"]);
    const r2 = route(null, "239.1.1.2", "eth2", ["eth1"]);
    const img = realize(config([r1, r2]), emptyImage(), links, { vifs: new Map([["eth2", "kernel refused VIF: EADDRNOTAVAIL"]]), routes: new Map() });
    assert.deepEqual([...img.vifs.keys()].sort(), ["eth0", "eth1"]);
    assert.deepEqual([...img.mfcs.keys()], ["*,239.1.1.1"]);
    assert.equal(pendingReason("*,239.1.1.2", r2, img), "interface 'eth2': kernel refused VIF: EADDRNOTAVAIL");
  });

  void test("an interface re-created with a new ifindex gets a fresh VIF number", () => {
    const links = new FakeLinks(["eth0", "eth1", "eth2"]);
    const c = config([route(null, "239.1.1.1", "eth0", ["eth1"])], [["eth2", 1]]);
    const img1 = realize(c, emptyImage(), links);
    assert.deepEqual(vifNumbers(img1), { eth0: 0, eth1: 1, eth2: 2 });
    links.remove("eth1");
    links.add("eth1");
    const img2 = realize(c, img1, links);
    assert.equal(img2.vifs.get("eth1")?.vifi, 3, "not 1: an MFC entry may still name the old number");
    assert.equal(img2.vifs.get("eth1")?.ifindex, links.indexOf("eth1"));
    const steps = planSteps(img1, img2);
    assertPhases(img1, img2, steps);
    const names = ops(steps);
    assert.ok(names.indexOf("del_vif eth1") < names.indexOf("add_vif eth1"));
    const last = steps.filter(writesEntry).at(-1);
    assert.ok(last && last.entry.oifs[0]?.vifi === 3, "the entry ends up naming the new VIF");
    assert.ok(names.indexOf("add_vif eth1") < steps.indexOf(last), "and is written only after that VIF exists");
  });
});

void describe("realize: MFC entries", () => {
  const links = new FakeLinks(["eth0", "eth1", "eth2"]);

  void test("(S,G): ttls[oif] set, ttls[parent] 0", () => {
    const img = realize(config([route("10.0.0.1", "239.1.1.1", "eth0", ["eth1", ["eth2", 5]])]), emptyImage(), links);
    const m = img.mfcs.get(routeKey("10.0.0.1", "239.1.1.1"));
    assert.equal(m?.parent, 0);
    assert.deepEqual(m?.ttls, [0, 1, 5]);
  });

  void test("(*,G) sets ttls[parent] = 1 so the kernel matches every source", () => {
    const img = realize(config([route(null, "239.1.1.1", "eth0", ["eth1", ["eth2", 7]])]), emptyImage(), links);
    const m = img.mfcs.get(routeKey(null, "239.1.1.1"));
    assert.equal(m?.parent, 0);
    assert.equal(m?.source, null);
    assert.deepEqual(m?.ttls, [1, 1, 7]);
    const sg = realize(config([route("10.0.0.1", "239.1.1.1", "eth0", ["eth1", ["eth2", 7]])]), emptyImage(), links);
    assert.deepEqual(sg.mfcs.get(routeKey("10.0.0.1", "239.1.1.1"))?.ttls, [0, 1, 7], "only (*,G) sets the parent");
  });

  void test("effective ttl = max(oif ttl, vif threshold); the shown oif ttl stays the operator's", () => {
    const img = realize(config([route("10.0.0.1", "239.1.1.1", "eth0", [["eth1", 3], ["eth2", 20]])], [["eth1", 8], ["eth2", 8]]), emptyImage(), links);
    const m = img.mfcs.get(routeKey("10.0.0.1", "239.1.1.1"));
    assert.deepEqual(m?.ttls, [0, 8, 20]);
    assert.deepEqual(m?.oifs.map((o) => [o.ifname, o.ttl]), [["eth1", 3], ["eth2", 20]]);
  });

  void test("a threshold change re-adds the VIF and rewrites the entries it affects", () => {
    const r = route("10.0.0.1", "239.1.1.1", "eth0", ["eth1"]);
    const img1 = realize(config([r], [["eth1", 1]]), emptyImage(), links);
    const img2 = realize(config([r], [["eth1", 9]]), img1, links);
    assert.equal(img2.vifs.get("eth1")?.vifi, img1.vifs.get("eth1")?.vifi, "same number");
    assert.deepEqual(img2.mfcs.get(routeKey("10.0.0.1", "239.1.1.1"))?.ttls, [0, 9]);
    const steps = planSteps(img1, img2);
    assertPhases(img1, img2, steps);
    const names = ops(steps);
    assert.deepEqual(names.filter((n) => n.endsWith("_vif eth1")), ["del_vif eth1", "add_vif eth1"]);
    const last = steps.filter(writesEntry).at(-1);
    assert.ok(last && last.entry.ttls[1] === 9);
    assert.ok(names.indexOf("add_vif eth1") < steps.indexOf(last), "the entry is rewritten after the VIF is back");
  });

  void test("missing interfaces: no iif -> no entry; some oifs missing -> entry without them; all missing -> no entry", () => {
    const rNoIif = route("10.0.0.1", "239.1.1.1", "gone0", ["eth1"]);
    const rPartial = route("10.0.0.1", "239.1.1.2", "eth0", ["gone1", "eth2"]);
    const rNoOif = route("10.0.0.1", "239.1.1.3", "eth0", ["gone1"]);
    const img = realize(config([rNoIif, rPartial, rNoOif]), emptyImage(), links);
    assert.deepEqual([...img.mfcs.keys()], [routeKey("10.0.0.1", "239.1.1.2")]);
    const partial = img.mfcs.get(routeKey("10.0.0.1", "239.1.1.2"));
    assert.deepEqual(partial?.oifs.map((o) => o.ifname), ["eth2"]);
    assert.equal(pendingReason("k", rNoIif, img), "interface 'gone0' missing");
    assert.equal(pendingReason("k", rPartial, img), "interface 'gone1' missing");
    assert.equal(pendingReason("k", route(null, "239.1.1.4", "gone0", ["gone1", "eth1"]), img), "interface 'gone0', 'gone1' missing");
    assert.equal(pendingReason("k", route(null, "239.1.1.4", "eth0", ["eth2"]), img), undefined);
  });
});

void describe("planSteps", () => {
  void test("order: MFC dels (and stable replaces), VIF dels, VIF adds, then MFC adds (and replaces needing new VIFs)", () => {
    const links = new FakeLinks(["eth0", "eth1", "eth2", "eth3"]);
    const gone = route("10.0.0.1", "239.1.1.1", "eth0", ["eth1"]);
    const tweak = route("10.0.0.1", "239.1.1.2", "eth0", ["eth2"]);
    const grow = route("10.0.0.1", "239.1.1.3", "eth0", ["eth2"]);
    const from = realize(config([gone, tweak, grow]), emptyImage(), links);
    const fresh = route("10.0.0.1", "239.1.1.4", "eth0", ["eth3"]);
    const to = realize(config([{ ...tweak, oifs: [{ ifname: "eth2", ttl: 4 }] }, { ...grow, oifs: [...grow.oifs, { ifname: "eth3", ttl: 1 }] }, fresh]), from, links);
    const steps = planSteps(from, to);
    assertPhases(from, to, steps);
    assert.deepEqual(ops(steps), [
      `del_mfc ${routeKey("10.0.0.1", "239.1.1.1")}`,
      `replace_mfc ${routeKey("10.0.0.1", "239.1.1.2")}`,
      "del_vif eth1",
      "add_vif eth3",
      `replace_mfc ${routeKey("10.0.0.1", "239.1.1.3")}`,
      `add_mfc ${routeKey("10.0.0.1", "239.1.1.4")}`,
    ]);
    // Against the kernel's rules: the result equals installing `to` from scratch.
    const k = kernelWith(links, from);
    applySteps(k, steps);
    assert.deepEqual(k.dump(), kernelWith(links, to).dump());
  });

  void test("identical images need no steps", () => {
    const links = new FakeLinks(["eth0", "eth1"]);
    const c = config([route(null, "239.1.1.1", "eth0", ["eth1"])], [["eth1", 3]]);
    const img = realize(c, emptyImage(), links);
    assert.deepEqual(planSteps(img, realize(c, img, links)), []);
  });

  void test("to and from empty", () => {
    const links = new FakeLinks(["eth0", "eth1"]);
    const img = realize(config([route(null, "239.1.1.1", "eth0", ["eth1"])]), emptyImage(), links);
    assert.deepEqual(ops(planSteps(emptyImage(), img)), ["add_vif eth0", "add_vif eth1", `add_mfc ${routeKey(null, "239.1.1.1")}`]);
    assert.deepEqual(ops(planSteps(img, emptyImage())), [`del_mfc ${routeKey(null, "239.1.1.1")}`, "del_vif eth0", "del_vif eth1"]);
  });
});

void describe("inverse", () => {
  const links = new FakeLinks(["eth0", "eth1", "eth2"]);
  const a = realize(config([route(null, "239.1.1.1", "eth0", ["eth1"])]), emptyImage(), links);
  const b = realize(config([route(null, "239.1.1.1", "eth0", ["eth2"])]), a, links);
  const mfcA = a.mfcs.get(routeKey(null, "239.1.1.1"));
  const mfcB = b.mfcs.get(routeKey(null, "239.1.1.1"));
  const vif = a.vifs.get("eth1");
  assert.ok(mfcA && mfcB && vif);

  const pairs: [Step, Step][] = [
    [{ op: "add_mfc", entry: mfcA }, { op: "del_mfc", entry: mfcA }],
    [{ op: "del_mfc", entry: mfcA }, { op: "add_mfc", entry: mfcA }],
    [{ op: "replace_mfc", entry: mfcB, previous: mfcA }, { op: "replace_mfc", entry: mfcA, previous: mfcB }],
    [{ op: "add_vif", vif }, { op: "del_vif", vif }],
    [{ op: "del_vif", vif }, { op: "add_vif", vif }],
  ];
  for (const [step, inv] of pairs) {
    void test(`${step.op}`, () => {
      assert.deepEqual(inverse(step), inv);
      assert.deepEqual(inverse(inverse(step)), step);
    });
  }

  /** Applies from->to on a kernel holding `from`, undoes it in reverse, and expects `from` back. */
  function roundTrip(l: FakeLinks, from: Image, to: Image): void {
    const k = kernelWith(l, from);
    const before = k.dump();
    const steps = planSteps(from, to);
    assertPhases(from, to, steps);
    applySteps(k, steps);
    assert.deepEqual(k.dump(), kernelWith(l, to).dump(), "forward reaches `to`");
    assert.deepEqual(undoSteps(k, steps), [], "every undo step succeeds");
    assert.deepEqual(k.dump(), before, "undo restores `from` exactly");
  }

  void test("undo in reverse restores the kernel: routes and VIFs added, removed, thresholds changed", () => {
    const l = new FakeLinks(["eth0", "eth1", "eth2", "eth3"]);
    const r1 = route("10.0.0.1", "239.1.1.1", "eth0", ["eth1", "eth2"]);
    const r2 = route(null, "239.1.1.2", "eth0", ["eth2"]);
    const x = realize(config([r1, r2]), emptyImage(), l);
    const y = realize(config([{ ...r1, oifs: [{ ifname: "eth2", ttl: 3 }] }, route(null, "239.1.1.3", "eth3", ["eth2"])], [["eth2", 5]]), x, l);
    roundTrip(l, emptyImage(), x);
    roundTrip(l, x, y);
    roundTrip(l, y, x);
    roundTrip(l, x, emptyImage());
  });

  void test("undo restores an entry that moved from a removed VIF to a new one (the kernel drops OIFs naming missing VIFs)", () => {
    // eth1 is removed and eth2 added in one transaction; the entry moves from eth1 to eth2.
    // A plain late replace_mfc, undone first, would re-add the old entry while eth1 is still
    // gone, and the kernel would silently drop eth1 from it.
    roundTrip(links, a, b);
    roundTrip(links, b, a);
  });

  void test("describeStep names what the client sees", () => {
    assert.deepEqual(describeStep({ op: "add_vif", vif }), { action: "add_vif", family: 4, vifi: vif.vifi, ifname: "eth1", ifindex: vif.ifindex, threshold: 1 });
    assert.deepEqual(describeStep({ op: "replace_mfc", entry: mfcB, previous: mfcA }), {
      action: "replace_mfc", source: null, group: "239.1.1.1", iif: "eth0", oifs: [{ ifname: "eth2", ttl: 1 }],
    });
  });
});
