/** src/protocol/schema.ts: untrusted requests -> typed operations, or a precise error. */
import { afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { MfcError, type ErrorCode } from "../../src/errors/codes.js";
import { FakeLinks } from "../support/fake_kernel.js";
import { realize } from "../../src/engine/realize.js";
import { emptyImage } from "../../src/engine/image.js";
import { emptyConfig, routeKey } from "../../src/model/types.js";
import fc from "fast-check";
import * as v from "valibot";
import { ApplyIn, parseBatch, parseEnvelope, parseOp, parseQuery, plainApply, type Op } from "../../src/protocol/schema.js";
import { buildShowView, type CounterSource, type ShowView } from "../../src/view/model.js";

/** Asserts fn throws an MfcError with this code whose message contains every `mentions`. */
function rejects(fn: () => unknown, code: ErrorCode, ...mentions: string[]): MfcError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof MfcError, `expected MfcError ${code}, got ${caught instanceof Error ? `${caught.name}: ${caught.message}` : "no error"}`);
  assert.equal(caught.code, code, caught.message);
  for (const m of mentions) assert.ok(caught.message.includes(m), `message should mention ${JSON.stringify(m)}: ${caught.message}`);
  return caught;
}

const route = { source: "10.0.0.1", group: "239.1.1.1", iif: "eth0", oifs: ["eth1"] };

function polluted(): boolean {
  const probe = {} as Record<string, unknown>;
  return "polluted" in probe || "ttl" in probe || "x" in probe;
}

void describe("parseOp: ADD_VIF / DEL_VIF", () => {
  void test("a valid VIF, default threshold 1", () => {
    assert.deepEqual(parseOp("ADD_VIF", { ifname: "eth0" }), { action: "ADD_VIF", vif: { ifname: "eth0", threshold: 1 } });
    assert.deepEqual(parseOp("ADD_VIF", { ifname: "eth0", threshold: 255 }), { action: "ADD_VIF", vif: { ifname: "eth0", threshold: 255 } });
    assert.deepEqual(parseOp("DEL_VIF", { ifname: "br-lan.10" }), { action: "DEL_VIF", ifname: "br-lan.10", family: 4 });
  });

  void test("missing, extra and mistyped fields name the field", () => {
    rejects(() => parseOp("ADD_VIF", {}), "E_INVALID_ARGUMENT", "'payload.ifname'");
    rejects(() => parseOp("ADD_VIF", undefined), "E_INVALID_ARGUMENT", "'payload.ifname'");
    rejects(() => parseOp("ADD_VIF", { ifname: "eth0", dev: "eth1" }), "E_INVALID_ARGUMENT", "'payload.dev'");
    rejects(() => parseOp("ADD_VIF", { ifname: 5 }), "E_INVALID_ARGUMENT", "'payload.ifname'");
    rejects(() => parseOp("ADD_VIF", { ifname: "eth0", threshold: "3" }), "E_INVALID_ARGUMENT", "'payload.threshold'");
    rejects(() => parseOp("DEL_VIF", { ifname: "eth0", threshold: 1 }), "E_INVALID_ARGUMENT", "'payload.threshold'");
    rejects(() => parseOp("ADD_VIF", [] as unknown), "E_INVALID_ARGUMENT", "'payload");
  });

  for (const threshold of [0, 256, -1, 1.5, Number.NaN]) {
    void test(`threshold ${threshold} is out of range 1-255`, () => {
      rejects(() => parseOp("ADD_VIF", { ifname: "eth0", threshold }), "E_INVALID_ARGUMENT", "'payload.threshold'");
    });
  }

  const badNames = ["", "a".repeat(16), "eth/0", "eth:0", "eth 0", "eth\t0", "eth0\n", ".", ".."];
  for (const ifname of badNames) {
    void test(`interface name ${JSON.stringify(ifname)} is rejected`, () => {
      rejects(() => parseOp("ADD_VIF", { ifname }), "E_INVALID_ARGUMENT", "'payload.ifname'");
      rejects(() => parseOp("ADD_MFC", { ...route, iif: ifname }), "E_INVALID_ARGUMENT", "'payload.iif'");
      rejects(() => parseOp("ADD_MFC", { ...route, oifs: [ifname] }), "E_INVALID_ARGUMENT", "'payload.oifs.0'");
    });
  }
  void test("15-character names and names with dots or dashes are valid", () => {
    for (const ifname of ["a".repeat(15), "eth0.100", "br-lan", "...", "wg_0"]) {
      assert.deepEqual(parseOp("ADD_VIF", { ifname }), { action: "ADD_VIF", vif: { ifname, threshold: 1 } });
    }
  });
});

