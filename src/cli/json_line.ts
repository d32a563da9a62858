/**
 * One NDJSON line from a JSON file, without parsing it into objects: `mfc apply` of 100 000 routes
 * reads ~10 MB, and decoding, `JSON.parse` and the garbage of its objects cost the CLI ~300 ms,
 * for a text it sends on as it is (docs/performance.md, "`mfc apply`: the request").
 *
 * A byte-level check of the JSON grammar (RFC 8259) and of UTF-8 (the daemon refuses a line that
 * is not), then the line breaks turned into spaces in place (JSON allows none inside a string, so
 * the text becomes one line). The caller falls back to `isUtf8` and `JSON.parse` when this says
 * no, for the same error messages as before.
 */

const OBJECT = 0;
const ARRAY = 1;

/**
 * True when `b` is one JSON text in UTF-8; its CR and LF bytes are then spaces (all of them are
 * between tokens, where JSON allows whitespace: inside a string it allows none). `b` is left as it
 * was when this says no, so that JSON.parse's message quoted the file's own text.
 */
export function toJsonLine(b: Uint8Array): boolean {
  return new JsonLineCheck(b).advance(b.length) === b.length;
}

/**
 * toJsonLine in steps, so that the part already checked can be sent while the rest is checked
 * (`mfc apply` of a large file, main.ts). Each step checks whole values; the line breaks of the
 * part checked become spaces, and are put back should a later step find the text is not JSON.
 */
export class JsonLineCheck {
  private i: number;
  private readonly stack: number[] = [];
  /** Checked and made one line: [0, done). */
  private done = 0;
  /** Where line breaks were turned into spaces, with the byte each was. */
  private readonly breaks: number[] = [];
  /** Once decided, what every later advance() returns. */
  private verdict: number | undefined;

  constructor(private readonly b: Uint8Array) {
    this.i = ws(b, 0);
  }

  /**
   * Checks on until at least `limit` (or the end): the end of the part checked so far, b.length
   * once all of `b` is one JSON text, or -1 when it is not (and `b` is as it was).
   */
  advance(limit: number): number {
    if (this.verdict !== undefined) return this.verdict;
    const ok = this.check(limit);
    if (ok === false) {
      this.restore();
      return (this.verdict = -1);
    }
    const end = ok ? this.b.length : this.i;
    // Searched in the new part only (a search of all of b would read to its end at every step).
    const part = Buffer.from(this.b.buffer, this.b.byteOffset + this.done, end - this.done);
    for (const byte of [0x0a, 0x0d]) {
      for (let k = part.indexOf(byte); k >= 0; k = part.indexOf(byte, k + 1)) {
        this.breaks.push(this.done + k, byte);
        part[k] = 0x20;
      }
    }
    this.done = end;
    if (ok) this.verdict = end;
    return end;
  }

  private restore(): void {
    for (let k = 0; k < this.breaks.length; k += 2) this.b[this.breaks[k] as number] = this.breaks[k + 1] as number;
  }

  /** true: all of b is one JSON text; false: it is not; undefined: whole values checked up to i >= limit. */
  private check(limit: number): boolean | undefined {
    const b = this.b;
    const n = b.length;
    const stack = this.stack;
    let i = this.i;
    for (;;) {
      // A value starts at i.
      if (i >= limit && i < n) {
        this.i = i;
        return undefined;
      }
      const c = b[i];
      if (c === 0x7b) {
        i = ws(b, i + 1);
        if (b[i] === 0x7d) i++;
        else {
          stack.push(OBJECT);
          i = key(b, i);
          if (i < 0) return false;
          continue;
        }
      } else if (c === 0x5b) {
        i = ws(b, i + 1);
        if (b[i] === 0x5d) i++;
        else {
          stack.push(ARRAY);
          continue;
        }
      } else if (c === 0x22) i = str(b, i);
      else if (c === 0x74) i = word(b, i, TRUE);
      else if (c === 0x66) i = word(b, i, FALSE);
      else if (c === 0x6e) i = word(b, i, NULL);
      else i = num(b, i);
      if (i < 0) return false;
      // After a value: close what it ends, or a comma and the next value.
      for (;;) {
        i = ws(b, i);
        const top = stack[stack.length - 1];
        if (top === undefined) return i === n;
        const d = b[i];
        if (d === 0x2c) {
          i = ws(b, i + 1);
          if (top === OBJECT) {
            i = key(b, i);
            if (i < 0) return false;
          }
          break;
        }
        if (d !== (top === OBJECT ? 0x7d : 0x5d)) return false;
        stack.pop();
        i++;
      }
    }
  }
}

