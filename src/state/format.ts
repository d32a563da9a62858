/**
 * The state file formats (versioned), checked with the same rules as client input (model/):
 * - the snapshot `state.json`: `{format, version, seq, vifs, routes, joins}` — the whole Config;
 * - the journal `state.json.journal`: one JSON record per line,
 *   `{seq, set, del, vifs_set, vifs_del, joins_set, joins_del}`,
 *   each the change one transaction made after the snapshot's `seq`.
 * Checked by hand rather than with a schema library: a 100 000-route restore must take well under
 * a second (the generic schema walk measured ~1 s alone).
 * `joins` came later: files written before them have no such fields, and read as no joins.
 */
import { MfcError } from "../errors/codes.js";
import { ifNameProblem, ttlProblem } from "../model/ifname.js";
import { checkGroup, checkRouteGroup, checkSource } from "../model/address.js";
import { familyOf } from "../model/family.js";
import { OifLists } from "../model/oif_lists.js";
import { emptyConfig, joinKey, routeKey, vifKey, vifKeyIfname, type Config, type Join, type MapConfig, type Oif, type PinnedVif, type Route } from "../model/types.js";

export const STATE_FORMAT = "mfc_daemon-state";
export const STATE_VERSION = 1;

/**
 * `where` is the field's path relative to the object being checked ("" = that object); callers
 * add their prefix only when something failed (nested()): building a path string for every field
 * of a 100 000-route restore cost more than the checks.
 */
class FormatError extends Error {
  constructor(readonly where: string, readonly problem: string) {
    super(where === "" ? problem : `${where} ${problem}`);
  }
}

function fail(where: string, problem: string): never {
  throw new FormatError(where, problem);
}

/** The same error, seen from one level up: `prefix` goes in front of its path. */
function nested(err: unknown, prefix: string): unknown {
  if (!(err instanceof FormatError)) return err;
  const sep = err.where === "" || err.where.startsWith("[") ? "" : ".";
  return new FormatError(`${prefix}${sep}${err.where}`, err.problem);
}

const field = (where: string, key: string): string => (where === "" ? key : `${where}.${key}`);

function object(x: unknown, where: string, keys: readonly string[], optional: readonly string[] = []): Record<string, unknown> {
  if (typeof x !== "object" || x === null || Array.isArray(x)) fail(where, "is not an object");
  const o = x as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!keys.includes(k) && !optional.includes(k)) fail(field(where, k), "is not a known field");
  for (const k of keys) if (!Object.hasOwn(o, k)) fail(field(where, k), "is missing");
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
    // model/ipv4.ts says "<field> '<value>' is not ...": keep the problem, the path is ours.
    if (err instanceof MfcError) fail(where, err.message.replace(/^Validation failed: /, "").slice(where.length + 1));
    throw err;
  }
}

const ROUTE_KEYS = ["source", "group", "iif", "oifs"] as const;
const OIF_KEYS = ["ifname", "ttl"] as const;

function storedRoute(x: unknown, lists: OifLists): Route {
  const o = object(x, "", ROUTE_KEYS);
  const source = o.source === null ? null : address(o.source, "source", checkSource);
  const group = address(o.group, "group", checkRouteGroup);
  sameFamily(source, group);
  const iif = ifName(o.iif, "iif");
  const list = array(o.oifs, "oifs");
  if (list.length < 1 || list.length > 32) fail("oifs", "must list 1-32 interfaces");
  const seen = new Set<string>();
  for (let i = 0; i < list.length; i++) {
    try {
      const oo = object(list[i], "", OIF_KEYS);
      const name = ifName(oo.ifname, "ifname");
      if (name === iif) fail("", "is the route's iif");
      // The same rule as for clients (engine/operations.ts): one TTL per interface.
      if (seen.has(name)) fail("", `lists '${name}' twice`);
      seen.add(name);
      ttl(oo.ttl, "ttl");
    } catch (err) {
      throw nested(err, `oifs[${i}]`);
    }
  }
  return { source, group, iif, oifs: lists.intern(list as Oif[]) };
}

/** A pinned VIF; `"family": 6` marks a MIF (absent in files written before IPv6: all VIFs). */
function storedVif(x: unknown): PinnedVif {
  const o = object(x, "", ["ifname", "threshold"], ["family"]);
  const vif: PinnedVif = { ifname: ifName(o.ifname, "ifname"), threshold: ttl(o.threshold, "threshold") };
  if (o.family !== undefined) {
    if (o.family !== 6) fail("family", `${JSON.stringify(o.family)} is not 6`);
    vif.family = 6;
  }
  return vif;
}

const plainVif = (x: PinnedVif): object => (x.family === 6 ? { ifname: x.ifname, threshold: x.threshold, family: 6 } : { ifname: x.ifname, threshold: x.threshold });

/** A vifKey() in a journal's vifs_del: an interface name, with "/6" for a MIF. */
function storedVifKey(x: unknown): string {
  if (typeof x !== "string") return ifName(x, "");
  return x.endsWith("/6") ? vifKey(6, ifName(vifKeyIfname(x), "")) : ifName(x, "");
}