void describe("parseOp: ADD_MFC / REPLACE_MFC / DEL_MFC / FLUSH", () => {
  void test("oifs as plain strings get ttl 1; as objects keep their ttl", () => {
    const op = parseOp("ADD_MFC", { ...route, oifs: ["eth1", { ifname: "eth2", ttl: 5 }, { ifname: "eth3" }] });
    assert.deepEqual(op, {
      action: "ADD_MFC",
      route: { source: "10.0.0.1", group: "239.1.1.1", iif: "eth0", oifs: [{ ifname: "eth1", ttl: 1 }, { ifname: "eth2", ttl: 5 }, { ifname: "eth3", ttl: 1 }] },
    });
    assert.equal(parseOp("REPLACE_MFC", route).action, "REPLACE_MFC");
  });

  void test("source missing or null is the any-source (*,G) route", () => {
    const a = parseOp("ADD_MFC", { group: "239.1.1.1", iif: "eth0", oifs: ["eth1"] });
    const b = parseOp("ADD_MFC", { source: null, group: "239.1.1.1", iif: "eth0", oifs: ["eth1"] });
    assert.ok(a.action === "ADD_MFC" && b.action === "ADD_MFC");
    assert.equal(a.route.source, null);
    assert.deepEqual(a, b);
    assert.deepEqual(parseOp("DEL_MFC", { group: "239.1.1.1" }), { action: "DEL_MFC", source: null, group: "239.1.1.1" });
  });

  for (const ttl of [1, 128, 255]) {
    void test(`oif ttl ${ttl} is accepted`, () => {
      const op = parseOp("ADD_MFC", { ...route, oifs: [{ ifname: "eth1", ttl }] });
      assert.ok(op.action === "ADD_MFC");
      assert.equal(op.route.oifs[0]?.ttl, ttl);
    });
  }
  for (const ttl of [0, 256, 1.5, -3, "2"]) {
    void test(`oif ttl ${JSON.stringify(ttl)} is rejected`, () => {
      rejects(() => parseOp("ADD_MFC", { ...route, oifs: [{ ifname: "eth1", ttl }] }), "E_INVALID_ARGUMENT", "'payload.oifs.0.ttl'");
    });
  }

  void test("missing, extra and mistyped fields name the field", () => {
    rejects(() => parseOp("ADD_MFC", { iif: "eth0", oifs: ["eth1"] }), "E_INVALID_ARGUMENT", "'payload.group'");
    rejects(() => parseOp("ADD_MFC", { group: "239.1.1.1", oifs: ["eth1"] }), "E_INVALID_ARGUMENT", "'payload.iif'");
    rejects(() => parseOp("ADD_MFC", { group: "239.1.1.1", iif: "eth0" }), "E_INVALID_ARGUMENT", "'payload.oifs'");
    rejects(() => parseOp("ADD_MFC", { ...route, oifs: [] }), "E_INVALID_ARGUMENT", "'payload.oifs'");
    rejects(() => parseOp("ADD_MFC", { ...route, oifs: "eth1" }), "E_INVALID_ARGUMENT", "'payload.oifs'");
    rejects(() => parseOp("ADD_MFC", { ...route, oifs: Array.from({ length: 33 }, (_, i) => `e${i}`) }), "E_INVALID_ARGUMENT", "'payload.oifs'");
    rejects(() => parseOp("ADD_MFC", { ...route, group: 5 }), "E_INVALID_ARGUMENT", "'payload.group'");
    rejects(() => parseOp("ADD_MFC", { ...route, source: 10 }), "E_INVALID_ARGUMENT", "'payload.source'");
    rejects(() => parseOp("ADD_MFC", { ...route, ttl: 3 }), "E_INVALID_ARGUMENT", "'payload.ttl'");
    rejects(() => parseOp("ADD_MFC", { ...route, oifs: [{ ifname: "eth1", ttl: 2, extra: 1 }] }), "E_INVALID_ARGUMENT", "'payload.oifs.0.extra'");
    rejects(() => parseOp("DEL_MFC", { group: "239.1.1.1", iif: "eth0" }), "E_INVALID_ARGUMENT", "'payload.iif'");
    rejects(() => parseOp("FLUSH", { all: true }), "E_INVALID_ARGUMENT", "'payload.all'");
    assert.deepEqual(parseOp("FLUSH", {}), { action: "FLUSH" });
    assert.deepEqual(parseOp("FLUSH", undefined), { action: "FLUSH" });
  });

  void test("address rules give E_INVALID_ADDRESS naming the address", () => {
    rejects(() => parseOp("ADD_MFC", { ...route, group: "10.0.0.2" }), "E_INVALID_ADDRESS", "'10.0.0.2'");
    rejects(() => parseOp("ADD_MFC", { ...route, group: "224.0.0.5" }), "E_INVALID_ADDRESS", "link-local");
    rejects(() => parseOp("ADD_MFC", { ...route, source: "239.1.1.2" }), "E_INVALID_ADDRESS", "'239.1.1.2'");
    rejects(() => parseOp("ADD_MFC", { ...route, source: "*" }), "E_INVALID_ADDRESS", "'*'");
    rejects(() => parseOp("DEL_MFC", { source: "127.0.0.1", group: "239.1.1.1" }), "E_INVALID_ADDRESS", "'127.0.0.1'");
    rejects(() => parseOp("DEL_MFC", { group: "239.1.1.256" }), "E_INVALID_ADDRESS", "'239.1.1.256'");
  });
});

