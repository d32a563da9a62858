/**
 * Templates (SPEC §7), the pure parts and the flow manager on the fake kernel: which groups a
 * range holds, which template takes a flow (the most specific; none when an exact route names it),
 * and how flows follow their template (moved, removed with it, expired when idle, given up to an
 * exact route). The real kernel's upcalls: test/e2e/templates.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Engine } from "../../src/engine/engine.js";
import { templateFor, templatesOf } from "../../src/engine/templates.js";
import { MfcError } from "../../src/errors/codes.js";
import { FlowManager } from "../../src/daemon/flows.js";
import { checkRouteGroup, parseGroupRange, parseIpv4, rangeContains } from "../../src/model/ipv4.js";
import { parseOp } from "../../src/protocol/schema.js";
import { FakeKernel, FakeLinks } from "../support/fake_kernel.js";
import { MemoryStore } from "../support/memory_store.js";

const code = (f: () => unknown): string => {
  try {
    f();
    return "ok";
  } catch (err) {
    if (err instanceof MfcError) return err.code;
    throw err;
  }
};

void test("group ranges: multicast, network address, /4 to /31, not wholly link-local", () => {
  for (const ok of ["239.1.0.0/16", "224.0.0.0/4", "232.0.0.0/8", "239.1.2.0/24", "224.0.1.0/24"]) assert.equal(code(() => checkRouteGroup(ok)), "ok", ok);
  for (const bad of ["239.1.0.1/16", "10.0.0.0/8", "239.1.0.0/33", "239.1.0.0/0", "239.1.1.1/32", "224.0.0.0/24", "224.0.0.128/25", "239.1.0.0/", "239.1.0.0/016", "239.1.0.0/x"]) {
    assert.equal(code(() => checkRouteGroup(bad)), "E_INVALID_ADDRESS", bad);
  }
  assert.match(String((() => { try { checkRouteGroup("239.1.2.3/16"); } catch (e) { return (e as Error).message; } return ""; })()), /range starts at 239\.1\.0\.0\/16/);
  const r = parseGroupRange("239.1.0.0/16");
  assert.ok(r);
  assert.ok(rangeContains(r, parseIpv4("239.1.255.255") as number));
  assert.ok(!rangeContains(r, parseIpv4("239.2.0.0") as number));
  assert.ok(rangeContains({ base: parseIpv4("224.0.0.0") as number, len: 4 }, parseIpv4("239.255.255.255") as number));
});

void test("the most specific template takes a flow; an exact (S,G) or (*,G) route takes it from every template", () => {
  const config = { vifs: new Map(), joins: new Map(), routes: new Map([
    ["*,239.0.0.0/8", { source: null, group: "239.0.0.0/8", iif: "e0", oifs: [{ ifname: "e1", ttl: 1 }] }],
    ["*,239.1.0.0/16", { source: null, group: "239.1.0.0/16", iif: "e0", oifs: [{ ifname: "e2", ttl: 1 }] }],
    ["10.0.0.1,239.1.0.0/16", { source: "10.0.0.1", group: "239.1.0.0/16", iif: "e0", oifs: [{ ifname: "e3", ttl: 1 }] }],
    ["*,239.9.9.9", { source: null, group: "239.9.9.9", iif: "e0", oifs: [{ ifname: "e1", ttl: 1 }] }],
    ["10.0.0.1,239.5.5.5", { source: "10.0.0.1", group: "239.5.5.5", iif: "e0", oifs: [{ ifname: "e1", ttl: 1 }] }],
  ]) };
  const ts = templatesOf(config.routes);
  assert.equal(ts.length, 3);
  const pick = (iif: string, s: string, g: string): string | undefined => templateFor(config, ts, iif, s, g)?.key;
  assert.equal(pick("e0", "10.0.0.1", "239.1.2.3"), "10.0.0.1,239.1.0.0/16", "longest range, source-specific first");
  assert.equal(pick("e0", "10.0.0.2", "239.1.2.3"), "*,239.1.0.0/16");
  assert.equal(pick("e0", "10.0.0.2", "239.7.0.1"), "*,239.0.0.0/8");
  assert.equal(pick("e1", "10.0.0.2", "239.7.0.1"), undefined, "another input interface");
  assert.equal(pick("e0", "10.0.0.2", "238.1.1.1"), undefined, "outside every range");
  assert.equal(pick("e0", "10.0.0.2", "239.9.9.9"), undefined, "an exact (*,G) route wins");
  assert.equal(pick("e0", "10.0.0.1", "239.5.5.5"), undefined, "an exact (S,G) route wins");
  assert.equal(pick("e0", "10.0.0.2", "239.5.5.5"), "*,239.0.0.0/8", "an exact (S,G) of another source does not");
});

void test("flows on the fake kernel: installed from an upcall, moved with their template, given up to an exact route, expired, removed with the template", async () => {
  const links = new FakeLinks(["e0", "e1", "e2"]);
  const kernel = new FakeKernel(links);
  let now = 1_000;
  const engine = new Engine(kernel, links, new MemoryStore(), () => undefined, () => undefined, () => fm.sync());
  const fm = new FlowManager(kernel, engine, 10_000, () => undefined, () => now);
  const tx = (action: string, payload: Record<string, unknown>): Promise<unknown> => engine.transact([parseOp(action, payload)], false);
  await tx("ADD_MFC", { source: null, group: "239.1.0.0/16", iif: "e0", oifs: ["e1"] });
  const vifOf = (name: string): number => engine.snapshot().image.vifs.get(name)?.vifi as number;
  assert.deepEqual(kernel.dump().mfcs, [], "no entry for the template itself");
  fm.onNoCache({ vifi: vifOf("e0"), source: "10.0.0.9", group: "239.1.4.4" });
  fm.onNoCache({ vifi: vifOf("e0"), source: "10.0.0.9", group: "239.2.4.4" }); // outside
  fm.onNoCache({ vifi: vifOf("e1"), source: "10.0.0.9", group: "239.1.4.5" }); // another iif
  const entry = (): string => JSON.stringify(kernel.dump().mfcs);
  assert.equal(entry(), JSON.stringify([["10.0.0.9,239.1.4.4", vifOf("e0"), ttlsTo(vifOf("e1"))]]));
  assert.deepEqual(fm.of("*,239.1.0.0/16").map((f) => `${f.source},${f.group}`), ["10.0.0.9,239.1.4.4"]);

  await tx("REPLACE_MFC", { source: null, group: "239.1.0.0/16", iif: "e0", oifs: ["e2"] });
  assert.equal(entry(), JSON.stringify([["10.0.0.9,239.1.4.4", vifOf("e0"), ttlsTo(vifOf("e2"))]]), "the flow follows its template");

  await tx("ADD_MFC", { source: "10.0.0.9", group: "239.1.4.4", iif: "e0", oifs: ["e1"] });
  assert.deepEqual(fm.of("*,239.1.0.0/16"), [], "an exact route took the flow over");
  assert.equal(kernel.dump().mfcs.length, 1, "its entry is the route's now (replaced, not deleted)");
  await tx("DEL_MFC", { source: "10.0.0.9", group: "239.1.4.4" });
  assert.equal(kernel.dump().mfcs.length, 0);

  fm.onNoCache({ vifi: vifOf("e0"), source: "10.0.0.9", group: "239.1.4.4" });
  fm.expire(); // counts the packets it has (the fake's counters stay 0)
  now += 9_999;
  fm.expire();
  assert.equal(kernel.dump().mfcs.length, 1, "not idle long enough yet");
  now += 1;
  fm.expire();
  assert.equal(kernel.dump().mfcs.length, 0, "idle for template_idle_s: removed");

  fm.onNoCache({ vifi: vifOf("e0"), source: "10.0.0.9", group: "239.1.7.7" });
  assert.equal(kernel.dump().mfcs.length, 1);
  await tx("DEL_MFC", { source: null, group: "239.1.0.0/16" });
  assert.deepEqual(kernel.dump().mfcs, [], "deleting the template removed its flows");
});

void test("a flow that expires while an exact route for it is being saved leaves the route's kernel entry alone", async () => {
  const links = new FakeLinks(["e0", "e1", "e2"]);
  const kernel = new FakeKernel(links);
  let release: (() => void) | undefined;
  const store = new (class extends MemoryStore {
    hold = false;
    override async save(...args: Parameters<MemoryStore["save"]>): Promise<void> {
      await super.save(...args);
      if (this.hold) await new Promise<void>((r) => { release = r; });
    }
  })();
  let now = 0;
  const engine = new Engine(kernel, links, store, () => undefined, () => undefined, () => fm.sync());
  const fm = new FlowManager(kernel, engine, 300_000, () => undefined, () => now);
  await engine.transact([parseOp("ADD_MFC", { source: null, group: "239.1.0.0/16", iif: "e0", oifs: ["e1"] })], false);
  fm.onNoCache({ vifi: engine.snapshot().image.vifs.get("e0")?.vifi as number, source: "10.0.0.9", group: "239.1.2.3" });
  now = 299_000;
  store.hold = true;
  const tx = engine.transact([parseOp("ADD_MFC", { source: "10.0.0.9", group: "239.1.2.3", iif: "e0", oifs: ["e2"] })], false);
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
  now = 300_500;
  fm.expire(); // the flow timer fires while the exact route's save is in flight
  release?.();
  await tx;
  assert.ok(kernel.mfcs.has("10.0.0.9,239.1.2.3"), "the acknowledged exact route is still in the kernel");
  assert.equal(fm.size, 0);
});

void test("a flow the kernel refuses to install is not listed, is logged, and its next upcall tries again", async () => {
  const links = new FakeLinks(["e0", "e1"]);
  const kernel = new FakeKernel(links);
  const logs: string[] = [];
  const engine = new Engine(kernel, links, new MemoryStore(), () => undefined, () => undefined, () => fm.sync());
  const fm = new FlowManager(kernel, engine, 10_000, (_p, m) => logs.push(m));
  await engine.transact([parseOp("ADD_MFC", { source: null, group: "239.1.0.0/16", iif: "e0", oifs: ["e1"] })], false);
  const upcall = { vifi: engine.snapshot().image.vifs.get("e0")?.vifi as number, source: "10.0.0.9", group: "239.1.4.4" };
  kernel.resetCalls();
  kernel.failAt({ at: 1, errno: "ENOBUFS" });
  fm.onNoCache(upcall);
  assert.equal(fm.size, 0, "a refused flow is not listed");
  assert.deepEqual(kernel.dump().mfcs, []);
  assert.match(logs.join("\n"), /flow \(10\.0\.0\.9, 239\.1\.4\.4\) refused by the kernel: .*ENOBUFS/);
  kernel.clearFaults();
  fm.onNoCache(upcall);
  assert.equal(fm.size, 1, "the next upcall installs it");
});

/** The TTL array of an (S,G) entry forwarding to one VIF. */
function ttlsTo(vifi: number): number[] {
  const t = new Array<number>(vifi + 1).fill(0);
  t[vifi] = 1;
  return t;
}
