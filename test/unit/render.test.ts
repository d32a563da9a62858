/** src/view/render.ts (text output) and src/view/model.ts (the `show` view model). */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Image, MfcImage, VifImage } from "../../src/engine/image.js";
import { emptyImage } from "../../src/engine/image.js";
import { realize } from "../../src/engine/realize.js";
import { FakeLinks } from "../support/fake_kernel.js";
import type { SgCounters, VifCounters } from "../../src/kernel/port.js";
import { emptyConfig, routeKey, type Config, type Route } from "../../src/model/types.js";
import { buildShowView, type CounterSource, type RouteView, type VifView } from "../../src/view/model.js";
import { renderChange, renderRoute, renderShow, renderVifs } from "../../src/view/render.js";

const routeView = (over: Partial<RouteView> = {}): RouteView => ({
  source: "10.0.0.1", group: "239.1.1.1", iif: "eth0", oifs: [{ ifname: "eth1", ttl: 1 }, { ifname: "eth2", ttl: 1 }],
  packets: 10, bytes: 12000, wrong_if: 0, state: "installed", ...over,
});

const vifView = (over: Partial<VifView> = {}): VifView => ({
  family: 4, vifi: 0, ifname: "eth0", ifindex: 2, threshold: 1, pinned: false, pkts_in: 0, bytes_in: 0, pkts_out: 0, bytes_out: 0, ...over,
});

void describe("renderRoute", () => {
  void test("matches SPEC §4 exactly", () => {
    assert.equal(renderRoute(routeView()), "(10.0.0.1, 239.1.1.1)  iif eth0  oifs eth1 eth2  pkts 10  bytes 12000  wrong 0  installed");
  });
  void test("(*,G) shows *", () => {
    assert.equal(
      renderRoute(routeView({ source: null, oifs: [{ ifname: "eth1", ttl: 1 }], packets: 0, bytes: 0 })),
      "(*, 239.1.1.1)  iif eth0  oifs eth1  pkts 0  bytes 0  wrong 0  installed",
    );
  });
  void test("pending shows the reason", () => {
    assert.equal(
      renderRoute(routeView({ state: "pending", reason: "interface 'eth0' missing", packets: 0, bytes: 0 })),
      "(10.0.0.1, 239.1.1.1)  iif eth0  oifs eth1 eth2  pkts 0  bytes 0  wrong 0  pending (interface 'eth0' missing)",
    );
  });
  void test("installed with an oif that has no VIF is partial, with the reason", () => {
    assert.equal(
      renderRoute(routeView({ reason: "interface 'eth2' missing", wrong_if: 3 })),
      "(10.0.0.1, 239.1.1.1)  iif eth0  oifs eth1 eth2  pkts 10  bytes 12000  wrong 3  partial (interface 'eth2' missing)",
    );
  });
  void test("a ttl other than 1 is shown next to its interface", () => {
    assert.equal(
      renderRoute(routeView({ oifs: [{ ifname: "eth1", ttl: 1 }, { ifname: "eth2", ttl: 16 }] })),
      "(10.0.0.1, 239.1.1.1)  iif eth0  oifs eth1 eth2(ttl 16)  pkts 10  bytes 12000  wrong 0  installed",
    );
  });
});

void describe("renderVifs / renderShow", () => {
  const vifs = [
    vifView({ pkts_in: 5, bytes_in: 500 }),
    vifView({ vifi: 1, ifname: "longername0", ifindex: 13, threshold: 64, pinned: true, pkts_out: 123456, bytes_out: 99999999 }),
    vifView({ vifi: null, ifname: "eth9", ifindex: null, pinned: true }),
  ];
  void test("the VIF table is aligned: every column starts where its header does", () => {
    const lines = renderVifs(vifs);
    assert.deepEqual(lines, [
      "vif  ifname       ifindex  thresh  kind    pkts_in  bytes_in  pkts_out  bytes_out",
      "0    eth0         2        1       auto    5        500       0         0",
      "1    longername0  13       64      pinned  0        0         123456    99999999",
      "-    eth9         missing  1       pinned  0        0         0         0",
    ]);
    const starts = (l: string): number[] => [...l.matchAll(/(?:^|(?<= {2}))\S/g)].map((m) => m.index);
    for (const l of lines.slice(1)) assert.deepEqual(starts(l), starts(lines[0] as string), l);
  });
  void test("no trailing spaces", () => {
    for (const l of renderVifs([vifView({ ifname: "a-very-long-if0" })])) assert.equal(l, l.trimEnd());
  });
  void test("show prints VIFs, a blank line, then routes; empty parts say so", () => {
    const out = renderShow({ vifs: [vifs[0] as VifView], routes: [routeView()] }).split("\n");
    assert.equal(out.length, 4);
    assert.match(out[0] as string, /^vif\s+ifname/);
    assert.equal(out[2], "");
    assert.equal(out[3], renderRoute(routeView()));
    assert.equal(renderShow({ vifs: [], routes: [] }), "no VIFs\n\nno routes");
    assert.equal(renderShow({ routes: [] }), "no routes");
    assert.equal(renderShow({ vifs: [] }), "no VIFs");
    assert.equal(renderShow({ routes: [routeView(), routeView({ group: "239.1.1.2" })] }).split("\n").length, 2);
  });
});

