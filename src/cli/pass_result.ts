/**
 * Reads an answer line as it arrives without parsing the big parts the CLI does not print:
 *
 * - `pass: "result"` (`mfc show -j` into a pipe): the bytes of an ok answer's top-level "result"
 *   object go straight to the output (compact JSON is what the CLI would print after JSON.parse
 *   and JSON.stringify anyway) and it reads as {}: 100 000 routes are ~15 MB that the CLI neither
 *   holds, parses nor serialises.
 * - `pass: "line"` (`-j` into a pipe for anything but show: the output is the response as it
 *   came): every byte of the line, its newline included, goes to the output as it arrives.
 * - `skipChanges` (text output without --dry-run, and the above): an ok answer's top-level
 *   "changes" array is neither kept nor parsed and reads as [] (an apply of 100 000 routes: ~11 MB).
 *
 * Only the rest of the line (status, dry_run, result, id: small) is kept and parsed. A part is
 * passed or skipped only in an ok answer (the status is checked when its key is reached) and only
 * when it is of the expected kind (result an object, changes an array); anything else is kept and
 * parsed whole, and an ok result of that kind is printed with JSON.stringify, as before.
 */
import type { Response } from "../protocol/messages.js";

/** Where passed bytes go: process.stdout, or anything with its write/drain contract. */
export interface Output {
  write(chunk: Uint8Array | string): boolean;
  once(event: "drain", listener: () => void): unknown;
}

/** What is done with an answer besides parsing its envelope (see above). */
export interface AnswerHandling {
  pass?: "result" | "line";
  skipChanges?: boolean;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const NEWLINE = 0x0a;
const RESULT_KEY = Buffer.from("result");
const CHANGES_KEY = Buffer.from("changes");
/** Enough for 200 characters of UTF-8 (lineStart). */
const START_BYTES = 800;

export class ResultPassThrough {
  /** Nesting depth outside strings: 1 inside the answer object. */
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** Bytes of the string being read at depth 1 (a key, or a short top-level value). */
  private topString: number[] | undefined;
  private lastTopString: number[] = [];
  /** envelope: kept; before: after a key whose value is passed or skipped, waiting for its first byte; value: inside it. */
  private mode: "envelope" | "before" | "value" = "envelope";
  /** What happens to the value of `before`/`value`: written to the output, or dropped. */
  private value: "pass" | "skip" = "pass";
  private passed = false;
  /** Line mode: bytes of the line written, its newline not yet. */
  private lineOpen = false;
  private readonly kept: Buffer[] = [];
  private wantsDrain = false;
  /** The line's first bytes, for the message about a line that is not a response. */
  private readonly start: Buffer[] = [];
  private startBytes = 0;

  constructor(private readonly out?: Output, private readonly how: AnswerHandling = { pass: "result" }) {}

  /** True when the last push wrote more than `out` wants buffered: wait for onDrain. */
  get backpressure(): boolean {
    return this.wantsDrain;
  }

  onDrain(listener: () => void): void {
    this.out?.once("drain", listener);
  }

  /** The answer will not be completed: a result or line printed in part gets its line ended. */
  abort(): void {
    if ((this.mode === "value" && this.value === "pass") || this.lineOpen) this.out?.write("\n");
    this.mode = "envelope";
    this.lineOpen = false;
  }

