/**
 * Memory at 100 000 routes: routes alike share one frozen oif list (model/oif_lists.ts: a state
 * file with its journal, requests) and one frozen oifs/ttls pair in the kernel image (EntryShapes in
 * engine/realize.ts). Sharing must never blur routes that differ: iif, any-source, family, a TTL, a
 * VIF threshold or which oifs have a VIF each make another entry.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { emptyImage } from "../../src/engine/image.js";
import { realize } from "../../src/engine/realize.js";
import { OifLists } from "../../src/model/oif_lists.js";
import { emptyConfig, routeKey, type Route } from "../../src/model/types.js";
import { parseBatch, parseOp } from "../../src/protocol/schema.js";
import { configFromJson, parseRecord } from "../../src/state/format.js";
import { FileStateStore } from "../../src/state/store.js";
import { SimFs, type Files } from "../support/sim_fs.js";
import { STATE } from "../support/store_world.js";
import { FakeLinks } from "../support/fake_kernel.js";

const oifs = (...names: (string | [string, number])[]): Route["oifs"] =>
  names.map((n) => (typeof n === "string" ? { ifname: n, ttl: 1 } : { ifname: n[0], ttl: n[1] }));

void describe("OifLists", () => {
  void test("equal lists become one frozen copy; a different name, TTL or order does not", () => {
    const lists = new OifLists();
    const a = lists.intern(oifs("eth1", "eth2"));
    assert.equal(lists.intern(oifs("eth1", "eth2")), a);
    assert.ok(Object.isFrozen(a) && a.every((o) => Object.isFrozen(o)));
    assert.throws(() => { (a as { ifname: string; ttl: number }[]).push({ ifname: "x", ttl: 1 }); }, TypeError);
    assert.notEqual(lists.intern(oifs("eth1", ["eth2", 2])), a);
    assert.notEqual(lists.intern(oifs("eth2", "eth1")), a);
    assert.notEqual(lists.intern(oifs("eth1")), a);
    assert.deepEqual(lists.intern(oifs("eth1", ["eth2", 2])), oifs("eth1", ["eth2", 2]));
  });
});

void describe("one oif list per distinct list, wherever routes come from", () => {
  const plain = (group: string, ttl = 1): object => ({ source: "10.0.0.1", group, iif: "eth0", oifs: [{ ifname: "eth1", ttl }] });

  void test("a state file", () => {
    const { config } = configFromJson({ format: "mfc_daemon-state", version: 1, seq: 1, vifs: [], routes: [plain("239.1.1.1"), plain("239.1.1.2"), plain("239.1.1.3", 7)] });
    const [a, b, c] = [...config.routes.values()];
    assert.equal(a?.oifs, b?.oifs);
    assert.notEqual(a?.oifs, c?.oifs);
    assert.equal(c?.oifs[0]?.ttl, 7);
  });

  void test("a journal record", () => {
    const rec = parseRecord({ seq: 2, set: [plain("239.1.1.1"), plain("239.1.1.2")], del: [], vifs_set: [], vifs_del: [] });
    assert.equal(rec.set[0]?.oifs, rec.set[1]?.oifs);
  });

  void test("a restart: a route the journal added shares the list of a route of the snapshot", async () => {
    const files: Files = new Map([
      [STATE, Buffer.from(JSON.stringify({ format: "mfc_daemon-state", version: 1, seq: 1, vifs: [], routes: [plain("239.1.1.1")] }) + "\n")],
      [`${STATE}.journal`, Buffer.from(JSON.stringify({ seq: 2, set: [plain("239.1.1.2")], del: [], vifs_set: [], vifs_del: [] }) + "\n")],
    ]);
    const loaded = await new FileStateStore(STATE, new SimFs(files)).load();
    const [a, b] = [...(loaded?.routes.values() ?? [])];
    assert.ok(a && b, "both routes restored");
    assert.equal(a.oifs, b.oifs);
  });

  void test("an APPLY and a BATCH", () => {
    const apply = parseOp("APPLY", { state: { routes: [plain("239.1.1.1"), { ...plain("239.1.1.2"), oifs: ["eth1"] }] } });
    assert.equal(apply.action, "APPLY");
    if (apply.action === "APPLY") assert.equal(apply.routes[0]?.oifs, apply.routes[1]?.oifs); // "eth1" is ttl 1
    const batch = parseBatch({ operations: [{ action: "ADD_MFC", payload: plain("239.1.1.1") }, { action: "ADD_MFC", payload: plain("239.1.1.2") }] });
    const routes = batch.map((op) => (op.action === "ADD_MFC" ? op.route : undefined));
    assert.equal(routes[0]?.oifs, routes[1]?.oifs);
  });
});

void describe("realize: entries alike share their oifs and ttls", () => {
  const links = new FakeLinks(["eth0", "eth1", "eth2", "eth3"]);
  const cfg = (routes: Route[], pinned: [string, number][] = []): ReturnType<typeof emptyConfig> => {
    const c = emptyConfig();
    for (const [ifname, threshold] of pinned) c.vifs.set(ifname, { ifname, threshold });
    for (const r of routes) c.routes.set(routeKey(r.source, r.group), r);
    return c;
  };

  void test("two groups over the same interfaces: one frozen pair, right for both", () => {
    const img = realize(cfg([
      { source: "10.0.0.1", group: "239.1.1.1", iif: "eth0", oifs: oifs("eth1", ["eth2", 4]) },
      { source: "10.0.0.2", group: "239.1.1.2", iif: "eth0", oifs: oifs("eth1", ["eth2", 4]) },
    ]), emptyImage(), links);
    const [a, b] = [...img.mfcs.values()];
    assert.ok(a && b);
    assert.equal(a.ttls, b.ttls);
    assert.equal(a.oifs, b.oifs);
    assert.ok(Object.isFrozen(a.ttls) && Object.isFrozen(a.oifs));
    assert.deepEqual([...a.ttls], [0, 1, 4]);
    assert.deepEqual([a.source, a.group, b.source, b.group], ["10.0.0.1", "239.1.1.1", "10.0.0.2", "239.1.1.2"]);
  });

  void test("what tells entries apart is never shared: iif, any-source, a TTL, a threshold, a missing oif", () => {
    const same = oifs("eth2", "eth3");
    const img = realize(cfg([
      { source: "10.0.0.1", group: "239.1.1.1", iif: "eth0", oifs: same },
      { source: "10.0.0.1", group: "239.1.1.2", iif: "eth1", oifs: same },
      { source: null, group: "239.1.1.3", iif: "eth0", oifs: same },
      { source: "10.0.0.1", group: "239.1.1.4", iif: "eth0", oifs: oifs("eth2", ["eth3", 9]) },
    ], [["eth3", 5]]), emptyImage(), links);
    const e = (g: string): { parent: number; ttls: readonly number[] } => {
      const m = [...img.mfcs.values()].find((x) => x.group === g);
      assert.ok(m, g);
      return { parent: m.parent, ttls: [...m.ttls] };
    };
    // VIFs by name: eth0 0, eth1 1, eth2 2, eth3 3 (threshold 5 pinned: the stricter one wins).
    assert.deepEqual(e("239.1.1.1"), { parent: 0, ttls: [0, 0, 1, 5] });
    assert.deepEqual(e("239.1.1.2"), { parent: 1, ttls: [0, 0, 1, 5] });
    assert.deepEqual(e("239.1.1.3"), { parent: 0, ttls: [1, 0, 1, 5] });
    assert.deepEqual(e("239.1.1.4"), { parent: 0, ttls: [0, 0, 1, 9] });
    const partly = realize(cfg([{ source: "10.0.0.1", group: "239.1.1.1", iif: "eth0", oifs: oifs("eth1", "gone0") }]), emptyImage(), links);
    assert.deepEqual(partly.mfcs.get("10.0.0.1,239.1.1.1")?.oifs.map((o) => o.ifname), ["eth1"]);
  });

  void test("an IPv6 route over the same names takes the MIFs, not the VIFs", () => {
    // One list object for both families, in a row: the last-shape shortcut must look at the family.
    const eth1 = oifs("eth1");
    const img = realize(cfg([
      { source: "fd00::1", group: "ff3e::1", iif: "eth1", oifs: oifs("eth0") },
      { source: "10.0.0.1", group: "239.1.1.1", iif: "eth0", oifs: eth1 },
      { source: "fd00::1", group: "ff3e::2", iif: "eth0", oifs: eth1 },
    ]), emptyImage(), links);
    const v4 = img.mfcs.get("10.0.0.1,239.1.1.1");
    const v6 = img.mfcs.get("fd00::1,ff3e::2");
    assert.ok(v4 && v6);
    assert.notEqual(v4.ttls, v6.ttls);
    // Two tables numbered apart: eth0 and eth1 are VIFs 0, 1 and MIFs 0, 1 (by key order).
    assert.equal(img.vifs.get("eth1/6")?.family, 6);
    assert.equal(v6.oifs[0]?.vifi, img.vifs.get("eth1/6")?.vifi);
  });
});