void describe("renderChange", () => {
  const vif = { vifi: 3, ifname: "eth1", ifindex: 7, threshold: 2 };
  const mfc = { source: "10.0.0.1", group: "239.1.1.1", iif: "eth0", oifs: [{ ifname: "eth1", ttl: 1 }, { ifname: "eth2", ttl: 5 }] };
  const cases: [Record<string, unknown>, string][] = [
    [{ action: "add_vif", ...vif }, "add vif 3 eth1 (ifindex 7, threshold 2)"],
    [{ action: "del_vif", ...vif }, "del vif 3 eth1 (ifindex 7, threshold 2)"],
    [{ action: "add_mfc", ...mfc }, "add mfc (10.0.0.1, 239.1.1.1) iif eth0 oifs eth1 eth2(ttl 5)"],
    [{ action: "del_mfc", ...mfc, source: null }, "del mfc (*, 239.1.1.1) iif eth0 oifs eth1 eth2(ttl 5)"],
    [{ action: "replace_mfc", ...mfc, oifs: [{ ifname: "eth3", ttl: 1 }] }, "replace mfc (10.0.0.1, 239.1.1.1) iif eth0 oifs eth3"],
  ];
  for (const [change, text] of cases) {
    void test(String(change.action), () => assert.equal(renderChange(change), text));
  }
});

/** A CounterSource that answers per (origin, group) / vifi and records what it was asked. */
class StubCounters implements CounterSource {
  readonly sgAsked: string[] = [];
  readonly vifAsked: number[] = [];
  constructor(private readonly sg: Record<string, SgCounters>, private readonly vif: Record<number, VifCounters>) {}
  sgCounters(origin: string, group: string): SgCounters | undefined {
    this.sgAsked.push(`${origin},${group}`);
    return this.sg[`${origin},${group}`];
  }
  vifCounters(family: 4 | 6, vifi: number): VifCounters | undefined {
    this.vifAsked.push(vifi);
    return family === 4 ? this.vif[vifi] : undefined;
  }
}

function configOf(routes: Route[], pinned: [string, number][] = []): Config {
  const c = emptyConfig();
  for (const [ifname, threshold] of pinned) c.vifs.set(ifname, { ifname, threshold });
  for (const r of routes) c.routes.set(routeKey(r.source, r.group), r);
  return c;
}

const r = (source: string | null, group: string, iif = "eth0", oifs = ["eth1"]): Route => ({
  source, group, iif, oifs: oifs.map((ifname) => ({ ifname, ttl: 1 })),
});

