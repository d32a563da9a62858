/** The operator's configuration: what the daemon must keep installed. Persisted in the state file. */
import { familyOf, type Family } from "./family.js";

export interface Oif { ifname: string; ttl: number }

export interface Route {
  /** null = any source, the kernel's (*,G) entry. */
  source: string | null;
  group: string;
  iif: string;
  oifs: readonly Readonly<Oif>[];
}

/**
 * A VIF the operator pinned with `vif add` (others exist only while routes name them); a MIF with
 * family 6. Keyed by vifKey() in Config.vifs.
 */
export interface PinnedVif { ifname: string; threshold: number; family?: Family }

/**
 * The key of an interface's VIF (IPv4) or MIF (IPv6): the kernel numbers them in two tables, so one
 * device can hold one of each. "eth0" and "eth0/6" ('/' never appears in a device name).
 */
export function vifKey(family: Family | undefined, ifname: string): string {
  return family === 6 ? `${ifname}/6` : ifname;
}

export function vifKeyFamily(key: string): Family {
  return key.endsWith("/6") ? 6 : 4;
}

export function vifKeyIfname(key: string): string {
  return key.endsWith("/6") ? key.slice(0, -2) : key;
}

/** A VIF key for people: "eth0", or "eth0 (IPv6)" for a MIF. */
export function vifLabel(key: string): string {
  return vifKeyFamily(key) === 6 ? `${vifKeyIfname(key)} (IPv6)` : key;
}

/** A route's family: its group's (source and group are one family, model/address.ts). */
export function routeFamily(r: { readonly group: string }): Family {
  return familyOf(r.group);
}

/**
 * A group the router joins on an interface (SPEC §7), so that IGMP-snooping switches upstream send
 * it the stream. source null = any-source (IGMPv2-style), else source-specific (IGMPv3).
 */
export interface Join { ifname: string; group: string; source: string | null }

/** A Map, or an OverlayMap a transaction edits (model/overlay.ts). */
export interface KeyedMap<K, V> extends ReadonlyMap<K, V> {
  set(key: K, value: V): this;
  delete(key: K): boolean;
  clear(): void;
}

export interface Config {
  vifs: KeyedMap<string, PinnedVif>;
  routes: KeyedMap<string, Route>;
  joins: KeyedMap<string, Join>;
}

export function joinKey(j: { readonly ifname: string; readonly source: string | null; readonly group: string }): string {
  return `${j.ifname}|${j.source ?? "*"},${j.group}`;
}

/** A join's name for people: `(*, 239.1.1.1) on eth0`. */
export function formatJoin(j: Join): string {
  return `${formatSG(j)} on ${j.ifname}`;
}

export function routeKey(source: string | null, group: string): string {
  return `${source ?? "*"},${group}`;
}

/** A route's name for people: `(10.0.0.1, 239.1.1.1)`, or `(*, 239.1.1.1)` for any source. */
export function formatSG(r: { readonly source: string | null; readonly group: string }): string {
  return `(${r.source ?? "*"}, ${r.group})`;
}

/** A Config made of plain Maps: what the engine commits to and a store loads. */
export interface MapConfig extends Config {
  vifs: Map<string, PinnedVif>;
  routes: Map<string, Route>;
  joins: Map<string, Join>;
}

export function emptyConfig(): MapConfig {
  return { vifs: new Map(), routes: new Map(), joins: new Map() };
}

export const DEFAULT_TTL = 1;
export const DEFAULT_THRESHOLD = 1;

/** How many references (pins, iifs, oifs) each interface has: a VIF exists while it is > 0. */
export function interfaceRefs(c: Config): Map<string, number> {
  const refs = new Map<string, number>();
  for (const name of c.vifs.keys()) addRefs(refs, [name], 1);
  // Routes alike (one iif, one shared oif list: model/oif_lists.ts) mostly come in a row: a run of
  // them is counted at once, not route by route (a restore of 100 000).
  let run: Route | undefined;
  let n = 0;
  for (const r of c.routes.values()) {
    if (run !== undefined && alike(run, r)) {
      n++;
      continue;
    }
    if (run !== undefined) addRefs(refs, routeInterfaces(run), n);
    run = r;
    n = 1;
  }
  if (run !== undefined) addRefs(refs, routeInterfaces(run), n);
  return refs;
}

/** The same interfaces, of the same family (so the same VIF keys). */
function alike(a: Route, b: Route): boolean {
  return a.oifs === b.oifs && a.iif === b.iif && routeFamily(a) === routeFamily(b);
}

/** The VIF keys a route needs (vifKey: its interfaces in its family's table). */
export function routeInterfaces(r: Route): string[] {
  const f = routeFamily(r);
  return [vifKey(f, r.iif), ...r.oifs.map((o) => vifKey(f, o.ifname))];
}

export function addRefs(refs: Map<string, number>, names: Iterable<string>, delta: number): void {
  for (const n of names) {
    const c = (refs.get(n) ?? 0) + delta;
    if (c === 0) refs.delete(n);
    else refs.set(n, c);
  }
}

/** VIF keys (vifKey) a config needs a VIF or MIF for, in a stable order. */
export function neededInterfaces(c: Config): Set<string> {
  const names = new Set<string>(c.vifs.keys());
  let last: Route | undefined;
  for (const r of c.routes.values()) {
    if (last !== undefined && alike(last, r)) continue;
    last = r;
    if (routeFamily(r) === 4) {
      names.add(r.iif);
      for (const o of r.oifs) names.add(o.ifname);
    } else {
      for (const k of routeInterfaces(r)) names.add(k);
    }
  }
  return names;
}

export function sameRoute(a: Route, b: Route): boolean {
  return a.source === b.source && a.group === b.group && a.iif === b.iif &&
    a.oifs.length === b.oifs.length && a.oifs.every((o, i) => o.ifname === b.oifs[i]?.ifname && o.ttl === b.oifs[i]?.ttl);
}
