/**
 * `mfc show -j` into a pipe prints the answer's `result` exactly as the daemon wrote it (compact
 * JSON is what the CLI would print after JSON.parse and JSON.stringify anyway). This reads the
 * answer line as it arrives and writes the bytes of its top-level "result" object straight to the
 * output, keeping only the rest of the line (status, dry_run, changes, id: a few dozen bytes) to
 * parse: 100 000 routes are ~15 MB that the CLI neither holds, parses nor serialises.
 *
 * Only an ok answer's result is passed through (its status is checked when the "result" key is
 * reached); anything else - an error, a result that is not an object - is kept and parsed whole,
 * and an ok result of that kind is printed with JSON.stringify, as before.
 */
import type { Response } from "../protocol/messages.js";

/** Where the result goes: process.stdout, or anything with its write/drain contract. */
export interface Output {
  write(chunk: Uint8Array | string): boolean;
  once(event: "drain", listener: () => void): unknown;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const NEWLINE = 0x0a;
const RESULT_KEY = Buffer.from("result");

export class ResultPassThrough {
  /** Nesting depth outside strings: 1 inside the answer object. */
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** Bytes of the string being read at depth 1 (a key, or a short top-level value). */
  private topString: number[] | undefined;
  private lastTopString: number[] = [];
  /** envelope: kept; before: after `"result":`, waiting for its first byte; value: passed through. */
  private mode: "envelope" | "before" | "value" = "envelope";
  private passed = false;
  private readonly kept: Buffer[] = [];
  private wantsDrain = false;

  constructor(private readonly out: Output) {}

  /** True when the last push wrote more than `out` wants buffered: wait for onDrain. */
  get backpressure(): boolean {
    return this.wantsDrain;
  }

  onDrain(listener: () => void): void {
    this.out.once("drain", listener);
  }

  /** The answer will not be completed: a result printed in part gets its line ended. */
  abort(): void {
    if (this.mode === "value") this.out.write("\n");
    this.mode = "envelope";
  }

  /**
   * Takes the next bytes of the answer. Returns the response once its newline has arrived (bytes
   * after it are ignored: one request, one answer); a passed-through result reads as {}.
   * Throws when the line is not a JSON response.
   */
  push(chunk: Buffer): Response | undefined {
    this.wantsDrain = false;
    let from = 0; // start of the current run of kept (or passed) bytes
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i] as number;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (b === BACKSLASH) this.escaped = true;
        else if (b === QUOTE) {
          this.inString = false;
          if (this.topString) {
            this.lastTopString = this.topString;
            this.topString = undefined;
          }
        } else this.topString?.push(b);
        continue;
      }
      if (this.mode === "before") {
        if (b === 0x20 || b === 0x09 || b === 0x0d || b === NEWLINE) continue;
        if (b === 0x7b) { // '{': the result object starts here
          this.keep(chunk, from, i);
          this.kept.push(Buffer.from("{}"));
          this.mode = "value";
          this.passed = true;
          from = i;
        } else {
          this.mode = "envelope"; // not an object: kept, printed after parsing
        }
      }
      switch (b) {
        case QUOTE:
          this.inString = true;
          if (this.depth === 1 && this.mode === "envelope") this.topString = [];
          break;
        case 0x7b: // {
        case 0x5b: // [
          this.depth++;
          break;
        case 0x7d: // }
        case 0x5d: // ]
          this.depth--;
          if (this.mode === "value" && this.depth === 1) {
            this.pass(chunk, from, i + 1);
            this.pass(Buffer.from("\n"), 0, 1);
            this.mode = "envelope";
            from = i + 1;
          }
          break;
        case COLON:
          if (this.depth === 1 && this.mode === "envelope" && RESULT_KEY.equals(Buffer.from(this.lastTopString)) && this.okSoFar(chunk, from, i + 1)) {
            this.mode = "before";
          }
          break;
        case NEWLINE:
          if (this.depth === 0) {
            this.keep(chunk, from, i);
            return this.finish();
          }
          break;
      }
    }
    if (this.mode === "value") this.pass(chunk, from, chunk.length);
    else this.keep(chunk, from, chunk.length);
    return undefined;
  }

  /** Whether the answer up to its "result" key says status "ok" (it is printed only then). */
  private okSoFar(chunk: Buffer, from: number, to: number): boolean {
    const head = Buffer.concat([...this.kept, chunk.subarray(from, to)]).toString("utf8");
    try {
      return (JSON.parse(`${head}null}`) as { status?: unknown }).status === "ok";
    } catch {
      return false;
    }
  }

  private keep(chunk: Buffer, from: number, to: number): void {
    if (to > from) this.kept.push(chunk.subarray(from, to));
  }

  private pass(chunk: Buffer, from: number, to: number): void {
    if (to > from && !this.out.write(chunk.subarray(from, to))) this.wantsDrain = true;
  }

  private finish(): Response {
    const res = JSON.parse(Buffer.concat(this.kept).toString("utf8")) as Response;
    if (res.status === "ok" && !this.passed) this.out.write(`${JSON.stringify(res.result)}\n`);
    return res;
  }
}