void describe("prototype keys", () => {
  afterEach(() => {
    assert.equal(polluted(), false, "Object.prototype must stay clean");
  });

  const payloads: [string, string, string][] = [
    ["ADD_VIF", '{"ifname":"eth0","__proto__":{"polluted":1}}', "__proto__"],
    ["ADD_VIF", '{"ifname":"eth0","constructor":{"prototype":{"polluted":1}}}', "constructor"],
    ["ADD_VIF", '{"ifname":"eth0","prototype":{"polluted":1}}', "prototype"],
    ["ADD_MFC", '{"group":"239.1.1.1","iif":"eth0","oifs":["eth1"],"__proto__":{"polluted":1}}', "__proto__"],
    ["DEL_MFC", '{"group":"239.1.1.1","constructor":{"name":"x"}}', "constructor"],
    ["FLUSH", '{"__proto__":{"polluted":1}}', "__proto__"],
    ["APPLY", '{"state":{"routes":[],"__proto__":{"polluted":1}}}', "__proto__"],
  ];
  for (const [action, json, key] of payloads) {
    void test(`${action} payload with a '${key}' key is rejected`, () => {
      rejects(() => parseOp(action, JSON.parse(json)), "E_INVALID_ARGUMENT", key);
    });
    // The daemon's path: envelope first, then the action's schema. The envelope must hand the
    // payload on untouched, so the strict schema still sees (and refuses) the key.
    void test(`${action} request with a '${key}' key in its payload is rejected through the envelope`, () => {
      const env = parseEnvelope(JSON.parse(`{"action":"${action}","payload":${json}}`));
      rejects(() => parseOp(env.action, env.payload), "E_INVALID_ARGUMENT", key);
    });
    void test(`${action} inside a BATCH with a '${key}' key is rejected`, () => {
      rejects(() => parseBatch(JSON.parse(`{"operations":[{"action":"${action}","payload":${json}}]}`)), "E_INVALID_ARGUMENT", key);
    });
  }

  void test("an oif object with a '__proto__' key is rejected", () => {
    rejects(() => parseOp("ADD_MFC", JSON.parse('{"group":"239.1.1.1","iif":"eth0","oifs":[{"ifname":"eth1","__proto__":{"ttl":9}}]}')), "E_INVALID_ARGUMENT", "'payload.oifs.0.__proto__'");
  });

  void test("request and query envelopes with prototype keys are rejected", () => {
    rejects(() => parseEnvelope(JSON.parse('{"action":"PING","__proto__":{"polluted":1}}')), "E_INVALID_ARGUMENT", "'request.__proto__'");
    rejects(() => parseEnvelope(JSON.parse('{"action":"PING","constructor":1}')), "E_INVALID_ARGUMENT", "'request.constructor'");
    rejects(() => parseQuery("PING", JSON.parse('{"__proto__":{"polluted":1}}')), "E_INVALID_ARGUMENT", "__proto__");
    rejects(() => parseQuery("SHOW", JSON.parse('{"what":"all","constructor":1}')), "E_INVALID_ARGUMENT", "constructor");
    rejects(() => parseBatch(JSON.parse('{"operations":[{"action":"FLUSH","__proto__":{"x":1}}]}')), "E_INVALID_ARGUMENT", "__proto__");
  });
});

