/**
 * The state file formats (versioned), checked with the same rules as client input (model/):
 * - the snapshot `state.json`: `{format, version, seq, vifs, routes}` — the whole Config;
 * - the journal `state.json.journal`: one JSON record per line, `{seq, set, del, vifs_set, vifs_del}`,
 *   each the change one transaction made after the snapshot's `seq`.
 * Checked by hand rather than with a schema library: a 100 000-route restore must take well under
 * a second (the generic schema walk measured ~1 s alone).
 */
import { MfcError } from "../errors/codes.js";
import { ifNameProblem, ttlProblem } from "../model/ifname.js";
import { checkGroup, checkSource } from "../model/ipv4.js";
import { emptyConfig, routeKey, type Config, type MapConfig, type Oif, type PinnedVif, type Route } from "../model/types.js";

export const STATE_FORMAT = "mfc_daemon-state";
export const STATE_VERSION = 1;

class FormatError extends Error {}

function fail(where: string, problem: string): never {
  throw new FormatError(`${where} ${problem}`);
}

function object(x: unknown, where: string, keys: readonly string[], optional: readonly string[] = []): Record<string, unknown> {
  if (typeof x !== "object" || x === null || Array.isArray(x)) fail(where, "is not an object");
  const o = x as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!keys.includes(k) && !optional.includes(k)) fail(`${where}.${k}`, "is not a known field");
  for (const k of keys) if (!Object.hasOwn(o, k)) fail(`${where}.${k}`, "is missing");
  return o;
}

function array(x: unknown, where: string): unknown[] {
  if (!Array.isArray(x)) fail(where, "is not an array");
  return x as unknown[];
}

function ifName(x: unknown, where: string): string {
  if (typeof x !== "string") fail(where, "is not a string");
  const p = ifNameProblem(x);
  if (p) fail(where, p);
  return x;
}

function ttl(x: unknown, where: string): number {
  const p = ttlProblem(x);
  if (p) fail(where, p);
  return x as number;
}

function address(x: unknown, where: string, check: (s: string, field: string) => string): string {
  if (typeof x !== "string") fail(where, "is not a string");
  try {
    return check(x, where);
  } catch (err) {
    if (err instanceof MfcError) throw new FormatError(err.message.replace(/^Validation failed: /, ""));
    throw err;
  }
}

const ROUTE_KEYS = ["source", "group", "iif", "oifs"] as const;

function storedRoute(x: unknown, where: string): Route {
  const o = object(x, where, ROUTE_KEYS);
  const source = o.source === null ? null : address(o.source, `${where}.source`, checkSource);
  const group = address(o.group, `${where}.group`, checkGroup);
  const iif = ifName(o.iif, `${where}.iif`);
  const list = array(o.oifs, `${where}.oifs`);
  if (list.length < 1 || list.length > 32) fail(`${where}.oifs`, "must list 1-32 interfaces");
  const seen = new Set<string>();
  list.forEach((y, i) => {
    const oo = object(y, `${where}.oifs[${i}]`, ["ifname", "ttl"]);
    const name = ifName(oo.ifname, `${where}.oifs[${i}].ifname`);
    if (name === iif) fail(`${where}.oifs[${i}]`, "is the route's iif");
    // The same rule as for clients (engine/operations.ts): one TTL per interface.
    if (seen.has(name)) fail(`${where}.oifs[${i}]`, `lists '${name}' twice`);
    seen.add(name);
    ttl(oo.ttl, `${where}.oifs[${i}].ttl`);
  });
  // Checked field by field above, so the parsed objects are kept as they are: a 100 000-route
  // restore would otherwise hold two copies of every route at its peak.
  return { source, group, iif, oifs: list as Oif[] };
}

function storedVif(x: unknown, where: string): PinnedVif {
  const o = object(x, where, ["ifname", "threshold"]);
  return { ifname: ifName(o.ifname, `${where}.ifname`), threshold: ttl(o.threshold, `${where}.threshold`) };
}

function seqOf(x: unknown, where: string, min: number): number {
  // Beyond 2^53 integers collide in a double: seq + 1 could equal seq and replay would stall.
  if (typeof x !== "number" || !Number.isSafeInteger(x) || x < min) fail(where, `must be an integer from ${min} to 2^53-1`);
  return x;
}

export function configToJson(config: Config, seq: number): { format: string; version: number; seq: number; vifs: object[]; routes: object[] } {
  return {
    format: STATE_FORMAT, version: STATE_VERSION, seq,
    vifs: [...config.vifs.values()].map((x) => ({ ifname: x.ifname, threshold: x.threshold })),
    routes: [...config.routes.values()].map((r) => ({ source: r.source, group: r.group, iif: r.iif, oifs: r.oifs })),
  };
}

