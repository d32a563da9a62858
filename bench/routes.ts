/** Deterministic route sets shared by the bench driver and the floor child. */

/** The i-th address of a /8-style prefix: `${prefix}.a.b.c` for i < 2^24. */
export function addrOf(prefix: number, i: number): string {
  return `${prefix}.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;
}

/** Base routes use groups 239.x.y.z; fresh single-change routes 238.*; concurrent clients 237.*. */
export const BASE_GROUP = 239;
export const FRESH_GROUP = 238;
export const CONCURRENT_GROUP = 237;

export interface BenchRoute {
  source: string;
  group: string;
  iif: string;
  oifs: { ifname: string; ttl: number }[];
}

export function baseRoute(source: string, i: number, oifs: string[] = ["dn1"]): BenchRoute {
  return { source, group: addrOf(BASE_GROUP, i), iif: "up0", oifs: oifs.map((ifname) => ({ ifname, ttl: 1 })) };
}

/** N distinct (S,G) routes, iif up0, one oif dn1. */
export function baseRoutes(source: string, n: number): BenchRoute[] {
  const out: BenchRoute[] = [];
  for (let i = 0; i < n; i++) out.push(baseRoute(source, i));
  return out;
}

/**
 * The desired state after a 10 % change to `baseRoutes(n)`: for every 10th route one change, in
 * turn: that route replaced (oifs dn1 -> dn1 dn2), that route removed, or a new route added.
 * N/10 changes in all; the table keeps N routes. Returns the routes and the counts of each kind.
 */
export function changedRoutes(source: string, n: number): { routes: BenchRoute[]; replaced: number; removed: number; added: number } {
  const routes: BenchRoute[] = [];
  let replaced = 0;
  let removed = 0;
  let added = 0;
  for (let i = 0; i < n; i++) {
    if (i % 10 !== 0) { routes.push(baseRoute(source, i)); continue; }
    const kind = (i / 10) % 3;
    if (kind === 0) { routes.push(baseRoute(source, i, ["dn1", "dn2"])); replaced++; }
    else if (kind === 1) removed++;
    else { routes.push(baseRoute(source, i), baseRoute(source, n + added)); added++; }
  }
  return { routes, replaced, removed, added };
}