  /**
   * Takes the next bytes of the answer. Returns the response once its newline has arrived (bytes
   * after it are ignored: one request, one answer); a passed-through result reads as {}, skipped
   * changes as []. Throws when the line is not a JSON response.
   */
  push(chunk: Buffer): Response | undefined {
    this.wantsDrain = false;
    if (this.startBytes < START_BYTES) {
      const nl = chunk.indexOf(NEWLINE);
      const piece = chunk.subarray(0, Math.min(START_BYTES - this.startBytes, nl < 0 ? chunk.length : nl));
      this.start.push(piece);
      this.startBytes = nl < 0 ? this.startBytes + piece.length : START_BYTES;
    }
    let from = 0; // start of the current run of kept (or passed, or skipped) bytes
    for (let i = 0; i < chunk.length; i++) {
      if (this.mode === "value") {
        i = this.inValue(chunk, i);
        if (i === chunk.length) break;
      }
      const b = chunk[i] as number;
      if (b === NEWLINE) {
        // The line ends at its first newline byte, wherever it is (none is valid inside a string).
        if (this.how.pass === "line") {
          this.pass(chunk, 0, i + 1);
          this.lineOpen = false;
        }
        if (this.inString || this.depth !== 0 || this.mode === "value") throw new SyntaxError("the answer line ends inside a value");
        this.keep(chunk, from, i);
        return this.finish();
      }
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
        if (b === 0x20 || b === 0x09 || b === 0x0d) continue;
        if (b === (this.value === "pass" ? 0x7b : 0x5b)) { // the object to pass, the array to skip
          this.keep(chunk, from, i);
          this.kept.push(Buffer.from(this.value === "pass" ? "{}" : "[]"));
          this.mode = "value";
          if (this.value === "pass") this.passed = true;
          from = i;
        } else {
          this.mode = "envelope"; // not of that kind: kept, parsed
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
            if (this.value === "pass") {
              this.pass(chunk, from, i + 1);
              this.pass(Buffer.from("\n"), 0, 1);
            }
            this.mode = "envelope";
            from = i + 1;
          }
          break;
        case COLON:
          if (this.depth === 1 && this.mode === "envelope") {
            const key = Buffer.from(this.lastTopString);
            const part = this.how.pass === "result" && RESULT_KEY.equals(key) ? "pass" : this.how.skipChanges === true && CHANGES_KEY.equals(key) ? "skip" : undefined;
            if (part !== undefined && this.okSoFar(chunk, from, i + 1)) {
              this.mode = "before";
              this.value = part;
            }
          }
          break;
      }
    }
    if (this.mode !== "value") this.keep(chunk, from, chunk.length);
    else if (this.value === "pass") this.pass(chunk, from, chunk.length);
    if (this.how.pass === "line") {
      this.pass(chunk, 0, chunk.length);
      this.lineOpen ||= chunk.length > 0;
    }
    return undefined;
  }

  /**
   * The bulk of a passed or skipped value (megabytes of changes): a tight loop over what matters
   * there - strings and brackets. Returns where push() takes over: the bracket that closes the
   * value, a newline, or the end of the chunk.
   */
  private inValue(chunk: Buffer, from: number): number {
    let depth = this.depth;
    let inString = this.inString;
    let escaped = this.escaped;
    let i = from;
    for (; i < chunk.length; i++) {
      const b = chunk[i] as number;
      if (b === NEWLINE) break;
      if (inString) {
        if (escaped) escaped = false;
        else if (b === BACKSLASH) escaped = true;
        else if (b === QUOTE) inString = false;
      } else if (b === QUOTE) inString = true;
      else if (b === 0x7b || b === 0x5b) depth++;
      else if (b === 0x7d || b === 0x5d) {
        if (depth === 2) break;
        depth--;
      }
    }
    this.depth = depth;
    this.inString = inString;
    this.escaped = escaped;
    return i;
  }

  /** The line's first 200 characters (what the CLI says of a line that is not a response). */
  lineStart(): string {
    return Buffer.concat(this.start).toString("utf8").slice(0, 200);
  }

  /** Whether the answer up to this key says status "ok" (its part is passed or skipped only then). */
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
    if (to > from && this.out?.write(chunk.subarray(from, to)) === false) this.wantsDrain = true;
  }

  private finish(): Response {
    const res = JSON.parse(Buffer.concat(this.kept).toString("utf8")) as Response;
    if (this.how.pass === "result" && res.status === "ok" && !this.passed) this.out?.write(`${JSON.stringify(res.result)}\n`);
    return res;
  }
}