function ws(b: Uint8Array, i: number): number {
  for (;;) {
    const c = b[i];
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
    else return i;
  }
}

/** A member's name and its colon: the index of its value, or -1. */
function key(b: Uint8Array, i: number): number {
  if (b[i] !== 0x22) return -1;
  i = str(b, i);
  if (i < 0) return -1;
  i = ws(b, i);
  if (b[i] !== 0x3a) return -1;
  return ws(b, i + 1);
}

const ESCAPES = new Set([0x22, 0x5c, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74]);

/** A string starting at its opening quote: the index after its closing quote, or -1. */
function str(b: Uint8Array, i: number): number {
  const n = b.length;
  for (i++; i < n; i++) {
    const c = b[i] as number;
    if (c === 0x22) return i + 1;
    if (c < 0x20) return -1;
    if (c >= 0x80) {
      i = utf8(b, i);
      if (i < 0) return -1;
      continue;
    }
    if (c !== 0x5c) continue;
    const e = b[++i];
    if (e === 0x75) {
      for (let k = 0; k < 4; k++) if (!isHex(b[++i])) return -1;
    } else if (e === undefined || !ESCAPES.has(e)) return -1;
  }
  return -1;
}

/**
 * One UTF-8 sequence starting at `i` (a byte >= 0x80): the index of its last byte, or -1. Only
 * strings may hold such bytes (anywhere else the grammar refuses them), so a text this takes is
 * UTF-8 text (WHATWG: no overlong form, no surrogate, nothing past U+10FFFF).
 */
function utf8(b: Uint8Array, i: number): number {
  const c = b[i] as number;
  let more: number;
  let min: number;
  if (c >= 0xc2 && c <= 0xdf) [more, min] = [1, 0x80];
  else if (c >= 0xe0 && c <= 0xef) [more, min] = [2, 0x800];
  else if (c >= 0xf0 && c <= 0xf4) [more, min] = [3, 0x10000];
  else return -1;
  let cp = c & (0x3f >> more);
  for (let k = 1; k <= more; k++) {
    const d = b[i + k];
    if (d === undefined || (d & 0xc0) !== 0x80) return -1;
    cp = (cp << 6) | (d & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return -1;
  return i + more;
}

const isHex = (c: number | undefined): boolean =>
  c !== undefined && ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66));
const isDigit = (c: number | undefined): boolean => c !== undefined && c >= 0x30 && c <= 0x39;

/** -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?: the index after it, or -1. */
function num(b: Uint8Array, i: number): number {
  if (b[i] === 0x2d) i++;
  if (b[i] === 0x30) i++;
  else if (isDigit(b[i])) while (isDigit(b[i])) i++;
  else return -1;
  if (b[i] === 0x2e) {
    if (!isDigit(b[++i])) return -1;
    while (isDigit(b[i])) i++;
  }
  if (b[i] === 0x65 || b[i] === 0x45) {
    i++;
    if (b[i] === 0x2b || b[i] === 0x2d) i++;
    if (!isDigit(b[i])) return -1;
    while (isDigit(b[i])) i++;
  }
  return i;
}

const TRUE = [0x74, 0x72, 0x75, 0x65];
const FALSE = [0x66, 0x61, 0x6c, 0x73, 0x65];
const NULL = [0x6e, 0x75, 0x6c, 0x6c];

function word(b: Uint8Array, i: number, w: number[]): number {
  for (let k = 0; k < w.length; k++) if (b[i + k] !== w[k]) return -1;
  return i + w.length;
}
