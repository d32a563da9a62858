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
import { parseAroundRoutes } from "../model/route_bytes.js";
import { routeKey, type MapConfig } from "../model/types.js";
import { configFromJson } from "./format.js";

const ROUTES_KEY = Buffer.from(',"routes":[');

/** The config of a canonical snapshot, or undefined: then the caller parses it the general way. */
export function configFromCanonicalSnapshot(bytes: Buffer, lists: OifLists): { config: MapConfig; seq: number } | undefined {
  // The rest of the file (format, version, seq, vifs, joins) is small: the general reader checks
  // it, decoded as the general reader decodes the whole file (a byte-order mark kept).
  const read = parseAroundRoutes(bytes, ROUTES_KEY, lists, (part) => part.toString("utf8"));
  if (read === undefined) return undefined;
  const json = read.json as { routes?: unknown } | null;
  // The top-level routes hold the mark, or the scan read another array.
  if (typeof json !== "object" || json === null || !read.isMark(json.routes)) return undefined;
  json.routes = [];
  let parsed: { config: MapConfig; seq: number };
  try {
    parsed = configFromJson(json, lists);
  } catch {
    return undefined;
  }
  const own = parsed.config.routes;
  for (const route of read.routes) {
    const key = routeKey(route.source, route.group);
    if (own.has(key)) return undefined;
    own.set(key, route);
  }
  return parsed;
}
