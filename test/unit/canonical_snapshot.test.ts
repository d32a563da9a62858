/**
 * The fast reader of the snapshot (src/state/canonical_snapshot.ts) against the general one
 * (JSON.parse + configFromJson), which stays the reference:
 * - every file the store writes (JSON.stringify of configToJson) reads the same with either, in
 *   the same order, and the fast reader takes it whenever its strings are plain ASCII (else a
 *   reader that always gave up would pass);
 * - on any other bytes (files with one byte changed, inserted or dropped), the fast reader either
 *   gives up or agrees with the general reader: it never accepts a file the general reader refuses
 *   and never reads one differently.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { configFromCanonicalSnapshot } from "../../src/state/canonical_snapshot.js";
import { configFromJson, configToJson } from "../../src/state/format.js";
import { nodeFs } from "../../src/state/node_fs.js";
import { OifLists } from "../../src/model/oif_lists.js";
import { emptyConfig, joinKey, routeKey, vifKey, type MapConfig, type Route } from "../../src/model/types.js";

/** Names the kernel takes, with the bytes JSON escapes or that a careless scanner trips on. */
const ifnameArb = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom("up0", "dn1", "dn2", "eth0.100", "br-lan") },
  { weight: 1, arbitrary: fc.constantFrom("a]b", "q\"x", "b\\s", "[{,}]", "é1", "x\u0001", "x\"ttl\"}", "ttl\":1}") },
);
const source4 = fc.constantFrom("10.0.0.1", "10.0.0.2", "192.168.1.1");
const group4 = fc.integer({ min: 0, max: 5000 }).map((i) => `239.1.${i >> 8}.${i & 255}`);
const route4 = fc.record({ source: fc.option(source4, { nil: null }), group: group4 });
const route6 = fc.record({ source: fc.option(fc.constantFrom("fd00::1", "2001:db8::7"), { nil: null }), group: fc.integer({ min: 1, max: 999 }).map((i) => `ff3e::${i.toString(16)}`) });
const range = fc.record({ source: fc.constant(null), group: fc.constantFrom("239.2.0.0/16", "ff3e::/16") });

const routeArb: fc.Arbitrary<Route> = fc.record({
  key: fc.oneof({ weight: 6, arbitrary: route4 }, { weight: 2, arbitrary: route6 }, { weight: 1, arbitrary: range }),
  iif: ifnameArb,
  oifs: fc.uniqueArray(fc.record({ ifname: ifnameArb, ttl: fc.integer({ min: 1, max: 255 }) }), { selector: (o) => o.ifname, minLength: 1, maxLength: 3 }),
}).map(({ key, iif, oifs }) => ({
  source: key.source, group: key.group, iif,
  // IPv6 routes keep TTL 1 (clients can give no other): the fast reader leaves others to the general one.
  oifs: oifs.filter((o) => o.ifname !== iif).map((o) => (key.group.includes(":") ? { ...o, ttl: 1 } : o)),
}))
  .filter((r) => r.oifs.length > 0);

const configArb: fc.Arbitrary<MapConfig> = fc.record({
  routes: fc.uniqueArray(routeArb, { selector: (r) => routeKey(r.source, r.group), maxLength: 40 }),
  vifs: fc.uniqueArray(fc.record({ ifname: ifnameArb, threshold: fc.integer({ min: 1, max: 255 }) }), { selector: (v) => v.ifname, maxLength: 3 }),
  joins: fc.uniqueArray(fc.record({ ifname: ifnameArb, group: group4, source: fc.constant(null) }), { selector: joinKey, maxLength: 2 }),
}).map(({ routes, vifs, joins }) => {
  const c = emptyConfig();
  for (const r of routes) c.routes.set(routeKey(r.source, r.group), r);
  for (const v of vifs) c.vifs.set(vifKey(undefined, v.ifname), v);
  for (const j of joins) c.joins.set(joinKey(j), j);
  return c;
});

