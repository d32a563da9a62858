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
import { RoutesMark, scanRoutes } from "../model/route_bytes.js";
import type { Route } from "../model/types.js";

const ROUTES_KEY = Buffer.from('"routes":[');
/** Below this a line is read the general way: the shortcut pays only for large applies. */
const APPLY_LINE_MIN_BYTES = 64 * 1024;

/** `request`: the line parsed with `state.routes` empty; `routes`: what that array held, as APPLY's routes. */
export interface ApplyLine { request: Record<string, unknown>; routes: Route[] }

export function readApplyLine(line: Buffer, minBytes = APPLY_LINE_MIN_BYTES): ApplyLine | undefined {
  if (line.length < minBytes) return undefined;
  const at = line.indexOf(ROUTES_KEY);
  if (at < 0) return undefined;
  const scanned = scanRoutes(line, at + ROUTES_KEY.length, new OifLists());
  if (scanned === undefined) return undefined;
  // The APPLY's state.routes must hold the mark, or the scanned array is not the one meant.
  const mark = new RoutesMark();
  let text: string;
  try {
    // Cut at ASCII bytes (the key's quote, after the ']'): no UTF-8 sequence is split. The tail
    // keeps a byte-order mark as the line decoded whole does (a decoder drops a leading one).
    text = new TextDecoder("utf-8", { fatal: true }).decode(line.subarray(0, at)) + `"routes":${mark.json}` +
      new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(line.subarray(scanned.end));
  } catch {
    return undefined;
  }
  let request: unknown;
  try {
    request = JSON.parse(text);
  } catch {
    return undefined;
  }
  const payload = isObject(request) && request.action === "APPLY" ? request.payload : undefined;
  const state = isObject(payload) ? payload.state : undefined;
  if (!isObject(state) || !mark.isAt(state.routes)) return undefined;
  state.routes = [];
  return { request: request as Record<string, unknown>, routes: scanned.routes };
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}
