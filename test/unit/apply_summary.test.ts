/**
 * summarizeApply (the counts of `mfc apply`'s answer) counts removals without a set of the listed
 * keys; it must agree with the plain definition (a base route of the family that no listed route
 * names is removed) on any base and any listing that applyOps accepts (no route twice, only the
 * family's routes when a family is given).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { summarizeApply, type ApplySummary } from "../../src/engine/operations.js";
import { emptyConfig, routeKey, sameRoute, type Route } from "../../src/model/types.js";
import type { Family } from "../../src/model/family.js";

const GROUPS4 = ["239.1.1.1", "239.1.1.2", "239.1.1.3", "239.1.1.4", "239.1.1.5", "239.1.1.6"];
const GROUPS6 = ["ff3e::1", "ff3e::2", "ff3e::3", "ff3e::4"];
const routeArb: fc.Arbitrary<Route> = fc.oneof(
  fc.record({ source: fc.constantFrom("10.0.0.1", "10.0.0.2", null), group: fc.constantFrom(...GROUPS4) }),
  fc.record({ source: fc.constantFrom("fd00::1", null), group: fc.constantFrom(...GROUPS6) }),
).chain(({ source, group }) => fc.record({
  source: fc.constant(source), group: fc.constant(group), iif: fc.constantFrom("e0", "e1"),
  oifs: fc.constantFrom([{ ifname: "e2", ttl: 1 }], [{ ifname: "e3", ttl: 2 }]),
}));
/** Routes with distinct keys, as applyOps accepts them. */
const listArb = fc.uniqueArray(routeArb, { selector: (r) => routeKey(r.source, r.group), maxLength: 16 });
const familyOfRoute = (r: Route): Family => (r.group.includes(":") ? 6 : 4);

function byDefinition(base: readonly Route[], listed: readonly Route[], family?: Family): ApplySummary {
  const old = new Map(base.map((r) => [routeKey(r.source, r.group), r]));
  const wanted = new Set(listed.map((r) => routeKey(r.source, r.group)));
  const sum = { added: 0, replaced: 0, removed: 0, unchanged: 0 };
  for (const r of listed) {
    const o = old.get(routeKey(r.source, r.group));
    if (!o) sum.added++;
    else if (sameRoute(o, r)) sum.unchanged++;
    else sum.replaced++;
  }
  for (const [key, r] of old) if (!wanted.has(key) && (family === undefined || familyOfRoute(r) === family)) sum.removed++;
  return sum;
}

void test("summarizeApply agrees with the definition, whole table or one family", () => {
  fc.assert(fc.property(listArb, listArb, fc.constantFrom(undefined, 4 as const, 6 as const), (baseRoutes, listing, family) => {
    const listed = family === undefined ? listing : listing.filter((r) => familyOfRoute(r) === family);
    const base = emptyConfig();
    for (const r of baseRoutes) base.routes.set(routeKey(r.source, r.group), r);
    assert.deepEqual(summarizeApply(base, listed, family), byDefinition(baseRoutes, listed, family));
  }), { numRuns: 500 });
});
