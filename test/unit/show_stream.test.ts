/**
 * The streamed SHOW answer (issue 13 target 3): the pieces the daemon writes join to exactly the
 * line the daemon wrote before it streamed - checked against a copy of that implementation - on a
 * table with installed, partial, pending and refused routes, a (*,G) route, pinned VIFs, interfaces
 * waiting for a VIF past the limit, and counters; and a transaction committed while the answer is
 * being written does not change it.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { RequestHandler } from "../../src/daemon/handlers.js";
import { Engine } from "../../src/engine/engine.js";
import { originOf, type Image } from "../../src/engine/image.js";
import { pendingReason } from "../../src/engine/realize.js";
import { KernelError, errnoOf } from "../../src/kernel/errors.js";
import type { MfcEntry, SgCounters, VifCounters } from "../../src/kernel/port.js";
import { parseIpv4 } from "../../src/model/ipv4.js";
import { emptyConfig, neededInterfaces, routeKey, type Config, type Route } from "../../src/model/types.js";
import { parseOp } from "../../src/protocol/schema.js";
import { StreamedOk } from "../../src/protocol/streamed.js";
import { ShowSnapshot, type CounterSource, type RouteView, type VifView } from "../../src/view/model.js";
import { showResultPieces } from "../../src/view/show_json.js";
import { FakeKernel, FakeLinks } from "../support/fake_kernel.js";
import { MemoryStore } from "../support/memory_store.js";

/** buildShowView as it was before the answer was streamed (commit f7026a8): the oracle. */
function legacyShowView(config: Config, image: Image, counters: CounterSource, what: "all" | "routes" | "vifs"): { vifs?: VifView[]; routes?: RouteView[] } {
  const ipKey = (s: string | null): number => (s === null ? -1 : (parseIpv4(s) ?? 0));
  const view: { vifs?: VifView[]; routes?: RouteView[] } = {};
  if (what !== "routes") {
    const out: VifView[] = [];
    for (const ifname of neededInterfaces(config)) {
      const v = image.vifs.get(ifname);
      const c = v ? counters.vifCounters(4, v.vifi) : undefined;
      out.push({
        family: 4, vifi: v?.vifi ?? null, ifname, ifindex: v?.ifindex ?? null,
        threshold: config.vifs.get(ifname)?.threshold ?? v?.threshold ?? 1, pinned: config.vifs.has(ifname),
        pkts_in: c?.pktsIn ?? 0, bytes_in: c?.bytesIn ?? 0, pkts_out: c?.pktsOut ?? 0, bytes_out: c?.bytesOut ?? 0,
      });
    }
    view.vifs = out.sort((a, b) => (a.vifi ?? 99) - (b.vifi ?? 99) || a.ifname.localeCompare(b.ifname));
  }
  if (what !== "vifs") {
    const out: RouteView[] = [];
    for (const [key, r] of config.routes) {
      const m = image.mfcs.get(key);
      const c = m ? counters.sgCounters(originOf(m), m.group) : undefined;
      const reason = pendingReason(key, r, image);
      const rv: RouteView = {
        source: r.source, group: r.group, iif: r.iif, oifs: r.oifs.map((o) => ({ ifname: o.ifname, ttl: o.ttl })),
        packets: c?.packets ?? 0, bytes: c?.bytes ?? 0, wrong_if: c?.wrongIf ?? 0,
        state: m ? "installed" : "pending",
      };
      if (reason !== undefined) rv.reason = reason;
      out.push(rv);
    }
    const keyed = out.map((r) => ({ r, g: ipKey(r.group), s: ipKey(r.source) }));
    keyed.sort((a, b) => a.g - b.g || a.s - b.s);
    view.routes = keyed.map((k) => k.r);
  }
  return view;
}

/** Counters that differ per flow and per VIF (a pure function of the name: the same at every read). */
class Counters implements CounterSource {
  sgReads = 0;
  sgCounters(origin: string, group: string): SgCounters {
    this.sgReads++;
    const n = (parseIpv4(group) ?? 0) % 100_003 + (parseIpv4(origin) ?? 0) % 7;
    return { packets: n, bytes: n * 1_300 + 2 ** 40, wrongIf: n % 3 };
  }
  vifCounters(_family: 4 | 6, vifi: number): VifCounters {
    return { pktsIn: vifi * 10, bytesIn: vifi * 1_000, pktsOut: vifi + 1, bytesOut: 2 ** 33 + vifi };
  }
}

