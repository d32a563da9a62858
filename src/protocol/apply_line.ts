/**
 * An APPLY request line whose routes are in canonical form (an `mfc apply` of a compact file:
 * `JSON.stringify`'s layout, keys in the documented order) read without parsing its routes into a
 * JSON tree: they come straight from the line's bytes (model/route_bytes.ts), and only the rest of
 * the line, with `"routes":[]` in their place, goes through JSON.parse and the usual checks.
 * At 100 000 routes the decoding, the parse and the tree's garbage were ~30 % of the daemon's work.
 *
 * A shortcut only: any other line gives undefined and is read the general way (handlers.ts), and
 * the result is the same either way (test/unit/apply_line.test.ts).
 */
import { OifLists } from "../model/oif_lists.js";
import { scanRoutes } from "../model/route_bytes.js";
import type { Route } from "../model/types.js";

const ROUTES_KEY = Buffer.from('"routes":[');
/** Below this a line is read the general way: the shortcut pays only for large applies. */
const APPLY_LINE_MIN_BYTES = 64 * 1024;

/** `request`: the line parsed with `"routes":[]`; `routes`: what that array held, as APPLY's routes. */
export interface ApplyLine { request: Record<string, unknown>; routes: Route[] }

export function readApplyLine(line: Buffer, minBytes = APPLY_LINE_MIN_BYTES): ApplyLine | undefined {
  if (line.length < minBytes) return undefined;
  const at = line.indexOf(ROUTES_KEY);
  if (at < 0) return undefined;
  const scanned = scanRoutes(line, at + ROUTES_KEY.length, new OifLists());
  if (scanned === undefined) return undefined;
  let text: string;
  try {
    // Cut at ASCII bytes (the key's quote, after the ']'): no UTF-8 sequence is split.
    const decoder = new TextDecoder("utf-8", { fatal: true });
    text = decoder.decode(line.subarray(0, at)) + '"routes":[]' + decoder.decode(line.subarray(scanned.end));
  } catch {
    return undefined;
  }
  // The only "routes" key of the line (JSON.parse would keep the last of two)...
  if (text.indexOf('"routes":') !== text.lastIndexOf('"routes":')) return undefined;
  let request: unknown;
  try {
    request = JSON.parse(text);
  } catch {
    return undefined;
  }
  // ... and it is the APPLY's state.routes: then the scanned array was that one.
  const payload = isObject(request) && request.action === "APPLY" ? request.payload : undefined;
  const state = isObject(payload) ? payload.state : undefined;
  if (!isObject(state) || !Array.isArray(state.routes) || state.routes.length !== 0) return undefined;
  return { request: request as Record<string, unknown>, routes: scanned.routes };
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}
