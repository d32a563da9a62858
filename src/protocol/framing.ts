/**
 * NDJSON framing with a hard cap, pulled one line at a time: the connection asks for the next
 * line only when it is ready to serve it, so unread lines stay raw bytes in one buffer (never a
 * queue of parsed requests). Bytes are copied into a single growable buffer, not kept as one
 * Buffer object per chunk: a client writing one byte at a time costs one byte, not a Buffer each.
 * Memory held: at most `maxBytes` plus the last chunk pushed, and nothing once overflowed.
 */
export type FrameEvent = { kind: "line"; line: Buffer } | { kind: "too_large" };

/** Smallest buffer allocated (a one-byte chunk should not cost a reallocation per byte). */
const MIN_CAPACITY = 256;
/** A buffer this large, mostly consumed, is copied into a smaller one rather than kept. */
const SHRINK_ABOVE = 64 * 1024;
const EMPTY = Buffer.alloc(0);
/** A partial line past this grows 16-fold, not 2-fold (push). */
const LARGE = 1024 * 1024;

export class LineSplitter {
  /**
   * Bytes [start, end) are unconsumed; the newline search resumes at `scan`. Lines handed out are
   * views of `buf` below `start`: those bytes are never written again (a buffer is only appended
   * to past `end`, or replaced), so a line stays intact while its request is served.
   */
  private buf: Buffer = EMPTY;
  private start = 0;
  private end = 0;
  private scan = 0;
  /** Whether `buf` was allocated here: an adopted chunk is never written to. */
  private owned = false;
  /** After an over-long line: `overflow` until reported once by next(), then `dead` for good. */
  private state: "ok" | "overflow" | "dead" = "ok";

  /**
   * `allocate`: where a grown buffer comes from (the daemon's backs a large line's with huge pages,
   * kernel/huge_pages.ts: its pages are all fresh).
   */
  constructor(
    private readonly maxBytes: number,
    private readonly allocate: (size: number) => Buffer = (size) => Buffer.allocUnsafeSlow(size),
  ) {}

  /** Unconsumed bytes held (complete lines not yet taken plus a partial one). */
  get buffered(): number {
    return this.end - this.start;
  }

  /** Bytes of buffer kept alive (capacity), for the memory bound. */
  get retained(): number {
    return this.buf.length;
  }

  /** Takes ownership of `chunk` (it must not be modified afterwards). */
  push(chunk: Buffer): void {
    if (this.state !== "ok" || chunk.length === 0) return;
    // Only a partial line is held and this chunk does not end it: refuse before copying.
    if (this.scan === this.end && this.end - this.start + chunk.length > this.maxBytes && chunk.indexOf(0x0a) < 0) {
      this.overflow();
      return;
    }
    if (this.start === this.end) {
      // Nothing held: keep the chunk itself (the common case, a whole request in one read, copies nothing).
      this.buf = chunk;
      this.owned = false;
      this.start = this.scan = 0;
      this.end = chunk.length;
      return;
    }
    if (!this.owned || this.buf.length - this.end < chunk.length) {
      // Doubling keeps copies amortised; the cap keeps the slack within the limit. Past LARGE,
      // 16-fold: each growth writes the line again into fresh pages, and fresh pages are what a
      // large line's receipt cost (a 9 MB APPLY on a cold daemon: 103-106 -> 70-78 ms, its answer
      // ~35 ms sooner; docs/performance.md, "Sixth round"). Capacity never written is never paged in.
      const needed = this.end - this.start + chunk.length;
      this.reallocate(Math.max(needed, Math.min((needed > LARGE ? 16 : 2) * needed, this.maxBytes + 1), MIN_CAPACITY));
    }
    chunk.copy(this.buf, this.end);
    this.end += chunk.length;
  }

  /** The next complete line (without its newline), `too_large` once, or undefined: more bytes needed. */
  next(): FrameEvent | undefined {
    if (this.state !== "ok") {
      if (this.state === "dead") return undefined;
      this.state = "dead";
      return { kind: "too_large" };
    }
    // Only [scan, end): Buffer#indexOf searches to the buffer's end, and a large line's buffer
    // has megabytes of capacity past `end` that every chunk's search would read again.
    const held = this.buf.length - this.end > SHRINK_ABOVE ? this.buf.subarray(0, this.end) : this.buf;
    const nl = held.indexOf(0x0a, this.scan);
    if (nl < 0 || nl >= this.end) {
      this.scan = this.end;
      if (this.end - this.start <= this.maxBytes) return undefined;
      this.overflow();
      return this.next();
    }
    if (nl - this.start > this.maxBytes) {
      this.overflow();
      return this.next();
    }
    const line = this.buf.subarray(this.start, nl);
    this.start = this.scan = nl + 1;
    if (this.start === this.end) this.clear();
    else if (this.buf.length > SHRINK_ABOVE && this.end - this.start < this.buf.length / 4) {
      this.reallocate(Math.max(2 * (this.end - this.start), MIN_CAPACITY));
    }
    return { kind: "line", line };
  }

  /** Drops everything held (the connection is gone). */
  clear(): void {
    this.buf = EMPTY;
    this.start = this.end = this.scan = 0;
    this.owned = false;
  }

  /** Moves the unconsumed bytes into a new buffer of `capacity` bytes. */
  private reallocate(capacity: number): void {
    // allocUnsafeSlow: a small allocUnsafe would pin a shared 8 KiB pool slab for as long as we hold it.
    const next = this.allocate(capacity);
    this.buf.copy(next, 0, this.start, this.end);
    this.scan -= this.start;
    this.end -= this.start;
    this.start = 0;
    this.buf = next;
    this.owned = true;
  }

  private overflow(): void {
    this.clear();
    this.state = "overflow";
  }
}