void describe("parseEnvelope", () => {
  void test("a full request", () => {
    assert.deepEqual(parseEnvelope({ action: "ADD_VIF", dry_run: true, payload: { ifname: "eth0" }, id: 7 }), {
      action: "ADD_VIF", dry_run: true, payload: { ifname: "eth0" }, id: 7,
    });
    assert.deepEqual(parseEnvelope({ action: "PING", id: "abc" }), { action: "PING", id: "abc" });
  });
  void test("missing, extra and mistyped fields name the field", () => {
    rejects(() => parseEnvelope({}), "E_INVALID_ARGUMENT", "'request.action'");
    rejects(() => parseEnvelope({ action: 5 }), "E_INVALID_ARGUMENT", "'request.action'");
    rejects(() => parseEnvelope({ action: "PING", dry_run: "yes" }), "E_INVALID_ARGUMENT", "'request.dry_run'");
    rejects(() => parseEnvelope({ action: "PING", payload: "x" }), "E_INVALID_ARGUMENT", "'request.payload'");
    rejects(() => parseEnvelope({ action: "PING", payload: null }), "E_INVALID_ARGUMENT", "'request.payload'");
    rejects(() => parseEnvelope({ action: "PING", payload: [] }), "E_INVALID_ARGUMENT", "'request.payload'");
    rejects(() => parseEnvelope({ action: "PING", id: {} }), "E_INVALID_ARGUMENT", "'request.id'");
    rejects(() => parseEnvelope({ action: "PING", id: "x".repeat(129) }), "E_INVALID_ARGUMENT", "'request.id'");
    // JSON.parse reads 1e400 as Infinity: echoed, it would go back as null.
    rejects(() => parseEnvelope(JSON.parse('{"action":"PING","id":1e400}')), "E_INVALID_ARGUMENT", "'request.id'");
    rejects(() => parseEnvelope({ action: "PING", id: -Infinity }), "E_INVALID_ARGUMENT", "'request.id'");
    rejects(() => parseEnvelope({ action: "PING", id: NaN }), "E_INVALID_ARGUMENT", "'request.id'");
    rejects(() => parseEnvelope({ action: "PING", dryrun: true }), "E_INVALID_ARGUMENT", "'request.dryrun'");
  });
});

void describe("parseQuery", () => {
  void test("PING/STATUS take no payload; SHOW takes what", () => {
    assert.deepEqual(parseQuery("PING", undefined), { action: "PING" });
    assert.deepEqual(parseQuery("STATUS", {}), { action: "STATUS" });
    assert.deepEqual(parseQuery("SHOW", {}), { action: "SHOW", what: "all" });
    assert.deepEqual(parseQuery("SHOW", { what: "vifs" }), { action: "SHOW", what: "vifs" });
    assert.deepEqual(parseQuery("SHOW", { what: "routes" }), { action: "SHOW", what: "routes" });
  });
  void test("bad payloads name the field", () => {
    rejects(() => parseQuery("PING", { x: 1 }), "E_INVALID_ARGUMENT", "'payload.x'");
    rejects(() => parseQuery("STATUS", { verbose: true }), "E_INVALID_ARGUMENT", "'payload.verbose'");
    rejects(() => parseQuery("SHOW", { what: "mfcs" }), "E_INVALID_ARGUMENT", "'payload.what'");
    rejects(() => parseQuery("SHOW", { what: "all", x: 1 }), "E_INVALID_ARGUMENT", "'payload.x'");
  });
});