function storedJoin(x: unknown): Join {
  const o = object(x, "", ["ifname", "group", "source"]);
  const join: Join = { ifname: ifName(o.ifname, "ifname"), group: address(o.group, "group", checkGroup), source: o.source === null ? null : address(o.source, "source", checkSource) };
  sameFamily(join.source, join.group);
  return join;
}

/** Source and group of one family, as clients must send them (model/address.ts). */
function sameFamily(source: string | null, group: string): void {
  if (source !== null && familyOf(source) !== familyOf(group)) fail("source", "is not of the group's address family");
}

/** Checks each element of a list; an error names the element (`prefix[i]...`). */
function each<T>(list: unknown[], prefix: string, check: (x: unknown) => T, use: (item: T, i: number) => void): void {
  for (let i = 0; i < list.length; i++) {
    let item: T;
    try {
      item = check(list[i]);
    } catch (err) {
      throw nested(err, `${prefix}[${i}]`);
    }
    use(item, i);
  }
}

function seqOf(x: unknown, where: string, min: number): number {
  // Beyond 2^53 integers collide in a double: seq + 1 could equal seq and replay would stall.
  if (typeof x !== "number" || !Number.isSafeInteger(x) || x < min) fail(where, `must be an integer from ${min} to 2^53-1`);
  return x;
}

export function configToJson(config: Config, seq: number): { format: string; version: number; seq: number; vifs: object[]; routes: object[]; joins: object[] } {
  return {
    format: STATE_FORMAT, version: STATE_VERSION, seq,
    vifs: [...config.vifs.values()].map(plainVif),
    routes: [...config.routes.values()].map((r) => ({ source: r.source, group: r.group, iif: r.iif, oifs: r.oifs })),
    joins: [...config.joins.values()].map(plainJoin),
  };
}

const plainJoin = (j: Join): Join => ({ ifname: j.ifname, group: j.group, source: j.source });

/**
 * `JSON.stringify(configToJson(config, seq)) + "\n"`, the snapshot's text, in pieces of
 * `routesPerPiece` routes (test/unit/snapshot_text.test.ts holds the joined pieces to that text):
 * written as made, no 100 000-object copy of the routes and no 9 MB string at once. What it writes
 * is taken when the first piece is asked for (the routes as a list, the VIFs and joins as text), so
 * a change to `config` while the pieces are written (between two awaited writes) cannot reach them.
 * `routesText`: the routes array between its brackets, as this would write it (the caller vouches
 * for that: StateStore.save), written instead of making it again.
 */
export function* snapshotText(config: Config, seq: number, routesText?: Uint8Array, routesPerPiece = 2048): Generator<string | Uint8Array> {
  const head = JSON.stringify({ format: STATE_FORMAT, version: STATE_VERSION, seq, vifs: [...config.vifs.values()].map(plainVif) });
  const routes = routesText ? [] : [...config.routes.values()];
  const tail = `],"joins":${JSON.stringify([...config.joins.values()].map(plainJoin))}}\n`;
  yield `${head.slice(0, -1)},"routes":[`;
  if (routesText) yield routesText;
  // Joined, not concatenated: a `+=` rope must be flattened again before it is written.
  for (let i = 0; i < routes.length; i += routesPerPiece) {
    const piece = routes.slice(i, i + routesPerPiece).map((r) => JSON.stringify({ source: r.source, group: r.group, iif: r.iif, oifs: r.oifs }));
    yield (i === 0 ? "" : ",") + piece.join(",");
  }
  yield tail;
}

/** joinKey() read back: the last '|' ends the name (an interface name may hold '|', an address not). */
function joinOfKey(key: string): Join {
  const bar = key.lastIndexOf("|");
  const [source, group] = key.slice(bar + 1).split(",") as [string, string];
  return { ifname: key.slice(0, bar), group, source: source === "*" ? null : source };
}

/** `lists`: shared with the journal records read after it (FileStateStore.load), so their routes share lists too. */
export function configFromJson(json: unknown, lists = new OifLists()): { config: MapConfig; seq: number } {
  const snap = object(json, "state", ["format", "version", "vifs", "routes"], ["seq", "joins"]);
  if (snap.format !== STATE_FORMAT) fail("state.format", `is not '${STATE_FORMAT}'`);
  if (snap.version !== STATE_VERSION) fail("state.version", `${JSON.stringify(snap.version)} is not supported (this daemon reads ${STATE_VERSION})`);
  const seq = snap.seq === undefined ? 0 : seqOf(snap.seq, "state.seq", 0);
  const config = emptyConfig();
  each(array(snap.vifs, "state.vifs"), "state.vifs", storedVif, (vif, i) => {
    const key = vifKey(vif.family, vif.ifname);
    if (config.vifs.has(key)) fail(`state.vifs[${i}]`, `lists ${vif.family === 6 ? "MIF" : "VIF"} '${vif.ifname}' twice`);
    config.vifs.set(key, vif);
  });
  each(array(snap.routes, "state.routes"), "state.routes", (x) => storedRoute(x, lists), (route, i) => {
    const key = routeKey(route.source, route.group);
    if (config.routes.has(key)) fail(`state.routes[${i}]`, `lists route ${key} twice`);
    config.routes.set(key, route);
  });
  if (snap.joins !== undefined) {
    each(array(snap.joins, "state.joins"), "state.joins", storedJoin, (join, i) => {
      const key = joinKey(join);
      if (config.joins.has(key)) fail(`state.joins[${i}]`, `lists join ${key} twice`);
      config.joins.set(key, join);
    });
  }
  return { config, seq };
}

