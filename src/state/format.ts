/**
 * The state file formats (versioned), validated with the same rules as client input:
 * - the snapshot `state.json`: `{format, version, seq, vifs, routes}` — the whole Config;
 * - the journal `state.json.journal`: one JSON record per line, `{seq, set, del, vifs_set, vifs_del}`,
 *   each the change one transaction made after the snapshot's `seq`.
 */
import * as v from "valibot";
import { checkGroup, checkSource } from "../model/ipv4.js";
import { emptyConfig, routeKey, type Config, type Route } from "../model/types.js";

export const STATE_FORMAT = "mfc_daemon-state";
export const STATE_VERSION = 1;

const IfName = v.pipe(v.string(), v.minLength(1), v.maxLength(15), v.regex(/^[^\s/:]+$/), v.check((s) => s !== "." && s !== ".."));
const Ttl = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(255));
const StoredRoute = v.strictObject({
  source: v.nullable(v.string()), group: v.string(), iif: IfName,
  oifs: v.pipe(v.array(v.strictObject({ ifname: IfName, ttl: Ttl })), v.minLength(1), v.maxLength(32)),
});
const StoredVif = v.strictObject({ ifname: IfName, threshold: Ttl });
const Snapshot = v.strictObject({
  format: v.literal(STATE_FORMAT), version: v.literal(STATE_VERSION), seq: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
  vifs: v.array(StoredVif), routes: v.array(StoredRoute),
});
const RouteKey = v.strictObject({ source: v.nullable(v.string()), group: v.string() });
const Record = v.strictObject({
  seq: v.pipe(v.number(), v.integer(), v.minValue(1)),
  set: v.array(StoredRoute), del: v.array(RouteKey), vifs_set: v.array(StoredVif), vifs_del: v.array(IfName),
});
export type JournalRecord = v.InferOutput<typeof Record>;

function check<S extends v.GenericSchema>(schema: S, input: unknown): v.InferOutput<S> {
  const r = v.safeParse(schema, input, { abortEarly: true });
  if (r.success) return r.output;
  const issue = r.issues[0];
  const path = issue ? v.getDotPath(issue) : null;
  throw new Error(`${path ?? "top level"}: ${issue?.message ?? "invalid"}`);
}

function checkedRoute(r: v.InferOutput<typeof StoredRoute>): Route {
  const route: Route = { source: r.source === null ? null : checkSource(r.source), group: checkGroup(r.group), iif: r.iif, oifs: r.oifs };
  if (route.oifs.some((o) => o.ifname === route.iif)) throw new Error(`route ${routeKey(route.source, route.group)} lists its iif as an oif`);
  return route;
}

export function configToJson(config: Config, seq: number): { format: string; version: number; seq: number; vifs: object[]; routes: object[] } {
  return {
    format: STATE_FORMAT, version: STATE_VERSION, seq,
    vifs: [...config.vifs.values()].map((x) => ({ ifname: x.ifname, threshold: x.threshold })),
    routes: [...config.routes.values()].map((r) => ({ source: r.source, group: r.group, iif: r.iif, oifs: r.oifs })),
  };
}

export function configFromJson(json: unknown): { config: Config; seq: number } {
  const snap = check(Snapshot, json);
  const config = emptyConfig();
  for (const x of snap.vifs) {
    if (config.vifs.has(x.ifname)) throw new Error(`VIF '${x.ifname}' is listed twice`);
    config.vifs.set(x.ifname, x);
  }
  for (const r of snap.routes) {
    const route = checkedRoute(r);
    const key = routeKey(route.source, route.group);
    if (config.routes.has(key)) throw new Error(`route ${key} is listed twice`);
    config.routes.set(key, route);
  }
  return { config, seq: snap.seq ?? 0 };
}

/** What one transaction touched: route keys and VIF names. */
export interface Delta { routes: Set<string>; vifs: Set<string> }

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

/** Replays one journal record onto `config` (mutates it). */
export function replayRecord(config: Config, json: unknown): number {
  const rec = check(Record, json);
  for (const r of rec.set) {
    const route = checkedRoute(r);
    config.routes.set(routeKey(route.source, route.group), route);
  }
  for (const k of rec.del) config.routes.delete(routeKey(k.source, k.group));
  for (const x of rec.vifs_set) config.vifs.set(x.ifname, x);
  for (const n of rec.vifs_del) config.vifs.delete(n);
  return rec.seq;
}