void describe("actions and BATCH", () => {
  void test("an unknown action is E_UNKNOWN_ACTION", () => {
    rejects(() => parseOp("FROB", {}), "E_UNKNOWN_ACTION", "FROB");
    rejects(() => parseOp("add_mfc", {}), "E_UNKNOWN_ACTION", "add_mfc");
    const long = rejects(() => parseOp("X".repeat(10_000), {}), "E_UNKNOWN_ACTION");
    assert.ok(long.message.length < 200, "the echoed action is truncated");
  });
  void test("known non-mutating actions are refused as operations", () => {
    rejects(() => parseOp("PING", {}), "E_INVALID_ARGUMENT", "PING");
    rejects(() => parseOp("SHOW", {}), "E_INVALID_ARGUMENT", "SHOW");
  });

  void test("a batch is parsed in order", () => {
    const ops: Op[] = parseBatch({
      operations: [
        { action: "ADD_VIF", payload: { ifname: "eth0", threshold: 2 } },
        { action: "ADD_MFC", payload: route },
        { action: "DEL_MFC", payload: { group: "239.1.1.1" } },
        { action: "FLUSH" },
      ],
    });
    assert.deepEqual(ops.map((o) => o.action), ["ADD_VIF", "ADD_MFC", "DEL_MFC", "FLUSH"]);
    assert.deepEqual(parseBatch({ operations: [] }), []);
  });

  void test("a BATCH inside a BATCH is rejected, naming the operation", () => {
    const err = rejects(() => parseBatch({ operations: [{ action: "FLUSH" }, { action: "BATCH", payload: { operations: [] } }] }), "E_INVALID_ARGUMENT", "operations[1]");
    assert.equal(err.details?.operation, 1);
  });

  void test("a bad operation in a batch says which one (details.operation, field path)", () => {
    const err = rejects(
      () => parseBatch({ operations: [{ action: "FLUSH" }, { action: "FLUSH" }, { action: "ADD_VIF", payload: { ifname: "" } }] }),
      "E_INVALID_ARGUMENT", "'payload.operations[2].payload.ifname'",
    );
    assert.equal(err.details?.operation, 2);
    const addr = rejects(() => parseBatch({ operations: [{ action: "ADD_MFC", payload: { ...route, group: "10.1.1.1" } }] }), "E_INVALID_ADDRESS", "'10.1.1.1'");
    assert.equal(addr.details?.operation, 0);
    const unknown = rejects(() => parseBatch({ operations: [{ action: "FLUSH" }, { action: "NOPE" }] }), "E_UNKNOWN_ACTION", "NOPE");
    assert.equal(unknown.details?.operation, 1);
    rejects(() => parseBatch({ operations: [{ action: "STATUS" }] }), "E_INVALID_ARGUMENT", "STATUS");
  });

  void test("batch shape errors name the field", () => {
    rejects(() => parseBatch({}), "E_INVALID_ARGUMENT", "'payload.operations'");
    rejects(() => parseBatch({ operations: {} }), "E_INVALID_ARGUMENT", "'payload.operations'");
    rejects(() => parseBatch({ operations: [{ payload: {} }] }), "E_INVALID_ARGUMENT", "'payload.operations.0.action'");
    rejects(() => parseBatch({ operations: [{ action: "FLUSH", id: 1 }] }), "E_INVALID_ARGUMENT", "'payload.operations.0.id'");
    rejects(() => parseBatch({ operations: [], dry_run: true }), "E_INVALID_ARGUMENT", "'payload.dry_run'");
  });
});

