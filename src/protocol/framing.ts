/**
 * NDJSON framing with a hard cap: bytes are kept only until a newline, and a line that grows past
 * `maxBytes` is reported once, without buffering more than the limit.
 */
export type FrameEvent = { kind: "line"; line: Buffer } | { kind: "too_large" };

export class LineSplitter {
  private chunks: Buffer[] = [];
  private size = 0;
  private overflowed = false;

  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): FrameEvent[] {
    if (this.overflowed) return [];
    const events: FrameEvent[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl);
      if (this.size + piece.length > this.maxBytes) return this.overflow(events);
      events.push({ kind: "line", line: this.chunks.length ? Buffer.concat([...this.chunks, piece]) : piece });
      this.chunks = [];
      this.size = 0;
      start = nl + 1;
    }
    const rest = chunk.subarray(start);
    if (this.size + rest.length > this.maxBytes) return this.overflow(events);
    if (rest.length) {
      this.chunks.push(rest);
      this.size += rest.length;
    }
    return events;
  }

  private overflow(events: FrameEvent[]): FrameEvent[] {
    this.overflowed = true;
    this.chunks = [];
    this.size = 0;
    events.push({ kind: "too_large" });
    return events;
  }
}