export function configFromJson(json: unknown): { config: MapConfig; seq: number } {
  const snap = object(json, "state", ["format", "version", "vifs", "routes"], ["seq"]);
  if (snap.format !== STATE_FORMAT) fail("state.format", `is not '${STATE_FORMAT}'`);
  if (snap.version !== STATE_VERSION) fail("state.version", `${JSON.stringify(snap.version)} is not supported (this daemon reads ${STATE_VERSION})`);
  const seq = snap.seq === undefined ? 0 : seqOf(snap.seq, "state.seq", 0);
  const config = emptyConfig();
  array(snap.vifs, "state.vifs").forEach((x, i) => {
    const vif = storedVif(x, `state.vifs[${i}]`);
    if (config.vifs.has(vif.ifname)) fail(`state.vifs[${i}]`, `lists VIF '${vif.ifname}' twice`);
    config.vifs.set(vif.ifname, vif);
  });
  array(snap.routes, "state.routes").forEach((x, i) => {
    const route = storedRoute(x, `state.routes[${i}]`);
    const key = routeKey(route.source, route.group);
    if (config.routes.has(key)) fail(`state.routes[${i}]`, `lists route ${key} twice`);
    config.routes.set(key, route);
  });
  return { config, seq };
}

/** What one transaction touched: route keys and VIF names. */
export interface Delta { routes: Set<string>; vifs: Set<string> }

export interface JournalRecord {
  seq: number;
  set: Route[];
  del: { source: string | null; group: string }[];
  vifs_set: PinnedVif[];
  vifs_del: string[];
}

export function journalRecord(seq: number, config: Config, delta: Delta): JournalRecord {
  const rec: JournalRecord = { seq, set: [], del: [], vifs_set: [], vifs_del: [] };
  for (const key of delta.routes) {
    const r = config.routes.get(key);
    if (r) rec.set.push({ source: r.source, group: r.group, iif: r.iif, oifs: r.oifs });
    else {
      const [source, group] = key.split(",") as [string, string];
      rec.del.push({ source: source === "*" ? null : source, group });
    }
  }
  for (const name of delta.vifs) {
    const x = config.vifs.get(name);
    if (x) rec.vifs_set.push({ ifname: x.ifname, threshold: x.threshold });
    else rec.vifs_del.push(name);
  }
  return rec;
}

/** Checks one journal record as strictly as client input; nothing is applied yet. */
export function parseRecord(json: unknown): JournalRecord {
  const rec = object(json, "record", ["seq", "set", "del", "vifs_set", "vifs_del"]);
  const seq = seqOf(rec.seq, "record.seq", 1);
  const set = array(rec.set, "record.set").map((x, i) => storedRoute(x, `record.set[${i}]`));
  const del = array(rec.del, "record.del").map((x, i) => {
    const k = object(x, `record.del[${i}]`, ["source", "group"]);
    const source = k.source === null ? null : address(k.source, `record.del[${i}].source`, checkSource);
    return { source, group: address(k.group, `record.del[${i}].group`, checkGroup) };
  });
  const vifsSet = array(rec.vifs_set, "record.vifs_set").map((x, i) => storedVif(x, `record.vifs_set[${i}]`));
  const vifsDel = array(rec.vifs_del, "record.vifs_del").map((x, i) => ifName(x, `record.vifs_del[${i}]`));
  const keys = new Set<string>();
  for (const r of [...set, ...del]) {
    const key = routeKey(r.source, r.group);
    if (keys.has(key)) fail("record", `names route ${key} twice`);
    keys.add(key);
  }
  const names = new Set<string>();
  for (const name of [...vifsSet.map((v) => v.ifname), ...vifsDel]) {
    if (names.has(name)) fail("record", `names VIF '${name}' twice`);
    names.add(name);
  }
  return { seq, set, del, vifs_set: vifsSet, vifs_del: vifsDel };
}

/** Applies a checked record onto `config` (mutates it). */
export function applyRecord(config: Config, rec: JournalRecord): void {
  for (const route of rec.set) config.routes.set(routeKey(route.source, route.group), route);
  for (const k of rec.del) config.routes.delete(routeKey(k.source, k.group));
  for (const vif of rec.vifs_set) config.vifs.set(vif.ifname, vif);
  for (const name of rec.vifs_del) config.vifs.delete(name);
}
