/**
 * An APPLY line read with its routes taken from the bytes (src/protocol/apply_line.ts) against the
 * general reading (the whole line through JSON.parse and parseOp), which stays the reference:
 * - a compact line (routes as JSON.stringify writes them) is taken by the shortcut and gives the
 *   same operation; any line either gives up or gives the same operation or the same error;
 * - through the daemon's request handler, a large compact apply and the same apply with a space
 *   after each route (so read the general way) answer alike and leave the same configuration.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { readApplyLine } from "../../src/protocol/apply_line.js";
import { parseEnvelope, parseOp, type Op } from "../../src/protocol/schema.js";
import { RequestHandler } from "../../src/daemon/handlers.js";
import { Engine } from "../../src/engine/engine.js";
import { emptyConfig, routeKey } from "../../src/model/types.js";
import { snapshotText } from "../../src/state/format.js";
import { FakeKernel, FakeLinks } from "../support/fake_kernel.js";
import { MemoryStore } from "../support/memory_store.js";

const nameArb = fc.constantFrom("e0", "e1", "e2", "a]b", "q\"x", "é1", "x:y", "");
const addrArb = fc.constantFrom("10.0.0.1", "10.0.0.2", "fd00::1", "FD00:0::2", "239.1.1.1", "10.0.0.01", "x");
const groupArb = fc.oneof(fc.integer({ min: 0, max: 999 }).map((i) => `239.1.${i >> 8}.${i & 255}`), fc.constantFrom("ff3e::1", "239.2.0.0/16", "224.0.0.1", "10.0.0.1"));
const routeArb = fc.record({
  source: fc.option(addrArb, { nil: null }),
  group: groupArb,
  iif: nameArb,
  oifs: fc.array(fc.oneof(fc.record({ ifname: nameArb, ttl: fc.constantFrom(1, 2, 255, 0, 256) }), nameArb.map((ifname) => ({ ifname }))), { minLength: 0, maxLength: 3 }),
});
const requestArb = fc.record({
  action: fc.constantFrom("APPLY", "APPLY", "APPLY", "BATCH"),
  dry_run: fc.boolean(),
  payload: fc.record({
    family: fc.option(fc.constantFrom(4, 6), { nil: undefined }),
    state: fc.record({ vifs: fc.array(fc.record({ ifname: nameArb, threshold: fc.constantFrom(1, 9) }), { maxLength: 2 }), routes: fc.array(routeArb, { maxLength: 12 }) }),
  }, { requiredKeys: ["state"] }),
});

type Outcome = { op: Op } | { error: string };
function outcome(read: () => Op): Outcome {
  try {
    return { op: read() };
  } catch (err) {
    return { error: (err as Error).message };
  }
}
const general = (line: Buffer): Outcome => outcome(() => {
  const env = parseEnvelope(JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(line)));
  return parseOp(env.action, env.payload);
});
function fast(line: Buffer): Outcome | undefined {
  const read = readApplyLine(line, 0);
  return read && outcome(() => {
    const env = parseEnvelope(read.request);
    const op = parseOp(env.action, env.payload);
    assert.ok(op.action === "APPLY" && op.routes.length === 0);
    return { ...op, routes: read.routes };
  });
}
const canonical = (r: { oifs: object[] }): boolean => r.oifs.every((o) => "ttl" in o);

void test("a compact APPLY line reads the same with its routes taken from the bytes; any line gives up or agrees", () => {
  fc.assert(fc.property(requestArb, (request) => {
    const line = Buffer.from(JSON.stringify(request));
    const g = general(line);
    const f = fast(line);
    const plain = /^[\x20-\x7e]*$/.test(line.toString()) && !line.includes("\\");
    if (request.action === "APPLY" && "op" in g && plain && request.payload.state.routes.every(canonical) && request.payload.state.routes.length > 0) {
      const routes = (g.op as Extract<Op, { action: "APPLY" }>).routes;
      const v6ttl = routes.some((r) => r.group.includes(":") && r.oifs.some((o) => o.ttl !== 1));
      const repeats = routes.some((r) => new Set(r.oifs.map((o) => o.ifname)).size < r.oifs.length || r.oifs.some((o) => o.ifname === r.iif));
      if (!v6ttl && !repeats) assert.ok(f !== undefined, `not taken: ${line.toString()}`);
    }
    if (f !== undefined) assert.deepEqual(f, g);
  }), { numRuns: 1500 });
});

void test("with bytes changed anywhere, the shortcut gives up or agrees", () => {
  const edit = fc.record({ at: fc.nat(), byte: fc.constantFrom(..."{}[],:\" 0123456789.a/n".split("").map((c) => c.charCodeAt(0))) });
  fc.assert(fc.property(requestArb, fc.array(edit, { minLength: 1, maxLength: 3 }), (request, edits) => {
    const line = Buffer.from(JSON.stringify(request));
    for (const e of edits) line[e.at % line.length] = e.byte;
    const f = fast(line);
    if (f !== undefined) assert.deepEqual(f, general(line), line.toString());
  }), { numRuns: 3000 });
});

void test("a line with \"routes\" elsewhere, or small, is left to the general reading", () => {
  const r = '{"source":"10.0.0.1","group":"239.1.1.1","iif":"e0","oifs":[{"ifname":"e1","ttl":1}]}';
  const apply = (state: string): Buffer => Buffer.from(`{"action":"APPLY","payload":{"state":${state}}}`);
  assert.ok(readApplyLine(apply(`{"routes":[${r}]}`), 0));
  assert.equal(readApplyLine(apply(`{"routes":[${r}]}`)), undefined, "below the size it pays off at");
  // A repeated key, however spelt: JSON.parse keeps the last, so the scanned array is not the one meant.
  for (const tail of [',"routes":[]', ',"routes" :[]', ',"rout\\u0065s":[]', '},"state":{"routes":[]']) {
    const line = apply(`{"routes":[${r}]${tail}}`);
    assert.equal(readApplyLine(line, 0), undefined, line.toString());
    assert.deepEqual(general(line), { op: { action: "APPLY", vifs: [], routes: [], joins: [] } }, "the general reading: no routes");
  }
  // A byte-order mark after the array: the line decoded whole keeps it, and it is no JSON.
  const bom = Buffer.concat([apply(`{"routes":[${r}]`).subarray(0, -2), Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from("}}}")]);
  assert.ok("error" in general(bom));
  assert.equal(readApplyLine(bom, 0), undefined);
  assert.equal(readApplyLine(apply(`{"vifs":[{"ifname":"e1","routes":[${r}]}],"routes":[]}`), 0), undefined);
  assert.equal(readApplyLine(Buffer.from(`{"action":"BATCH","payload":{"operations":[{"action":"APPLY","payload":{"state":{"routes":[${r}]}}}]}}`), 0), undefined);
});

void test("through the request handler, a large compact apply answers and commits as the same apply read the general way", async () => {
  const routes = Array.from({ length: 1500 }, (_, i) => ({ source: i % 3 ? `10.0.0.${i % 200 + 1}` : null, group: `239.3.${i >> 8}.${i & 255}`, iif: "e0", oifs: [{ ifname: i % 2 ? "e1" : "e2", ttl: 1 + (i % 4) }] }));
  const compact = Buffer.from(JSON.stringify({ action: "APPLY", payload: { state: { vifs: [{ ifname: "e3", threshold: 2 }], routes } } }));
  const spaced = Buffer.from(compact.toString().replaceAll('},{"source"', '}, {"source"'));
  assert.ok(readApplyLine(compact) !== undefined, "the compact line takes the shortcut");
  assert.equal(readApplyLine(spaced), undefined, "the spaced one does not");
  const answers = [];
  const configs = [];
  for (const line of [compact, spaced]) {
    const links = new FakeLinks(["e0", "e1", "e2", "e3"]);
    const engine = new Engine(new FakeKernel(links), links, new MemoryStore(undefined, emptyConfig()));
    await engine.restore();
    const handler = new RequestHandler(engine, { sgCounters: () => undefined, vifCounters: () => undefined }, { status: () => ({}) }, () => ({ interfaces: new Map(), vifsInUse: { 4: 0, 6: 0 }, unrouted: [] }), () => undefined);
    answers.push(JSON.stringify(await handler.handleLine(line)));
    const { config } = engine.snapshot();
    configs.push([[...config.vifs], [...config.routes]]);
  }
  assert.equal(answers[0], answers[1]);
  assert.deepEqual(configs[0], configs[1]);
  assert.equal((configs[0]?.[1] as unknown[]).length, 1500);
});

// The snapshot of a whole-state APPLY writes `routesText` in place of its routes (engine.ts
// wholeRoutesText, store.ts): it must be, byte for byte, what the snapshot would have made of them.
void test("routesText is the snapshot's own routes text, given only when every route was read as written", () => {
  let given = 0;
  fc.assert(fc.property(requestArb, fc.nat(), (req, seq) => {
    const line = Buffer.from(JSON.stringify({ ...req, action: "APPLY" }));
    const fast = readApplyLine(line, 0);
    if (fast?.routesText === undefined) return;
    given++;
    const config = emptyConfig();
    for (const r of fast.routes) config.routes.set(routeKey(r.source, r.group), r);
    if (config.routes.size !== fast.routes.length) return; // a route twice: APPLY refuses it
    const pieces = [...snapshotText(config, seq, fast.routesText)].map((p) => Buffer.from(p));
    assert.equal(Buffer.concat(pieces).toString("utf8"), [...snapshotText(config, seq)].join(""));
  }), { numRuns: 3000 });
  assert.ok(given > 50, `routesText given for ${given} of 3000 lines: the property must reach it`);
  // A non-canonical IPv6 address is kept canonical: its bytes are not the snapshot's.
  const line = Buffer.from(JSON.stringify({ action: "APPLY", payload: { state: { vifs: [], routes: [{ source: "FD00::1", group: "ff3e::1", iif: "e0", oifs: [{ ifname: "e1", ttl: 1 }] }] } } }));
  assert.equal(readApplyLine(line, 0)?.routesText, undefined);
  const canonical = Buffer.from(line.toString().replace("FD00::1", "fd00::1"));
  assert.equal(readApplyLine(canonical, 0)?.routesText?.toString(), '{"source":"fd00::1","group":"ff3e::1","iif":"e0","oifs":[{"ifname":"e1","ttl":1}]}');
});
