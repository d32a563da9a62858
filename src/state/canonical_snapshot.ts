/**
 * A fast reader of the snapshot exactly as FileStateStore writes it (`JSON.stringify` of
 * configToJson, no whitespace, keys in order): its routes are read from their bytes
 * (model/route_bytes.ts), without the parse tree that made ~40 % of start-up (docs/performance.md,
 * "Fifth round").
 *
 * It never decides that a file is wrong: anything it does not recognise (whitespace, another key
 * order, an escape or a non-ASCII byte in a string, a number not written as digits, a check that
 * fails, a route listed twice) returns undefined, and the caller reads the file with JSON.parse
 * and configFromJson, whose result and errors stay the reference (test/unit/canonical_snapshot.test.ts
 * holds the two to the same result on every input).
 */
import type { OifLists } from "../model/oif_lists.js";
import { RoutesMark, scanRoutes } from "../model/route_bytes.js";
import { routeKey, type MapConfig } from "../model/types.js";
import { configFromJson } from "./format.js";

const ROUTES_KEY = Buffer.from(',"routes":[');

/** The config of a canonical snapshot, or undefined: then the caller parses it the general way. */
export function configFromCanonicalSnapshot(bytes: Buffer, lists: OifLists): { config: MapConfig; seq: number } | undefined {
  const at = bytes.indexOf(ROUTES_KEY);
  if (at < 0) return undefined;
  const scanned = scanRoutes(bytes, at + ROUTES_KEY.length, lists);
  if (scanned === undefined) return undefined;
  const { routes, end } = scanned;
  // The rest of the file (format, version, seq, vifs, joins) is small: the general reader checks
  // it, with a mark in the place of the array scanned (RoutesMark): the top-level routes must hold
  // it, or the scan read another array. Cut at ASCII bytes (the ',' before the key, after the
  // ']'), so no UTF-8 sequence is split.
  const mark = new RoutesMark();
  let parsed: { config: MapConfig; seq: number };
  try {
    const json = JSON.parse(bytes.toString("utf8", 0, at) + `,"routes":${mark.json}` + bytes.toString("utf8", end)) as unknown;
    if (typeof json !== "object" || json === null || !mark.isAt((json as { routes?: unknown }).routes)) return undefined;
    (json as { routes: unknown[] }).routes = [];
    parsed = configFromJson(json, lists);
  } catch {
    return undefined;
  }
  const own = parsed.config.routes;
  for (const route of routes) {
    const key = routeKey(route.source, route.group);
    if (own.has(key)) return undefined;
    own.set(key, route);
  }
  return parsed;
}

