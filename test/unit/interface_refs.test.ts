/**
 * interfaceRefs and neededInterfaces count runs of alike routes (one iif, one shared oif list, one
 * family) at once; they must equal the plain route-by-route definition on any config, runs and
 * lists that are equal but not shared included.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { OifLists } from "../../src/model/oif_lists.js";
import { addRefs, emptyConfig, interfaceRefs, neededInterfaces, routeInterfaces, routeKey, type Oif, type Route } from "../../src/model/types.js";

const lists = new OifLists();
const oifsArb = fc.constantFrom<Oif[]>([{ ifname: "e1", ttl: 1 }], [{ ifname: "e1", ttl: 1 }, { ifname: "e2", ttl: 3 }], [{ ifname: "e3", ttl: 1 }]);
const routeArb = fc.record({
  v6: fc.boolean(),
  iif: fc.constantFrom("e0", "e9"),
  oifs: oifsArb,
  shared: fc.boolean(),
  repeat: fc.integer({ min: 1, max: 4 }),
});

void test("interface counts of runs of alike routes equal the route-by-route counts", () => {
  fc.assert(fc.property(fc.array(routeArb, { maxLength: 30 }), fc.constantFrom([], ["e0"], ["e5", "e1"]), (specs, pins) => {
    const config = emptyConfig();
    for (const p of pins) config.vifs.set(p, { ifname: p, threshold: 1 });
    let i = 0;
    for (const s of specs) {
      for (let k = 0; k < s.repeat; k++, i++) {
        const group = s.v6 ? `ff3e::${(i + 1).toString(16)}` : `239.1.${i >> 8}.${i & 255}`;
        const r: Route = { source: null, group, iif: s.iif, oifs: s.shared ? lists.intern(s.oifs) : s.oifs.map((o) => ({ ...o })) };
        config.routes.set(routeKey(r.source, r.group), r);
      }
    }
    const plain = new Map<string, number>();
    for (const name of config.vifs.keys()) addRefs(plain, [name], 1);
    for (const r of config.routes.values()) addRefs(plain, routeInterfaces(r), 1);
    assert.deepEqual(interfaceRefs(config), plain);
    assert.deepEqual([...neededInterfaces(config)].sort(), [...plain.keys()].sort());
  }), { numRuns: 500 });
});