void describe("buildShowView", () => {
  void test("routes sort by group, then source (numerically, (*,G) first)", () => {
    const config = configOf([
      r("10.0.0.2", "239.1.1.10"), r("9.0.0.1", "239.1.1.10"), r(null, "239.1.1.10"),
      r("10.0.0.1", "239.1.1.9"), r("192.168.0.1", "224.0.1.1"),
    ]);
    const view = buildShowView(config, emptyImage(), new StubCounters({}, {}), "routes");
    assert.deepEqual(view.routes?.map((x) => `${x.source ?? "*"},${x.group}`), [
      "192.168.0.1,224.0.1.1", "10.0.0.1,239.1.1.9", "*,239.1.1.10", "9.0.0.1,239.1.1.10", "10.0.0.2,239.1.1.10",
    ]);
    assert.equal(view.vifs, undefined, "what=routes has no vifs");
  });

  void test("state, pending reason and counters", () => {
    const links = new FakeLinks(["eth0", "eth1", "eth2"]);
    const config = configOf([
      r("10.0.0.1", "239.1.1.1", "eth0", ["eth1", "eth2"]),
      r(null, "239.1.1.2", "eth0", ["eth1"]),
      r("10.0.0.1", "239.1.1.3", "eth9", ["eth1"]),
      r("10.0.0.1", "239.1.1.4", "eth0", ["eth1", "eth8"]),
    ]);
    const image = realize(config, emptyImage(), links);
    const counters = new StubCounters(
      { "10.0.0.1,239.1.1.1": { packets: 10, bytes: 12000, wrongIf: 2 }, "0.0.0.0,239.1.1.2": { packets: 3, bytes: 300, wrongIf: 0 } },
      {},
    );
    const view = buildShowView(config, image, counters, "routes");
    const [a, b, c, d] = view.routes ?? [];
    assert.deepEqual(a, {
      source: "10.0.0.1", group: "239.1.1.1", iif: "eth0", oifs: [{ ifname: "eth1", ttl: 1 }, { ifname: "eth2", ttl: 1 }],
      packets: 10, bytes: 12000, wrong_if: 2, state: "installed",
    });
    assert.equal(b?.packets, 3, "(*,G) counters are asked for origin 0.0.0.0");
    assert.equal(b?.state, "installed");
    assert.deepEqual({ state: c?.state, reason: c?.reason, packets: c?.packets }, { state: "pending", reason: "interface 'eth9' missing", packets: 0 });
    assert.deepEqual({ state: d?.state, reason: d?.reason }, { state: "installed", reason: "interface 'eth8' missing" });
    assert.ok(!counters.sgAsked.includes("10.0.0.1,239.1.1.3"), "no counters asked for a pending route");
    assert.ok(counters.sgAsked.includes("0.0.0.0,239.1.1.2"));
  });

  void test("counters the kernel does not know read as 0", () => {
    const links = new FakeLinks(["eth0", "eth1"]);
    const config = configOf([r("10.0.0.1", "239.1.1.1")]);
    const view = buildShowView(config, realize(config, emptyImage(), links), new StubCounters({}, {}), "all");
    assert.deepEqual(view.routes?.map((x) => [x.packets, x.bytes, x.wrong_if]), [[0, 0, 0]]);
    assert.deepEqual(view.vifs?.map((x) => [x.pkts_in, x.bytes_in, x.pkts_out, x.bytes_out]), [[0, 0, 0, 0], [0, 0, 0, 0]]);
  });

  void test("VIFs: installed by number, then missing by name; pinned and threshold from the Config", () => {
    const vifs = new Map<string, VifImage>([
      ["eth1", { family: 4, vifi: 0, ifname: "eth1", ifindex: 3, threshold: 1 }],
      ["eth0", { family: 4, vifi: 1, ifname: "eth0", ifindex: 2, threshold: 4 }],
    ]);
    const image: Image = { vifs, mfcs: new Map<string, MfcImage>() };
    const config = configOf([r("10.0.0.1", "239.1.1.1", "eth0", ["eth1", "zz0"])], [["eth0", 4], ["ab0", 7]]);
    const counters = new StubCounters({}, { 1: { pktsIn: 9, bytesIn: 900, pktsOut: 0, bytesOut: 0 } });
    const view = buildShowView(config, image, counters, "vifs");
    assert.equal(view.routes, undefined, "what=vifs has no routes");
    assert.deepEqual(view.vifs, [
      { family: 4, vifi: 0, ifname: "eth1", ifindex: 3, threshold: 1, pinned: false, pkts_in: 0, bytes_in: 0, pkts_out: 0, bytes_out: 0 },
      { family: 4, vifi: 1, ifname: "eth0", ifindex: 2, threshold: 4, pinned: true, pkts_in: 9, bytes_in: 900, pkts_out: 0, bytes_out: 0 },
      { family: 4, vifi: null, ifname: "ab0", ifindex: null, threshold: 7, pinned: true, pkts_in: 0, bytes_in: 0, pkts_out: 0, bytes_out: 0 },
      { family: 4, vifi: null, ifname: "zz0", ifindex: null, threshold: 1, pinned: false, pkts_in: 0, bytes_in: 0, pkts_out: 0, bytes_out: 0 },
    ]);
    assert.deepEqual(counters.vifAsked.sort(), [0, 1], "counters only for installed VIFs");
  });

  void test("renders end to end", () => {
    const links = new FakeLinks(["eth0", "eth1", "eth2"]);
    const config = configOf([r("10.0.0.1", "239.1.1.1", "eth0", ["eth1", "eth2"])]);
    const image = realize(config, emptyImage(), links);
    const counters = new StubCounters({ "10.0.0.1,239.1.1.1": { packets: 10, bytes: 12000, wrongIf: 0 } }, {});
    const text = renderShow(buildShowView(config, image, counters, "routes"));
    assert.equal(text, "(10.0.0.1, 239.1.1.1)  iif eth0  oifs eth1 eth2  pkts 10  bytes 12000  wrong 0  installed");
  });
});

