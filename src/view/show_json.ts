/**
 * The SHOW result as JSON text in pieces: `{"vifs":[...],"joins":[...],"routes":[` first, then the routes a few
 * hundred at a time, then `]}`. The pieces joined are exactly JSON.stringify() of the whole
 * view (each piece is JSON.stringify of its rows without the brackets), so a client cannot tell
 * the difference; the daemon never holds more than one piece of it.
 */
import type { CounterSource, ShowSnapshot } from "./model.js";

/** ~150 bytes of JSON per route: a piece of ~40 KB, made in well under a millisecond plus its ioctls. */
export const ROUTES_PER_PIECE = 256;

/** Each piece is made (and its route counters read) only when the caller asks for it. */
export function* showResultPieces(snap: ShowSnapshot, counters: CounterSource, perPiece = ROUTES_PER_PIECE): Generator<string, void, undefined> {
  const parts: string[] = [];
  if (snap.vifs) parts.push(`"vifs":${JSON.stringify(snap.vifs)}`);
  if (snap.joins) parts.push(`"joins":${JSON.stringify(snap.joins)}`);
  const head = `{${parts.join(",")}`;
  const n = snap.routeCount;
  if (n === undefined) {
    yield `${head}}`;
    return;
  }
  yield `${head}${parts.length > 0 ? "," : ""}"routes":[`;
  for (let from = 0; from < n; from += perPiece) {
    const rows = JSON.stringify(snap.routeViews(from, from + perPiece, counters));
    yield `${from === 0 ? "" : ","}${rows.slice(1, -1)}`;
  }
  yield "]}";
}