/** What the store writes (store.ts writeSnapshot). */
const written = (c: MapConfig, seq: number): Buffer => Buffer.from(JSON.stringify(configToJson(c, seq)) + "\n", "utf8");

type Read = { ok: true; seq: number; vifs: unknown[]; routes: unknown[]; joins: unknown[] } | { ok: false };
function general(bytes: Buffer): Read {
  try {
    const { config, seq } = configFromJson(JSON.parse(bytes.toString("utf8")) as unknown, new OifLists());
    return { ok: true, seq, vifs: [...config.vifs], routes: [...config.routes], joins: [...config.joins] };
  } catch {
    return { ok: false };
  }
}
function fast(bytes: Buffer): Read | undefined {
  const r = configFromCanonicalSnapshot(bytes, new OifLists());
  return r && { ok: true, seq: r.seq, vifs: [...r.config.vifs], routes: [...r.config.routes], joins: [...r.config.joins] };
}

const plainAscii = (c: MapConfig): boolean => [...c.routes.values()].every((r) => [r.iif, ...r.oifs.map((o) => o.ifname)].every((n) => /^[\x20-\x7e]*$/.test(n) && !/["\\]/.test(n)));

void test("a snapshot as the store writes it reads the same with the fast reader, which takes every plain-ASCII one", () => {
  fc.assert(fc.property(configArb, fc.nat(), (config, seq) => {
    const bytes = written(config, seq);
    const f = fast(bytes);
    const g = general(bytes);
    // (A name with ':' is refused by both: the generator makes some on purpose.)
    if (plainAscii(config) && g.ok) assert.ok(f !== undefined, `the fast reader gave up on ${bytes.toString()}`);
    if (f !== undefined) assert.deepEqual(f, g);
  }), { numRuns: 400 });
});

void test("on bytes changed anywhere, the fast reader gives up or agrees with the general reader", () => {
  const edit = fc.record({ at: fc.nat(), kind: fc.constantFrom("set", "insert", "drop"), byte: fc.constantFrom(..."{}[],:\"\\ 0123456789.a/n\u00e9".split("").map((c) => c.charCodeAt(0))) });
  fc.assert(fc.property(configArb, fc.array(edit, { minLength: 1, maxLength: 3 }), (config, edits) => {
    let bytes = written(config, 7);
    for (const e of edits) {
      const at = e.at % (bytes.length + 1);
      const b = Buffer.from([e.byte]);
      bytes = e.kind === "insert" ? Buffer.concat([bytes.subarray(0, at), b, bytes.subarray(at)])
        : e.kind === "drop" ? Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1)])
          : Buffer.concat([bytes.subarray(0, at), b, bytes.subarray(at + 1)]);
    }
    const f = fast(bytes);
    if (f !== undefined) assert.deepEqual(f, general(bytes), `read differently: ${bytes.toString()}`);
  }), { numRuns: 3000 });
});

const base = '{"format":"mfc_daemon-state","version":1,"seq":3,"vifs":[],"routes":[';
const r1 = '{"source":"10.0.0.1","group":"239.1.1.1","iif":"up0","oifs":[{"ifname":"dn1","ttl":1}]}';
const r2 = '{"source":null,"group":"239.1.1.2","iif":"up0","oifs":[{"ifname":"dn1","ttl":1},{"ifname":"dn2","ttl":64}]}';
const file = (routes: string, tail = "]}\n"): Buffer => Buffer.from(base + routes + tail);