void describe("summarizeShow / renderStats", () => {
  void test("totals the routes of a SHOW view and names the busiest flows", async () => {
    const { summarizeShow } = await import("../../src/view/model.js");
    const { renderStats } = await import("../../src/view/render.js");
    const route = (group: string, packets: number, state: "installed" | "pending" = "installed") => ({
      source: "10.0.0.1", group, iif: "eth0", oifs: [{ ifname: "eth1", ttl: 1 }], packets, bytes: packets * 100, wrong_if: 1, state,
    });
    const vif = (vifi: number | null) => ({ family: 4 as const, vifi, ifname: `e${String(vifi)}`, ifindex: vifi, threshold: 1, pinned: false, pkts_in: 0, bytes_in: 0, pkts_out: 0, bytes_out: 0 });
    const stats = summarizeShow({ routes: [route("239.1.1.1", 5), route("239.1.1.2", 50), route("239.1.1.3", 0, "pending")], vifs: [vif(0), vif(1), vif(null)] });
    assert.deepEqual({ ...stats, busiest: stats.busiest.map((b) => b.group) }, {
      routes: 3, installed: 2, partial: 0, pending: 1, packets: 55, bytes: 5500, wrong_if: 3, vifs: 2, mifs: 0, vif_limit: 32,
      busiest: ["239.1.1.2", "239.1.1.1"],
    });
    assert.equal(renderStats(stats).split("\n")[0], "routes 3  installed 2  pending 1");
    assert.match(renderStats(stats), /^ {2}\(10\.0\.0\.1, 239\.1\.1\.2\) {2}pkts 50 {2}bytes 5000$/m);
    const partial = summarizeShow({ routes: [{ ...route("239.1.1.1", 5), reason: "interface 'eth1' missing" }, route("239.1.1.2", 0)] });
    assert.equal(partial.partial, 1);
    assert.equal(renderStats(partial).split("\n")[0], "routes 2  installed 2 (partial 1)  pending 0");
  });
});

void describe("renderCheck / renderStatus / renderTransaction", () => {
  void test("render what the CLI prints for check, status and transactions", async () => {
    const { renderCheck, renderStatus, renderTransaction } = await import("../../src/view/render.js");
    assert.equal(renderCheck(3, []), "checked 3 route(s): no problems found");
    assert.equal(
      renderCheck(1, [{ severity: "error", code: "IF_DOWN", route: "(*, 239.1.1.1)", message: "input interface eth0 is down", fix: "ip link set eth0 up" }]),
      "checked 1 route(s): 1 finding(s)\nerror: IF_DOWN (*, 239.1.1.1): input interface eth0 is down\n  fix: ip link set eth0 up",
    );
    assert.equal(renderStatus({ version: "0.1.0", pid: 7, degraded: null }), "version: 0.1.0\npid: 7\ndegraded: -");
    const add = { action: "add_vif", vifi: 0, ifname: "eth0", ifindex: 2, threshold: 1 };
    assert.equal(renderTransaction([add], false), undefined, "a real change prints nothing, like ip");
    assert.equal(renderTransaction([], true), "dry run: no kernel changes needed");
    assert.equal(renderTransaction([add], true), "dry run: 1 kernel change(s) would be made:\n  add vif 0 eth0 (ifindex 2, threshold 1)");
    assert.equal(
      renderTransaction([add], true, { added: 1, replaced: 0, removed: 2, unchanged: 3 }),
      "dry run: would apply: 1 added, 0 replaced, 2 removed, 3 unchanged\n  add vif 0 eth0 (ifindex 2, threshold 1)",
    );
    assert.equal(renderTransaction([add], false, { added: 1, replaced: 0, removed: 0, unchanged: 0 }), "applied: 1 added, 0 replaced, 0 removed, 0 unchanged");
  });
});