/** What one transaction touched: route keys, VIF names and join keys. */
export interface Delta { routes: Set<string>; vifs: Set<string>; joins: Set<string> }

export interface JournalRecord {
  seq: number;
  set: Route[];
  del: { source: string | null; group: string }[];
  vifs_set: PinnedVif[];
  vifs_del: string[];
  /** Only in records that change joins (so older daemons' records read the same). */
  joins_set?: Join[];
  joins_del?: Join[];
}

export function journalRecord(seq: number, config: Config, delta: Delta): JournalRecord {
  const rec: JournalRecord = { seq, set: [], del: [], vifs_set: [], vifs_del: [] };
  if (delta.joins.size > 0) {
    rec.joins_set = [];
    rec.joins_del = [];
    for (const key of delta.joins) {
      const now = config.joins.get(key);
      if (now) rec.joins_set.push(plainJoin(now));
      else rec.joins_del.push(joinOfKey(key));
    }
  }
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
    if (x) rec.vifs_set.push(plainVif(x) as PinnedVif);
    else rec.vifs_del.push(name);
  }
  return rec;
}

/** Checks one journal record as strictly as client input; nothing is applied yet. */
export function parseRecord(json: unknown, lists = new OifLists()): JournalRecord {
  const rec = object(json, "record", ["seq", "set", "del", "vifs_set", "vifs_del"], ["joins_set", "joins_del"]);
  const seq = seqOf(rec.seq, "record.seq", 1);
  const set: Route[] = [];
  each(array(rec.set, "record.set"), "record.set", (x) => storedRoute(x, lists), (r) => set.push(r));
  const del: { source: string | null; group: string }[] = [];
  each(array(rec.del, "record.del"), "record.del", (x) => {
    const k = object(x, "", ["source", "group"]);
    const key = { source: k.source === null ? null : address(k.source, "source", checkSource), group: address(k.group, "group", checkRouteGroup) };
    sameFamily(key.source, key.group);
    return key;
  }, (k) => del.push(k));
  const vifsSet: PinnedVif[] = [];
  each(array(rec.vifs_set, "record.vifs_set"), "record.vifs_set", storedVif, (x) => vifsSet.push(x));
  const vifsDel: string[] = [];
  each(array(rec.vifs_del, "record.vifs_del"), "record.vifs_del", storedVifKey, (x) => vifsDel.push(x));
  const keys = new Set<string>();
  for (const r of [...set, ...del]) {
    const key = routeKey(r.source, r.group);
    if (keys.has(key)) fail("record", `names route ${key} twice`);
    keys.add(key);
  }
  const names = new Set<string>();
  for (const name of [...vifsSet.map((v) => vifKey(v.family, v.ifname)), ...vifsDel]) {
    if (names.has(name)) fail("record", `names VIF '${name}' twice`);
    names.add(name);
  }
  const out: JournalRecord = { seq, set, del, vifs_set: vifsSet, vifs_del: vifsDel };
  if (rec.joins_set !== undefined || rec.joins_del !== undefined) {
    const joinsSet: Join[] = [];
    const joinsDel: Join[] = [];
    each(array(rec.joins_set ?? [], "record.joins_set"), "record.joins_set", storedJoin, (j) => joinsSet.push(j));
    each(array(rec.joins_del ?? [], "record.joins_del"), "record.joins_del", storedJoin, (j) => joinsDel.push(j));
    const joinKeys = new Set<string>();
    for (const j of [...joinsSet, ...joinsDel]) {
      const key = joinKey(j);
      if (joinKeys.has(key)) fail("record", `names join ${key} twice`);
      joinKeys.add(key);
    }
    out.joins_set = joinsSet;
    out.joins_del = joinsDel;
  }
  return out;
}

/** Applies a checked record onto `config` (mutates it). */
export function applyRecord(config: Config, rec: JournalRecord): void {
  for (const route of rec.set) config.routes.set(routeKey(route.source, route.group), route);
  for (const k of rec.del) config.routes.delete(routeKey(k.source, k.group));
  for (const vif of rec.vifs_set) config.vifs.set(vifKey(vif.family, vif.ifname), vif);
  for (const name of rec.vifs_del) config.vifs.delete(name);
  for (const join of rec.joins_set ?? []) config.joins.set(joinKey(join), join);
  for (const join of rec.joins_del ?? []) config.joins.delete(joinKey(join));
}
