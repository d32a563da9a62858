/**
 * IPv6 (SPEC §7) in the pure parts: address text and its canonical form, the rules of groups and
 * sources, one engine for both families (VIFs and MIFs numbered apart, 32 of each), `-4`/`-6` on
 * the CLI, and the state file. FakeKernel here; the real kernel in test/e2e/ipv6.test.ts.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { isIPv6 } from "node:net";
import { Engine } from "../../src/engine/engine.js";
import { MfcError } from "../../src/errors/codes.js";
import { checkGroup6, checkRouteGroup6, checkSource6, formatIpv6, parseIpv6 } from "../../src/model/ipv6.js";
import { parseOp, type Op } from "../../src/protocol/schema.js";
import { configFromJson, configToJson } from "../../src/state/format.js";
import { buildShowView, summarizeShow } from "../../src/view/model.js";
import { renderShow } from "../../src/view/render.js";
import { UsageError, parseBatchFile, parseCommand, withFamily } from "../../src/cli/grammar.js";
import { FakeKernel, FakeLinks } from "../support/fake_kernel.js";
import { MemoryStore } from "../support/memory_store.js";
import { code } from "../support/outcome.js";

function world(names = ["e0", "e1", "e2"]): { engine: Engine; kernel: FakeKernel; links: FakeLinks; store: MemoryStore } {
  const links = new FakeLinks(names);
  const kernel = new FakeKernel(links);
  const store = new MemoryStore();
  return { engine: new Engine(kernel, links, store, () => undefined, () => undefined), kernel, links, store };
}

const add = (source: string | null, group: string, iif = "e0", oifs: string[] = ["e1"]): Op => parseOp("ADD_MFC", { source, group, iif, oifs });

void describe("IPv6 text", () => {
  void test("parse agrees with node:net on valid and invalid text, and formats RFC 5952", () => {
    const cases = ["::", "::1", "1::", "ff3e::1", "FF3E:0::1", "2001:db8:0:0:1:0:0:1", "1:2:3:4:5:6:7:8", "::ffff:1.2.3.4", "1:2:3:4:5:6:7::",
      ":::", "1:2", "1:2:3:4:5:6:7:8:9", "12345::", "1::2::3", ":1::", "1:", "::1.2.3", "g::", "fe80::1%eth0", "ff3e:1.2.3.4::", "1.2.3.4::", "::1.2.3.4:1", "1:2:3:4:5:6:1.2.3.4", "1::1.2.3.4"];
    for (const c of cases) assert.equal(parseIpv6(c) !== undefined, isIPv6(c) && !c.includes("%"), c);
    const canon = (t: string): string => formatIpv6(parseIpv6(t) as Uint8Array);
    assert.equal(canon("FF3E:0::1"), "ff3e::1");
    assert.equal(canon("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1", "the first of two equal zero runs");
    assert.equal(canon("1:0:2:3:4:5:6:7"), "1:0:2:3:4:5:6:7", "one zero group is not shortened");
    assert.equal(canon("0:0:0:0:0:0:0:0"), "::");
  });

  void test("groups: ff00::/8 of scope 3 and more; sources: routable unicast; both returned canonical", () => {
    assert.equal(checkGroup6("FF3E:0::1"), "ff3e::1");
    assert.equal(checkGroup6("ff05::2"), "ff05::2");
    for (const [bad, why] of [["ff02::1", /scope 2/], ["ff01::1", /scope 1/], ["ff00::1", /scope 0/], ["2001:db8::1", /not a multicast/], ["zz::", /not an IPv6/]] as const) {
      assert.throws(() => checkGroup6(bad), why, bad);
    }
    assert.equal(checkSource6("2001:DB8::0:1"), "2001:db8::1");
    for (const [bad, why] of [["::", /not a unicast/], ["::1", /not a unicast/], ["ff3e::1", /not a unicast/], ["fe80::1", /link-local/], ["::ffff:10.0.0.1", /IPv4-mapped/]] as const) {
      assert.throws(() => checkSource6(bad), why, bad);
    }
  });

  void test("group ranges: the network address, /8-/127, inside ff00::/8, not wholly of scope 0-2", () => {
    assert.equal(checkRouteGroup6("FF3E::/96"), "ff3e::/96");
    assert.equal(checkRouteGroup6("ff00::/8"), "ff00::/8", "a range wider than one scope is allowed");
    assert.throws(() => checkRouteGroup6("ff3e::1/96"), /host bits set: the range starts at ff3e::\/96/);
    assert.throws(() => checkRouteGroup6("ff02::/16"), /scope 2/);
    assert.throws(() => checkRouteGroup6("fe00::/7"), /not a multicast range/);
    assert.throws(() => checkRouteGroup6("ff3e::/128"), /one group/);
  });

  void test("requests: one family per route and join; IPv6 oifs take ttl 1 only, MIFs threshold 1 only", () => {
    assert.deepEqual(parseOp("ADD_MFC", { source: "2001:DB8::1", group: "FF3E::1", iif: "e0", oifs: ["e1"] }).action, "ADD_MFC");
    const r = parseOp("ADD_MFC", { source: "2001:DB8::1", group: "FF3E::1", iif: "e0", oifs: ["e1"] });
    assert.ok(r.action === "ADD_MFC" && r.route.source === "2001:db8::1" && r.route.group === "ff3e::1", "stored canonical");
    assert.throws(() => parseOp("ADD_MFC", { source: "10.0.0.1", group: "ff3e::1", iif: "e0", oifs: ["e1"] }), /different address families/);
    assert.throws(() => parseOp("JOIN", { ifname: "e0", group: "239.1.1.1", source: "2001:db8::1" }), /different address families/);
    assert.throws(() => parseOp("ADD_MFC", { group: "ff3e::1", iif: "e0", oifs: [{ ifname: "e1", ttl: 2 }] }), /ttl 2 cannot apply to IPv6/);
    assert.throws(() => parseOp("ADD_VIF", { ifname: "e0", family: 6, threshold: 3 }), /a MIF \(IPv6\) has no threshold/);
    assert.deepEqual(parseOp("ADD_VIF", { ifname: "e0", family: 6 }), { action: "ADD_VIF", vif: { ifname: "e0", threshold: 1, family: 6 } });
  });
});

void describe("one engine for both families", () => {
  void test("VIFs and MIFs are numbered in two tables: the same device holds VIF 0 and MIF 0", async () => {
    const w = world();
    await w.engine.transact([add("10.0.0.1", "239.1.1.1"), add("2001:db8::1", "ff3e::1"), add(null, "ff3e::2", "e0", ["e1", "e2"])], false);
    assert.deepEqual(w.kernel.dump().vifs.map((v) => v[0]), [0, 1]);
    assert.deepEqual(w.kernel.dump().mifs.map((v) => v[0]), [0, 1, 2]);
    const star = w.kernel.mfcs.get("::,ff3e::2");
    assert.ok(star, "the IPv6 (*,G) entry has origin ::");
    assert.equal(star.ttls[star.parent], 1, "(*,G): the parent MIF is in the set, like IPv4's ttls[parent]");
    const view = buildShowView(w.engine.snapshot().config, w.engine.snapshot().image, w.kernel, "all");
    assert.deepEqual(view.vifs?.map((v) => `${v.family}:${v.vifi ?? "-"}:${v.ifname}`), ["4:0:e0", "4:1:e1", "6:0:e0", "6:1:e1", "6:2:e2"]);
    assert.deepEqual(view.routes?.map((r) => r.group), ["239.1.1.1", "ff3e::1", "ff3e::2"], "IPv4 first, then IPv6 in address order");
    const text = renderShow(view);
    assert.match(text, /^vif +ifname/m);
    assert.match(text, /^mif +ifname/m);
    assert.equal(summarizeShow(view).mifs, 3);
    assert.deepEqual(buildShowView(w.engine.snapshot().config, w.engine.snapshot().image, w.kernel, "routes", 6).routes?.map((r) => r.group), ["ff3e::1", "ff3e::2"]);
  });

  void test("33 MIFs are refused (E_VIF_LIMIT naming MIFs) while 32 MIFs and 32 VIFs fit side by side", async () => {
    const names = Array.from({ length: 33 }, (_, i) => `w${i}`);
    const w = world(names);
    const oifs = names.slice(1, 32);
    await w.engine.transact([add(null, "ff3e::1", "w0", oifs), add(null, "239.1.1.1", "w0", oifs)], false);
    assert.equal(w.kernel.mifs.size, 32);
    assert.equal(w.kernel.vifs.size, 32);
    const calls = w.kernel.calls;
    await assert.rejects(w.engine.transact([add(null, "ff3e::2", "w0", ["w32"])], false), (err: MfcError) =>
      err.code === "E_VIF_LIMIT" && /more than 32 MIFs/.test(err.message) && err.details?.family === 6);
    assert.equal(w.kernel.calls, calls, "refused before any kernel call");
  });

  void test("a mixed transaction fails as a whole: an IPv6 step refused by the kernel undoes the IPv4 steps before it", async () => {
    const w = world();
    w.kernel.failAt({ at: 2 }); // add_vif e0 (VIF), then add_vif e0/6 (MIF): the MIF fails
    assert.equal(await code(w.engine.transact([add("10.0.0.1", "239.1.1.1"), add("2001:db8::1", "ff3e::1")], false)), "E_KERNEL");
    assert.deepEqual(w.kernel.dump(), { vifs: [], mifs: [], mfcs: [] });
    assert.equal(w.engine.snapshot().config.routes.size, 0);
  });

  void test("-6 flush and -6 apply touch only IPv6; an apply of one family refuses the other's entries", async () => {
    const w = world();
    await w.engine.transact([add("10.0.0.1", "239.1.1.1"), add("2001:db8::1", "ff3e::1"), parseOp("ADD_VIF", { ifname: "e2", family: 6 })], false);
    await w.engine.transact([parseOp("APPLY", { family: 6, state: { routes: [{ source: null, group: "ff3e::9", iif: "e1", oifs: ["e2"] }] } })], false);
    assert.deepEqual([...w.engine.snapshot().config.routes.keys()].sort(), ["*,ff3e::9", "10.0.0.1,239.1.1.1"]);
    assert.deepEqual([...w.engine.snapshot().config.vifs.keys()], [], "the pinned MIF was not in the document");
    assert.equal(await code(w.engine.transact([parseOp("APPLY", { family: 6, state: { routes: [{ group: "239.2.2.2", iif: "e1", oifs: ["e2"] }] } })], false)), "E_INVALID_ARGUMENT");
    await w.engine.transact([parseOp("FLUSH", { family: 6 })], false);
    assert.deepEqual([...w.engine.snapshot().config.routes.keys()], ["10.0.0.1,239.1.1.1"]);
    assert.deepEqual(w.kernel.dump().mifs, []);
    assert.equal(w.kernel.dump().vifs.length, 2);
  });

  void test("a pinned MIF and a VIF of one device are two entries: vif del -6 removes only the MIF", async () => {
    const w = world();
    await w.engine.transact([parseOp("ADD_VIF", { ifname: "e0" }), parseOp("ADD_VIF", { ifname: "e0", family: 6 })], false);
    assert.equal(await code(w.engine.transact([parseOp("ADD_VIF", { ifname: "e0", family: 6 })], false)), "E_VIF_EXISTS");
    await w.engine.transact([parseOp("DEL_VIF", { ifname: "e0", family: 6 })], false);
    assert.deepEqual([w.kernel.vifs.size, w.kernel.mifs.size], [1, 0]);
    assert.equal(await code(w.engine.transact([parseOp("DEL_VIF", { ifname: "e0", family: 6 })], false)), "E_VIF_NOT_FOUND");
  });
});

void describe("state file and CLI", () => {
  void test("a pinned MIF is stored with family 6 and read back as one; an IPv4 VIF as before", () => {
    const { config } = configFromJson(JSON.parse(JSON.stringify(configToJson({
      vifs: new Map([["e0", { ifname: "e0", threshold: 2 }], ["e0/6", { ifname: "e0", threshold: 1, family: 6 as const }]]),
      routes: new Map([["*,ff3e::1", { source: null, group: "ff3e::1", iif: "e0", oifs: [{ ifname: "e1", ttl: 1 }] }]]),
      joins: new Map(),
    }, 1))));
    assert.deepEqual([...config.vifs], [["e0", { ifname: "e0", threshold: 2 }], ["e0/6", { ifname: "e0", threshold: 1, family: 6 }]]);
    assert.throws(() => configFromJson({ format: "mfc_daemon-state", version: 1, vifs: [], routes: [{ source: "10.0.0.1", group: "ff3e::1", iif: "e0", oifs: [{ ifname: "e1", ttl: 1 }] }] }), /address family/);
  });

  void test("-4/-6: family on show, check, vif, flush, apply; other-family addresses refused; batch lines each", () => {
    assert.deepEqual(withFamily(parseCommand(["show", "routes"]), 6).payload, { what: "routes", family: 6 });
    assert.deepEqual(withFamily(parseCommand(["vif", "add", "dev", "e0"]), 6).payload, { ifname: "e0", family: 6 });
    assert.deepEqual(withFamily(parseCommand(["flush"]), 4).payload, { family: 4 });
    assert.throws(() => withFamily(parseCommand(["add", "group", "239.1.1.1", "iif", "e0", "oif", "e1"]), 6), UsageError);
    assert.throws(() => withFamily(parseCommand(["status"]), 6), /does not apply/);
    assert.equal(withFamily(parseCommand(["add", "group", "ff3e::1", "iif", "e0", "oif", "e1"]), 6).action, "ADD_MFC");
    assert.deepEqual(parseBatchFile("vif del dev e0\nflush\n", 6).operations.map((o) => o.payload), [{ ifname: "e0", family: 6 }, { family: 6 }]);
    assert.throws(() => parseBatchFile("add group 239.1.1.1 iif e0 oif e1\n", 6), /line 1: -6: group '239\.1\.1\.1' is not an IPv6 address/);
  });
});
