/**
 * An APPLY request line whose routes are in canonical form (an `mfc apply` of a compact file:
 * `JSON.stringify`'s layout, keys in the documented order) read without parsing its routes into a
 * JSON tree: they come straight from the line's bytes (model/route_bytes.ts), and only the rest of
 * the line, with an empty array in their place, goes through JSON.parse and the usual checks.
 * At 100 000 routes the decoding, the parse and the tree's garbage were ~30 % of the daemon's work.
 *
 * A shortcut only: any other line gives undefined and is read the general way (handlers.ts), and
 * the result is the same either way (test/unit/apply_line.test.ts).
 */
import { OifLists } from "../model/oif_lists.js";
import { parseAroundRoutes } from "../model/route_bytes.js";
import type { Route } from "../model/types.js";

const ROUTES_KEY = Buffer.from('"routes":[');
/** Below this a line is read the general way: the shortcut pays only for large applies. */
const APPLY_LINE_MIN_BYTES = 64 * 1024;

/**
 * `request`: the line parsed with `state.routes` empty; `routes`: what that array held, as APPLY's
 * routes; `routesText`: when each route was written as the state file writes it, the array's
 * bytes between its brackets (the snapshot of this APPLY writes them as they are: engine.ts).
 */
export interface ApplyLine { request: Record<string, unknown>; routes: Route[]; routesText: Buffer | undefined }

export function readApplyLine(line: Buffer, minBytes = APPLY_LINE_MIN_BYTES): ApplyLine | undefined {
  if (line.length < minBytes) return undefined;
  // Decoded as the line whole would be: UTF-8 or nothing, and a byte-order mark dropped only at the
  // very start (a decoder drops a leading one: the tail's must stay, for JSON to refuse it).
  const read = parseAroundRoutes(line, ROUTES_KEY, new OifLists(), (part, tail) => new TextDecoder("utf-8", { fatal: true, ignoreBOM: tail }).decode(part));
  if (read === undefined) return undefined;
  const request = read.json;
  const payload = isObject(request) && request.action === "APPLY" ? request.payload : undefined;
  const state = isObject(payload) ? payload.state : undefined;
  // The APPLY's state.routes holds the mark, or the scanned array is not the one meant.
  if (!isObject(state) || !read.isMark(state.routes)) return undefined;
  state.routes = [];
  return { request: request as Record<string, unknown>, routes: read.routes, routesText: read.text };
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}
