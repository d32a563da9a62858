/** The operator's configuration: what the daemon must keep installed. Persisted in the state file. */
export interface Oif { ifname: string; ttl: number }

export interface Route {
  /** null = any source, the kernel's (*,G) entry. */
  source: string | null;
  group: string;
  iif: string;
  oifs: Oif[];
}

/** A VIF the operator pinned with `vif add` (others exist only while routes name them). */
export interface PinnedVif { ifname: string; threshold: number }

export interface Config {
  vifs: Map<string, PinnedVif>;
  routes: Map<string, Route>;
}

export function routeKey(source: string | null, group: string): string {
  return `${source ?? "*"},${group}`;
}

export function emptyConfig(): Config {
  return { vifs: new Map(), routes: new Map() };
}

export function cloneConfig(c: Config): Config {
  return { vifs: new Map(c.vifs), routes: new Map(c.routes) };
}

export const DEFAULT_TTL = 1;
export const DEFAULT_THRESHOLD = 1;

/** Interfaces a config needs a VIF for, in a stable order. */
export function neededInterfaces(c: Config): Set<string> {
  const names = new Set<string>(c.vifs.keys());
  for (const r of c.routes.values()) {
    names.add(r.iif);
    for (const o of r.oifs) names.add(o.ifname);
  }
  return names;
}

export function sameRoute(a: Route, b: Route): boolean {
  return a.source === b.source && a.group === b.group && a.iif === b.iif &&
    a.oifs.length === b.oifs.length && a.oifs.every((o, i) => o.ifname === b.oifs[i]?.ifname && o.ttl === b.oifs[i]?.ttl);
}