void describe("APPLY accepts what `show -j` prints", () => {
  const counters: CounterSource = {
    sgCounters: () => ({ packets: 10, bytes: 12000, wrongIf: 1 }),
    vifCounters: () => ({ pktsIn: 1, bytesIn: 2, pktsOut: 3, bytesOut: 4 }),
  };

  void test("a hand-built show view: pinned:false VIFs are not pinned, read-only fields are ignored", () => {
    const view: ShowView = {
      vifs: [
        { family: 4, vifi: 0, ifname: "eth0", ifindex: 2, threshold: 1, pinned: false, pkts_in: 5, bytes_in: 500, pkts_out: 0, bytes_out: 0 },
        { family: 4, vifi: 1, ifname: "eth1", ifindex: 3, threshold: 4, pinned: true, pkts_in: 0, bytes_in: 0, pkts_out: 5, bytes_out: 500 },
        { family: 4, vifi: null, ifname: "eth9", ifindex: null, threshold: 1, pinned: true, pkts_in: 0, bytes_in: 0, pkts_out: 0, bytes_out: 0 },
      ],
      routes: [
        { source: "10.0.0.1", group: "239.1.1.1", iif: "eth0", oifs: [{ ifname: "eth1", ttl: 1 }], packets: 10, bytes: 12000, wrong_if: 0, state: "installed" },
        { source: null, group: "239.2.2.2", iif: "eth0", oifs: [{ ifname: "eth9", ttl: 3 }], packets: 0, bytes: 0, wrong_if: 0, state: "pending", reason: "interface 'eth9' missing" },
      ],
      joins: [
        { ifname: "eth0", group: "239.1.1.1", source: null, state: "installed" },
        { ifname: "eth9", group: "239.3.3.3", source: "10.0.0.7", state: "pending", reason: "interface missing" },
      ],
    };
    const op = parseOp("APPLY", JSON.parse(JSON.stringify({ state: view })));
    assert.deepEqual(op, {
      action: "APPLY",
      vifs: [{ ifname: "eth1", threshold: 4 }, { ifname: "eth9", threshold: 1 }],
      routes: [
        { source: "10.0.0.1", group: "239.1.1.1", iif: "eth0", oifs: [{ ifname: "eth1", ttl: 1 }] },
        { source: null, group: "239.2.2.2", iif: "eth0", oifs: [{ ifname: "eth9", ttl: 3 }] },
      ],
      joins: [{ ifname: "eth0", group: "239.1.1.1", source: null }, { ifname: "eth9", group: "239.3.3.3", source: "10.0.0.7" }],
    });
  });

  void test("buildShowView output round-trips into the same Config", () => {
    const links = new FakeLinks(["eth0", "eth1", "eth2"]);
    const config = emptyConfig();
    config.vifs.set("eth2", { ifname: "eth2", threshold: 3 });
    config.vifs.set("gone0", { ifname: "gone0", threshold: 1 });
    const r1 = { source: "10.0.0.1", group: "239.1.1.1", iif: "eth0", oifs: [{ ifname: "eth1", ttl: 1 }, { ifname: "eth2", ttl: 8 }] };
    const r2 = { source: null, group: "239.1.1.2", iif: "eth1", oifs: [{ ifname: "gone0", ttl: 1 }] };
    config.routes.set(routeKey(r1.source, r1.group), r1);
    config.routes.set(routeKey(r2.source, r2.group), r2);
    const view = buildShowView(config, realize(config, emptyImage(), links), counters, "all");
    const op = parseOp("APPLY", JSON.parse(JSON.stringify({ state: view })));
    assert.ok(op.action === "APPLY");
    assert.deepEqual(new Map(op.vifs.map((v) => [v.ifname, v])), config.vifs);
    assert.deepEqual(new Map(op.routes.map((r) => [routeKey(r.source, r.group), r])), config.routes);
    // `show routes -j` has no vifs: applying it leaves no VIF pinned.
    const routesOnly = parseOp("APPLY", JSON.parse(JSON.stringify({ state: buildShowView(config, emptyImage(), counters, "routes") })));
    assert.ok(routesOnly.action === "APPLY");
    assert.deepEqual(routesOnly.vifs, []);
    assert.equal(routesOnly.routes.length, 2);
  });

  void test("bad apply payloads name the field", () => {
    rejects(() => parseOp("APPLY", {}), "E_INVALID_ARGUMENT", "'payload.state'");
    rejects(() => parseOp("APPLY", { state: { vifs: [] } }), "E_INVALID_ARGUMENT", "'payload.state.routes'");
    rejects(() => parseOp("APPLY", { state: { routes: [], extra: 1 } }), "E_INVALID_ARGUMENT", "'payload.state.extra'");
    rejects(() => parseOp("APPLY", { state: { routes: [{ ...route, colour: "red" }] } }), "E_INVALID_ARGUMENT", "'payload.state.routes.0.colour'");
    rejects(() => parseOp("APPLY", { state: { routes: [], vifs: [{ ifname: "eth0", pinned: "no" }] } }), "E_INVALID_ARGUMENT", "'payload.state.vifs.0.pinned'");
    rejects(() => parseOp("APPLY", { state: { routes: [{ ...route, packets: "10" }] } }), "E_INVALID_ARGUMENT", "'payload.state.routes.0.packets'");
    rejects(() => parseOp("APPLY", { state: { routes: [{ ...route, group: "1.1.1.1" }] } }), "E_INVALID_ADDRESS", "'1.1.1.1'");
  });
});