const REFUSED = "239.9.9.9";
/** A kernel that refuses one group (as for want of memory). */
class PickyKernel extends FakeKernel {
  override addMfc(entry: MfcEntry): void {
    if (entry.group === REFUSED) throw new KernelError("MRT_ADD_MFC", errnoOf("ENOBUFS"));
    super.addMfc(entry);
  }
}

const ifs = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => `e${from + i}`);
const route = (source: string | null, group: string, iif: string, oifs: string[], ttl = 1): Route =>
  ({ source, group, iif, oifs: oifs.map((ifname) => ({ ifname, ttl })) });

/**
 * 700 routes over e0..e3, inserted out of display order; a (*,G); one with a missing oif (partial);
 * one with a missing iif (pending); one the kernel refuses; 34 interfaces named in all, so two wait
 * past the VIF limit (a state saved by an older version, restored); e1 pinned with threshold 3 and
 * a pinned interface that does not exist.
 */
async function world(): Promise<{ engine: Engine; handler: RequestHandler; counters: Counters }> {
  const links = new FakeLinks([...ifs(0, 40)]);
  links.remove("e39");
  const config = emptyConfig();
  const put = (r: Route): void => { config.routes.set(routeKey(r.source, r.group), r); };
  for (let i = 699; i >= 0; i--) put(route(`10.0.${i % 3}.1`, `239.1.${i >> 8}.${i & 255}`, "e0", i % 2 ? ["e1", "e2"] : ["e3"], 1 + (i % 4)));
  put(route(null, "239.1.0.5", "e0", ["e1"]));
  put(route("10.0.0.9", "239.2.0.1", "e0", ["e1", "e39"]));
  put(route("10.0.0.9", "239.2.0.2", "e39", ["e1"]));
  put(route("10.0.0.9", REFUSED, "e0", ["e2"]));
  put(route("10.0.0.9", "239.3.0.1", "e4", ifs(5, 34)));
  config.vifs.set("e1", { ifname: "e1", threshold: 3 });
  config.vifs.set("nosuch0", { ifname: "nosuch0", threshold: 1 });
  const engine = new Engine(new PickyKernel(links), links, new MemoryStore(undefined, config));
  await engine.restore();
  const counters = new Counters();
  const handler = new RequestHandler(engine, counters, { status: () => ({}) }, () => ({}) as never);
  return { engine, handler, counters };
}

/** The joins the answer lists, if the result has them: SPEC §7, newer than the oracle. */
function joinsOf(config: Config, image: Image, counters: CounterSource, what: "all" | "routes" | "vifs"): unknown {
  return (ShowSnapshot.take(config, image, counters, what) as { joins?: unknown }).joins;
}

/**
 * `text` (a result, or a whole line) against what the oracle makes of it: byte for byte; where the
 * result also lists joins, which the oracle predates, the same object with those joins added.
 */
function assertSame(text: string, expected: Record<string, unknown>, joins: unknown, line: boolean): void {
  if (joins === undefined) {
    assert.equal(text, JSON.stringify(expected) + (line ? "\n" : ""));
    return;
  }
  assert.equal(text.indexOf("\n"), line ? text.length - 1 : -1, "one line");
  const withJoins = line ? { ...expected, result: { ...(expected.result as object), joins } } : { ...expected, joins };
  assert.deepStrictEqual(JSON.parse(text), withJoins);
}

async function streamed(handler: RequestHandler, request: object): Promise<StreamedOk> {
  const answer = await handler.handleLine(Buffer.from(JSON.stringify(request)));
  assert.ok(answer instanceof StreamedOk, `SHOW answered at once: ${JSON.stringify(answer).slice(0, 200)}`);
  return answer;
}

function drain(answer: StreamedOk): string[] {
  const pieces: string[] = [];
  while (!answer.done) pieces.push(answer.next());
  return pieces;
}