void test("the fast reader's own rules: what it reads, and where it leaves the file to the general reader", () => {
  const ok = fast(file(`${r1},${r2}`));
  assert.deepEqual(ok, general(file(`${r1},${r2}`)));
  assert.equal(ok?.ok && ok.routes.length, 2);
  // Kept as the check returns it, as the general reader does: an IPv6 address in canonical form.
  const v6 = file(r1.replace('"10.0.0.1","group":"239.1.1.1"', '"FD00:0::1","group":"ff3e::1"'));
  assert.deepEqual(fast(v6), general(v6));
  assert.equal(fast(v6)?.ok && (fast(v6) as { routes: [string, Route][] }).routes[0]?.[1].source, "fd00::1");
  const cases: [string, Buffer, "refused" | "accepted"][] = [
    ["a route listed twice", file(`${r1},${r1}`), "refused"],
    ["a second routes key after the first", file(r1, '],"routes":[]}'), "accepted"],
    ["a second routes key spelt with a space", file(r1, '],"routes" :[]}'), "accepted"],
    ["a second routes key spelt with an escape", file(r1, '],"rout\\u0065s":[]}'), "accepted"],
    ["whitespace between routes", file(`${r1}, ${r2}`), "accepted"],
    ["a TTL with a leading zero", file(r1.replace('"ttl":1', '"ttl":01')), "refused"],
    ["TTL 0", file(r1.replace('"ttl":1', '"ttl":0')), "refused"],
    ["TTL 256", file(r1.replace('"ttl":1', '"ttl":256')), "refused"],
    ["the iif among the oifs", file(r1.replace('"ifname":"dn1"', '"ifname":"up0"')), "refused"],
    ["an oif twice", file(r2.replace('"ifname":"dn2"', '"ifname":"dn1"')), "refused"],
    ["33 oifs", file(r1.replace('{"ifname":"dn1","ttl":1}', Array.from({ length: 33 }, (_, i) => `{"ifname":"d${i}","ttl":1}`).join(","))), "refused"],
    ["an escaped name", file(r1.replace('"iif":"up0"', '"iif":"u\\u0070"')), "accepted"],
    ["an IPv6 route with TTL 2", file(r1.replace('"10.0.0.1","group":"239.1.1.1"', '"fd00::1","group":"ff3e::1"').replace('"ttl":1', '"ttl":2')), "accepted"],
    ["a source of the other family", file(r1.replace('"10.0.0.1"', '"fd00::1"')), "refused"],
    ["an unknown field", file(r1.replace('"iif"', '"x":1,"iif"')), "refused"],
  ];
  for (const [what, bytes, verdict] of cases) {
    assert.equal(fast(bytes), undefined, `${what}: the fast reader must leave it to the general reader`);
    assert.equal(general(bytes).ok, verdict === "accepted", `${what}: the general reader ${verdict} it`);
  }
});

void test("routes read fast share their oif lists through the pool the journal records use too", () => {
  const lists = new OifLists();
  const r = configFromCanonicalSnapshot(file(`${r1},${r1.replace("239.1.1.1", "239.1.1.9")}`), lists);
  const [a, b] = [...(r?.config.routes.values() ?? [])];
  assert.ok(a && b);
  assert.equal(a.oifs, b.oifs);
  assert.equal(lists.intern([{ ifname: "dn1", ttl: 1 }]), a.oifs);
  assert.ok(Object.isFrozen(a.oifs));
});

void test("nodeFs.readFile reads to the end of the file, whatever its size said", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mfc-readall-"));
  try {
    for (const size of [0, 1, 70_000, 3_000_001]) {
      const path = join(dir, `f${size}`);
      const data = Buffer.alloc(size, 0x61);
      if (size > 0) data[size - 1] = 0x0a;
      writeFileSync(path, data);
      assert.deepEqual(await nodeFs.readFile(path), data);
    }
    // Past 2 GiB it fails as readFile() did, not with Node's abort on a read that long (sparse: no disk used).
    const huge = join(dir, "huge");
    writeFileSync(huge, "");
    truncateSync(huge, 2 ** 31);
    await assert.rejects(nodeFs.readFile(huge), { code: "ERR_FS_FILE_TOO_LARGE" });
    // A size of 0 in its stat, and content: /proc reads past the stat's size.
    const status = await nodeFs.readFile("/proc/self/status");
    assert.match(status?.toString() ?? "", /^Name:/);
    assert.equal(await nodeFs.readFile(join(dir, "missing")), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