void describe("APPLY shortcut (plainApply) agrees with the schema it stands in for", () => {
  const value = fc.oneof(
    fc.constant(undefined), fc.constant(null), fc.boolean(), fc.integer({ min: -2, max: 300 }), fc.double(),
    fc.constantFrom("eth0", "eth1", "", "a/b", "x".repeat(16), "10.0.0.1", "239.1.1.1", "1".repeat(65)),
    fc.constant([]), fc.constant({}),
  );
  const oif = fc.oneof(fc.constantFrom("eth1", "eth2", "", "bad name"), fc.record({ ifname: value, ttl: value }, { requiredKeys: [] }), value);
  const flow = fc.record({ source: value, group: value, packets: value, bytes: value, extra: value }, { requiredKeys: [] });
  const route = fc.record({
    source: value, group: value, iif: value, oifs: fc.oneof(fc.array(oif, { maxLength: 34 }), value),
    packets: value, bytes: value, wrong_if: value, state: value, reason: value, flows: fc.oneof(fc.array(flow, { maxLength: 2 }), value), extra: value,
  }, { requiredKeys: [] });
  const join = fc.record({ ifname: value, group: value, source: value, state: value, reason: value, extra: value }, { requiredKeys: [] });
  const goodJoin = fc.record({
    ifname: fc.constantFrom("eth0", "eth1"), group: fc.constantFrom("239.1.1.1", "232.1.1.1"), source: fc.constantFrom(null, "10.0.0.1", undefined),
    state: fc.constantFrom("installed", "pending"), reason: fc.constantFrom("interface missing", undefined),
  }, { requiredKeys: ["ifname", "group"] });
  const goodRoute = fc.record({
    source: fc.constantFrom(null, "10.0.0.1", undefined), group: fc.constantFrom("239.1.1.1", "239.9.9.9"), iif: fc.constant("eth0"),
    oifs: fc.array(fc.oneof(fc.constantFrom("eth1", "eth2"), fc.record({ ifname: fc.constantFrom("eth1", "eth3"), ttl: fc.integer({ min: 1, max: 255 }) }, { requiredKeys: ["ifname"] })), { minLength: 1, maxLength: 32 }),
    packets: fc.nat(), state: fc.constantFrom("installed", "pending"),
    flows: fc.array(fc.record({ source: fc.constant("10.0.0.1"), group: fc.constant("239.1.2.3"), packets: fc.nat(), bytes: fc.nat() }), { maxLength: 2 }),
  }, { requiredKeys: ["group", "iif", "oifs"] });
  const vif = fc.record({ ifname: value, threshold: value, pinned: value, vifi: value, ifindex: value, pkts_in: value }, { requiredKeys: [] });
  const payload = fc.oneof(
    fc.record({ state: fc.record({
      vifs: fc.oneof(fc.array(vif, { maxLength: 3 }), value), routes: fc.oneof(fc.array(fc.oneof(route, goodRoute), { maxLength: 4 }), value),
      joins: fc.oneof(fc.array(fc.oneof(join, goodJoin), { maxLength: 3 }), value),
    }, { requiredKeys: [] }) }, { requiredKeys: [] }),
    value,
  );
  // JSON round trip: the daemon only ever sees what JSON.parse makes (no undefined values).
  const asJson = (x: unknown): unknown => (x === undefined ? undefined : JSON.parse(JSON.stringify(x)) as unknown);

  /** Sets (or deletes, or adds) one field somewhere in a JSON value, chosen by `pick`. */
  function mutate(x: unknown, pick: number[], to: unknown): unknown {
    if (typeof x !== "object" || x === null) return to;
    const keys = Array.isArray(x) ? x.map((_, i) => String(i)) : Object.keys(x);
    const [first = 0, ...rest] = pick;
    const copy: Record<string, unknown> = Array.isArray(x) ? { ...(x as unknown[]) } : { ...(x as Record<string, unknown>) };
    const back = (): unknown => (Array.isArray(x) ? Object.values(copy) : copy);
    if (keys.length === 0 || first % 7 === 6) {
      copy[Array.isArray(x) ? String(keys.length) : "extra"] = to; // one more element or key
      return back();
    }
    const key = keys[first % keys.length] as string;
    if (rest.length === 0 || first % 5 === 4) {
      if (to === undefined && !Array.isArray(x)) delete copy[key];
      else copy[key] = to;
    } else {
      copy[key] = mutate(copy[key], rest, to);
    }
    return back();
  }
  const nearlyGood = fc.tuple(fc.array(goodRoute, { minLength: 1, maxLength: 3 }), fc.array(fc.nat(), { minLength: 1, maxLength: 6 }), value, fc.integer({ min: 30, max: 34 }), fc.array(goodJoin, { maxLength: 2 }))
    .map(([routes, pick, to, many, joins]) => {
      const p = asJson({ state: { vifs: [{ ifname: "eth2", threshold: 4 }], routes, joins } }) as { state: { routes: { oifs: unknown[] }[] } };
      // Sometimes right at the 32-oif limit.
      if ((pick[0] ?? 0) % 3 === 0) (p.state.routes[0] as { oifs: unknown[] }).oifs = Array.from({ length: many }, (_, i) => `e${i}`);
      return mutate(p, pick, to);
    });

  void test("whatever the shortcut accepts, the schema accepts with the same output", () => {
    let taken = 0;
    let refused = 0;
    fc.assert(fc.property(fc.oneof(payload, nearlyGood), (raw) => {
      const p = asJson(raw);
      const r = v.safeParse(ApplyIn, p);
      if (!plainApply(p)) {
        if (!r.success) refused++;
        return;
      }
      taken++;
      assert.ok(r.success, `shortcut accepted what the schema refuses: ${JSON.stringify(p)}`);
      assert.deepEqual(r.output, p);
    }), { seed: 0x5c4e, numRuns: 5000 });
    assert.ok(taken > 150 && refused > 1000, `shortcut taken ${taken} times, both refused ${refused} times`);
  });

  void test("well-formed APPLY payloads take the shortcut", () => {
    fc.assert(fc.property(fc.array(goodRoute, { maxLength: 20 }), (routes) => {
      assert.equal(plainApply(asJson({ state: { vifs: [{ ifname: "eth2", threshold: 4, pinned: true, vifi: 0, ifindex: 5, pkts_in: 0 }], routes, joins: [{ ifname: "eth0", group: "239.1.1.1", source: null, state: "installed" }] } })), true);
    }), { seed: 7, numRuns: 300 });
  });
});

void test("an oif object with a bad field names that field, not the union ('ttl 0' was 'must be an interface name or {ifname, ttl}')", () => {
  const base = { group: "239.1.1.1", iif: "eth0" };
  rejects(() => parseOp("ADD_MFC", { ...base, oifs: [{ ifname: "eth1", ttl: 0 }] }), "E_INVALID_ARGUMENT", "'payload.oifs.0.ttl'", "1-255");
  rejects(() => parseOp("ADD_MFC", { ...base, oifs: ["eth1", { ifname: "a/b" }] }), "E_INVALID_ARGUMENT", "'payload.oifs.1.ifname'");
  rejects(() => parseOp("ADD_MFC", { ...base, oifs: [5] }), "E_INVALID_ARGUMENT", "'payload.oifs.0'", "interface name or {ifname, ttl}");
});
