/**
 * A success response line written in pieces (SHOW of a large table): the same bytes as
 * JSON.stringify({status: "ok", dry_run, changes: [], result, id}) + "\n", where the result's
 * text comes from an iterator, one piece at a time. Nothing is made before it is asked for, so
 * the writer decides how much exists at once (connection.ts: one piece, and only once the
 * previous one is taken).
 */
import type { Response } from "./messages.js";

export class StreamedOk {
  private stage: "head" | "result" | "tail" | "done" = "head";

  constructor(
    private readonly result: Iterator<string, void, undefined>,
    private readonly dryRun: boolean,
    private readonly id?: number | string,
  ) {}

  /** The same answer for a request that carried an id (echoed last, like withId() does for a Response). */
  withId(id: number | string): StreamedOk {
    return new StreamedOk(this.result, this.dryRun, id);
  }

  /** True once the last piece (the one that ends with the newline) has been handed out. */
  get done(): boolean {
    return this.stage === "done";
  }

  /** The next piece; "" once done. */
  next(): string {
    switch (this.stage) {
      case "head":
        this.stage = "result";
        return `{"status":"ok","dry_run":${String(this.dryRun)},"changes":[],"result":`;
      case "result": {
        const piece = this.result.next();
        if (piece.done !== true) return piece.value;
        this.stage = "tail";
        return this.next();
      }
      case "tail":
        this.stage = "done";
        return `${this.id === undefined ? "" : `,"id":${JSON.stringify(this.id)}`}}\n`;
      case "done":
        return "";
    }
  }
}

/** What a request is answered with: one line written at once, or one written in pieces. */
export type Answer = Response | StreamedOk;