void describe("streamed SHOW answer", () => {
  void test("the world has what the comparison needs", async () => {
    const { engine } = await world();
    const { image } = engine.snapshot();
    const reasons = new Set([...image.waiting?.values() ?? []]);
    assert.ok([...reasons].some((r) => r.startsWith("VIF limit")), `no interface waits past the VIF limit: ${[...reasons].join("; ")}`);
    assert.equal(image.refusedRoutes?.get(routeKey("10.0.0.9", REFUSED)), "kernel refused route: ENOBUFS");
  });

  for (const [what, id, dryRun] of [["all", undefined, false], ["routes", 7, false], ["vifs", 'x"y\\', false], ["all", "abc", true]] as const) {
    void test(`joined pieces = the whole line written at once (what=${what}, id=${JSON.stringify(id)}, dry_run=${String(dryRun)})`, async () => {
      const { engine, handler, counters } = await world();
      const { config, image } = engine.snapshot();
      const expected = { status: "ok", dry_run: dryRun, changes: [], result: legacyShowView(config, image, counters, what), ...(id === undefined ? {} : { id }) };
      const pieces = drain(await streamed(handler, { action: "SHOW", dry_run: dryRun, payload: { what }, ...(id === undefined ? {} : { id }) }));
      assertSame(pieces.join(""), expected, joinsOf(config, image, counters, what), true);
      assert.equal(pieces.filter((p) => p.includes("\n")).length, 1, "one newline, at the end");
      if (what !== "vifs") assert.ok(pieces.length >= 5, `705 routes in only ${pieces.length} pieces`);
    });
  }

  void test("any piece size, and an empty table, give the same text", async () => {
    const { engine, counters } = await world();
    const { config, image } = engine.snapshot();
    const whole = legacyShowView(config, image, counters, "all");
    const joins = joinsOf(config, image, counters, "all");
    for (const per of [1, 2, 255, 704, 705, 706]) {
      const snap = ShowSnapshot.take(config, image, counters, "all");
      assertSame([...showResultPieces(snap, counters, per)].join(""), whole, joins, false);
    }
    const empty = emptyConfig();
    const none = ShowSnapshot.take(empty, { vifs: new Map(), mfcs: new Map() }, counters, "all");
    assertSame([...showResultPieces(none, counters, 3)].join(""), { vifs: [], routes: [] }, joinsOf(empty, { vifs: new Map(), mfcs: new Map() }, counters, "all"), false);
  });

  void test("pieces are made only when asked for: counters are read piece by piece", async () => {
    const { handler, counters } = await world();
    const answer = await streamed(handler, { action: "SHOW", payload: { what: "routes" } });
    assert.equal(counters.sgReads, 0, "route counters read before the first piece was asked for");
    answer.next(); // the envelope
    answer.next(); // `{"routes":[`
    answer.next(); // the first 256 routes
    assert.ok(counters.sgReads > 0 && counters.sgReads <= 256, `${counters.sgReads} counter reads for one piece`);
  });

  void test("a transaction committed while the answer is written does not change it", async () => {
    const { engine, handler, counters } = await world();
    const { config, image } = engine.snapshot();
    const expected = { status: "ok", dry_run: false, changes: [], result: legacyShowView(config, image, counters, "all") };
    const joins = joinsOf(config, image, counters, "all");
    const answer = await streamed(handler, { action: "SHOW" });
    const pieces = [answer.next(), answer.next(), answer.next()];
    // Routes the rest of the answer has not reached yet: one removed, one replaced, one added, and
    // a pinned VIF removed (a full plan: the image is rebuilt).
    await engine.transact([
      parseOp("DEL_MFC", { source: "10.0.2.1", group: "239.1.2.186" }),
      parseOp("REPLACE_MFC", { source: "10.0.0.1", group: "239.1.2.100", iif: "e0", oifs: ["e2"] }),
      parseOp("ADD_MFC", { source: "10.0.0.1", group: "239.1.2.255", iif: "e0", oifs: ["e2"] }),
    ], false);
    await engine.transact([parseOp("DEL_VIF", { ifname: "nosuch0" })], false);
    assert.equal(engine.snapshot().config.routes.has(routeKey("10.0.2.1", "239.1.2.186")), false, "the change did not commit");
    pieces.push(...drain(answer));
    assertSame(pieces.join(""), expected, joins, true);
  });
});
