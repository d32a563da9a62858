/**
 * The snapshot is written in pieces (format.ts snapshotText, store.ts writeText); joined they must
 * be exactly the text it had as one string, `JSON.stringify(configToJson(config, seq)) + "\n"`,
 * the text the fast reader (canonical_snapshot.ts) recognises, for any config and piece size.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configToJson, snapshotText } from "../../src/state/format.js";
import { FileStateStore } from "../../src/state/store.js";
import { FaultyFs } from "../support/fault_fs.js";
import { SimFs } from "../support/sim_fs.js";
import { emptyConfig, joinKey, routeKey, vifKey } from "../../src/model/types.js";

const nameArb = fc.constantFrom("e0", "e1", "é9", "q\"x", "b\\s");
const configArb = fc.record({
  routes: fc.array(fc.record({
    source: fc.option(fc.constantFrom("10.0.0.1", "fd00::1"), { nil: null }),
    group: fc.integer({ min: 0, max: 9999 }).map((i) => `239.1.${i >> 8}.${i & 255}`),
    iif: nameArb,
    oifs: fc.array(fc.record({ ifname: nameArb, ttl: fc.integer({ min: 1, max: 255 }) }), { minLength: 1, maxLength: 3 }),
  }), { maxLength: 60 }),
  vifs: fc.array(fc.record({ ifname: nameArb, threshold: fc.integer({ min: 1, max: 255 }), family: fc.constantFrom(undefined, 6 as const) }), { maxLength: 3 }),
  joins: fc.array(fc.record({ ifname: nameArb, group: fc.constantFrom("239.9.9.9", "ff3e::9"), source: fc.constant(null) }), { maxLength: 2 }),
}).map(({ routes, vifs, joins }) => {
  const c = emptyConfig();
  for (const r of routes) c.routes.set(routeKey(r.source, r.group), r);
  for (const v of vifs) c.vifs.set(vifKey(v.family, v.ifname), v.family === undefined ? { ifname: v.ifname, threshold: v.threshold } : { ...v, family: 6 });
  for (const j of joins) c.joins.set(joinKey(j), j);
  return c;
});

void test("the snapshot's pieces join to exactly its one-string text", () => {
  fc.assert(fc.property(configArb, fc.nat(), fc.integer({ min: 1, max: 70 }), (config, seq, perPiece) => {
    const pieces = [...snapshotText(config, seq, undefined, perPiece)];
    assert.equal(pieces.join(""), JSON.stringify(configToJson(config, seq)) + "\n");
    if (config.routes.size > perPiece) assert.ok(pieces.length >= 3, "cut into pieces");
  }), { numRuns: 500 });
});

/** 40 000 routes, names of 1 to 4 bytes a character: a snapshot of several buffers' worth. */
function bigConfig(): ReturnType<typeof emptyConfig> {
  const config = emptyConfig();
  for (let i = 0; i < 40_000; i++) {
    const r = { source: `10.0.${i % 250}.1`, group: `239.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, iif: "e0", oifs: [{ ifname: i % 2 ? "e1" : "é2\u{1F600}", ttl: 1 + (i % 9) }] };
    config.routes.set(routeKey(r.source, r.group), r);
  }
  return config;
}

void test("a snapshot of several megabytes is written through the reused buffer byte for byte, and reads back", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mfc-snaptext-"));
  try {
    const config = bigConfig();
    const path = join(dir, "state.json");
    await new FileStateStore(path).save(config);
    const bytes = readFileSync(path);
    assert.ok(bytes.length > 3 << 20, `${bytes.length} bytes: more than one buffer's worth`);
    assert.equal(bytes.toString(), JSON.stringify(configToJson(config, 1)) + "\n");
    const loaded = await new FileStateStore(path).load();
    assert.deepEqual([...(loaded?.routes ?? [])], [...config.routes]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test("a change to the config while the pieces are written does not reach them", () => {
  const config = bigConfig();
  config.joins.set("e1|*,239.9.9.9", { ifname: "e1", group: "239.9.9.9", source: null });
  const expected = JSON.stringify(configToJson(config, 4)) + "\n";
  const pieces = snapshotText(config, 4);
  const first = pieces.next();
  config.routes.set("*,239.8.8.8", { source: null, group: "239.8.8.8", iif: "e0", oifs: [{ ifname: "e1", ttl: 1 }] });
  config.routes.delete("10.0.0.1,239.0.0.0");
  config.joins.clear();
  assert.equal((first.value as string) + [...pieces].join(""), expected);
});

void test("a short or failed write in any of a multi-buffer snapshot's writes leaves the whole snapshot or none", async () => {
  const config = bigConfig();
  const expected = JSON.stringify(configToJson(config, 1)) + "\n";
  // Also with the routes handed over as bytes (a whole-state APPLY's: engine.ts wholeRoutesText),
  // which are written from where they are, in writes of their own.
  const routesText = Buffer.from(expected.slice(expected.indexOf('"routes":[') + 10, expected.lastIndexOf('],"joins"')));
  for (const text of [undefined, routesText]) await everyWriteFaulted(config, expected, text);
});

async function everyWriteFaulted(config: ReturnType<typeof emptyConfig>, expected: string, routesText: Buffer | undefined): Promise<void> {
  const cleanSim = new SimFs();
  const clean = new FaultyFs(cleanSim);
  await new FileStateStore("/s/state.json", clean).save(config, undefined, routesText);
  assert.equal(cleanSim.files().get("/s/state.json")?.toString(), expected);
  const writes = clean.counts.get("write") ?? 0;
  assert.ok(writes >= 3, `${writes} writes`);
  for (let nth = 1; nth <= writes; nth++) {
    for (const [call, forGood] of [["short_write", false], ["short_write", true], ["write", false]] as const) {
      const sim = new SimFs();
      const fs = new FaultyFs(sim);
      fs.fault = { call, nth, forGood };
      let failed = false;
      try {
        await new FileStateStore("/s/state.json", fs).save(config, undefined, routesText);
      } catch {
        failed = true;
      }
      const file = sim.files().get("/s/state.json");
      // An I/O error in any of the writes fails the save, and its temp file goes too.
      if (call === "write") assert.deepEqual([failed, [...sim.files().keys()]], [true, []], `write ${nth} failing`);
      if (failed) assert.equal(file, undefined, `write ${nth}: a failed save leaves no snapshot`);
      else assert.equal(file?.toString(), expected, `write ${nth} cut short${forGood ? " for good" : ""}`);
    }
  }
}
