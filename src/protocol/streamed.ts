/**
 * A success response line written in pieces (SHOW of a large table, a transaction with many
 * kernel steps): the same bytes as JSON.stringify({status: "ok", dry_run, changes, result, id}) +
 * "\n", where the text of `changes` and of `result` comes from iterators, one piece at a time.
 * Nothing is made before it is asked for, so the writer decides how much exists at once
 * (connection.ts: one piece, and only once the previous one is taken).
 */
import type { Response } from "./messages.js";

/** ~110 bytes of JSON per kernel step (describeStep): a piece of ~30 KB. */
export const CHANGES_PER_PIECE = 256;

/** What a streamed answer holds besides its result. */
export interface StreamedParts {
  /** The text of the `changes` array in pieces that join to its JSON (jsonArrayPieces); none: []. */
  changes?: Iterable<string>;
  /** How many changes those pieces list (for the audit record). */
  changeCount?: number;
  /** The request's id, echoed last (as withId() does for a Response). */
  id?: number | string;
}

export class StreamedOk {
  private readonly pieces: Iterator<string, void, undefined>;
  private last = false;

  constructor(
    private readonly result: Iterable<string>,
    private readonly dryRun: boolean,
    private readonly parts: StreamedParts = {},
  ) {
    this.pieces = this.line();
  }

  /** The same answer for a request that carried an id. */
  withId(id: number | string): StreamedOk {
    return new StreamedOk(this.result, this.dryRun, { ...this.parts, id });
  }

  get changeCount(): number {
    return this.parts.changeCount ?? 0;
  }

  /** True once the last piece (the one that ends with the newline) has been handed out. */
  get done(): boolean {
    return this.last;
  }

  /** The next piece; "" once done. */
  next(): string {
    const piece = this.pieces.next();
    return piece.done === true ? "" : piece.value;
  }

  private *line(): Generator<string, void, undefined> {
    let prefix = `{"status":"ok","dry_run":${String(this.dryRun)},"changes":`;
    for (const piece of this.parts.changes ?? ["[]"]) {
      yield prefix + piece;
      prefix = "";
    }
    prefix = `,"result":`;
    for (const piece of this.result) {
      yield prefix + piece;
      prefix = "";
    }
    // Set before the last piece is handed out: the writer asks `done` right after taking it.
    this.last = true;
    yield `${prefix}${this.parts.id === undefined ? "" : `,"id":${JSON.stringify(this.parts.id)}`}}\n`;
  }
}

/**
 * JSON.stringify(items.map(describe)) in pieces of `perPiece` items, each made only when asked
 * for: the array itself is kept, never its text (100 000 kernel steps: ~11 MB) nor all of its
 * descriptions at once.
 */
export function* jsonArrayPieces<T>(items: readonly T[], describe: (item: T) => unknown = (x) => x, perPiece = CHANGES_PER_PIECE): Generator<string, void, undefined> {
  if (items.length === 0) {
    yield "[]";
    return;
  }
  for (let from = 0; from < items.length; from += perPiece) {
    const text = JSON.stringify(items.slice(from, from + perPiece).map(describe));
    const end = from + perPiece >= items.length;
    yield from === 0 ? (end ? text : text.slice(0, -1)) : `,${end ? text.slice(1) : text.slice(1, -1)}`;
  }
}

/** What a request is answered with: one line written at once, or one written in pieces. */
export type Answer = Response | StreamedOk;
