/** src/protocol/framing.ts: NDJSON line splitting with a hard size cap, pulled line by line. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { LineSplitter, type FrameEvent } from "../../src/protocol/framing.js";

const b = (s: string): Buffer => Buffer.from(s, "utf8");

/** Pushes `chunk` (if any), then pulls every event the splitter has ready. */
function feed(s: LineSplitter, chunk?: Buffer): FrameEvent[] {
  if (chunk) s.push(chunk);
  const events: FrameEvent[] = [];
  for (let e = s.next(); e; e = s.next()) events.push(e);
  return events;
}

/** Events as strings: the line's text, or "!too_large". */
function texts(events: FrameEvent[]): string[] {
  return events.map((e) => (e.kind === "line" ? e.line.toString("utf8") : "!too_large"));
}

const buffered = (s: LineSplitter): number => s.buffered;

/** Heap plus Buffer memory after a full GC (the flag is set at run time: no node option needed). */
function liveBytes(): number {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

void describe("LineSplitter", () => {
  void test("one line per chunk", () => {
    const s = new LineSplitter(1024);
    assert.deepEqual(texts(feed(s, b('{"action":"PING"}\n'))), ['{"action":"PING"}']);
    assert.equal(buffered(s), 0);
  });

  void test("a line split across chunks, byte by byte", () => {
    const s = new LineSplitter(1024);
    const msg = '{"action":"SHOW","payload":{"what":"routes"}}\n';
    const out: string[] = [];
    for (const ch of b(msg)) out.push(...texts(feed(s, Buffer.from([ch]))));
    assert.deepEqual(out, [msg.slice(0, -1)]);
    assert.equal(buffered(s), 0);
  });

  void test("a multi-byte UTF-8 character split across chunks is reassembled intact", () => {
    const s = new LineSplitter(1024);
    const whole = b('{"id":"é€"}\n');
    const out = [...feed(s, whole.subarray(0, 8)), ...feed(s, whole.subarray(8, 10)), ...feed(s, whole.subarray(10))];
    assert.deepEqual(texts(out), ['{"id":"é€"}']);
  });

  void test("several lines in one chunk, and a partial tail kept for the next chunk", () => {
    const s = new LineSplitter(1024);
    assert.deepEqual(texts(feed(s, b("a\nbb\nccc\ndd"))), ["a", "bb", "ccc"]);
    assert.equal(buffered(s), 2);
    assert.deepEqual(texts(feed(s, b("d\ne\n"))), ["ddd", "e"]);
    assert.equal(buffered(s), 0);
  });

  void test("empty lines are reported as empty lines (the server skips them)", () => {
    const s = new LineSplitter(1024);
    assert.deepEqual(texts(feed(s, b("\n\nx\n\n"))), ["", "", "x", ""]);
  });

  void test("CRLF: lines split at LF, the CR stays and JSON.parse ignores it", () => {
    const s = new LineSplitter(1024);
    const events = feed(s, b('{"action":"PING","id":1}\r\n{"action":"PING","id":2}\r'));
    assert.deepEqual(texts(events), ['{"action":"PING","id":1}\r']);
    const more = feed(s, b("\n"));
    assert.deepEqual(texts(more), ['{"action":"PING","id":2}\r']);
    const lines = [...events, ...more].map((e) => (e.kind === "line" ? (JSON.parse(e.line.toString()) as { id: number }).id : -1));
    assert.deepEqual(lines, [1, 2]);
    assert.deepEqual(texts(feed(s, b("\r\n"))), ["\r"], "a CR-only line reaches the server, which skips it");
  });

  void test("a line of exactly maxBytes is accepted, in one chunk or several", () => {
    const max = 16;
    const line = "x".repeat(max);
    assert.deepEqual(texts(feed(new LineSplitter(max), b(`${line}\n`))), [line]);
    const s = new LineSplitter(max);
    assert.deepEqual(feed(s, b(line)), [], "exactly maxBytes may wait for its newline");
    assert.equal(buffered(s), max);
    assert.deepEqual(texts(feed(s, b("\nnext\n"))), [line, "next"]);
  });

  void test("a complete line of maxBytes + 1 is too_large", () => {
    const s = new LineSplitter(16);
    assert.deepEqual(texts(feed(s, b(`ok\n${"x".repeat(17)}\nafter\n`))), ["ok", "!too_large"]);
    assert.equal(buffered(s), 0);
  });

  void test("an unterminated line growing past the limit is reported once, nothing kept afterwards", () => {
    const s = new LineSplitter(16);
    assert.deepEqual(feed(s, b("x".repeat(10))), []);
    assert.deepEqual(texts(feed(s, b("x".repeat(7)))), ["!too_large"], "10 + 7 > 16");
    assert.equal(buffered(s), 0);
    // Once overflowed the stream is dead: no more events, nothing buffered, however much arrives.
    assert.deepEqual(feed(s, b("\n")), []);
    assert.deepEqual(feed(s, b('{"action":"PING"}\n')), []);
    assert.deepEqual(feed(s, Buffer.alloc(1 << 20, 0x78)), []);
    assert.equal(buffered(s), 0);
  });

  void test("a huge chunk without a newline is refused without being kept", () => {
    const s = new LineSplitter(1024);
    assert.deepEqual(texts(feed(s, Buffer.alloc(1 << 20, 0x78))), ["!too_large"]);
    assert.equal(buffered(s), 0);
  });

  void test("lines before the oversized one in the same chunk are still delivered, in order", () => {
    const s = new LineSplitter(8);
    assert.deepEqual(texts(feed(s, b("a\nbb\n123456789"))), ["a", "bb", "!too_large"]);
  });

  void test("pulled one line at a time: unread lines stay bytes, and later pushes keep their order", () => {
    const s = new LineSplitter(1024);
    s.push(b("one\ntwo\nthr"));
    assert.deepEqual(texts([s.next() ?? { kind: "too_large" }]), ["one"]);
    assert.equal(buffered(s), "two\nthr".length, "the second line is not split off until asked for");
    s.push(b("ee\n"));
    assert.deepEqual(texts(feed(s)), ["two", "three"]);
    assert.equal(buffered(s), 0);
    assert.equal(s.retained, 0, "nothing kept once every line is taken");
  });

  void test("a line handed out stays intact while more bytes arrive (it is being served)", () => {
    const s = new LineSplitter(1 << 20);
    s.push(b("x".repeat(100)));
    for (let i = 0; i < 5; i++) s.push(b("y".repeat(100)));
    s.push(b("\nz"));
    const first = s.next();
    assert.ok(first?.kind === "line");
    const copy = Buffer.from(first.line);
    for (let i = 0; i < 2_000; i++) s.push(b("w".repeat(64)));
    s.push(b("\n"));
    assert.ok(first.line.equals(copy), "the served line was overwritten by later input");
    assert.equal(texts(feed(s))[0]?.length, 1 + 2_000 * 64);
  });

  void test("300 000 one-byte pushes retain about the bytes themselves, not a Buffer each", () => {
    // A client writing one byte per packet made the old splitter keep one Buffer object per read
    // (~250 bytes of heap each: 77 MB for 300 000 bytes). Now: one growable buffer.
    const s = new LineSplitter(1 << 20);
    const one = Buffer.from("x");
    const before = liveBytes();
    for (let i = 0; i < 300_000; i++) s.push(Buffer.from(one));
    const grown = liveBytes() - before;
    assert.equal(buffered(s), 300_000);
    assert.ok(s.retained <= 2 * 300_000, `retains ${s.retained} bytes for 300 000 buffered`);
    assert.ok(grown < 2 * 1024 * 1024, `live memory grew by ${(grown / 2 ** 20).toFixed(1)} MiB for 300 000 one-byte pushes`);
    s.push(b("\n"));
    assert.equal(texts(feed(s))[0]?.length, 300_000);
    assert.equal(s.retained, 0);
  });

  void test("a large line, once taken, does not keep its buffer for a small remainder", () => {
    const s = new LineSplitter(8 << 20);
    const big = Buffer.alloc(4 << 20, 0x61);
    s.push(big.subarray(0, 1 << 20));
    s.push(big.subarray(1 << 20));
    s.push(b("\n{\"action\""));
    assert.ok(s.retained <= (8 << 20) + 1, `capacity ${s.retained} over maxBytes + 1`);
    assert.equal(feed(s).length, 1);
    assert.ok(s.retained < 64 * 1024, `keeps ${s.retained} bytes for a ${buffered(s)}-byte remainder`);
  });

  void test("a line past 1 MiB grows its buffer 16-fold: a 9 MB line in 64 KiB reads is copied into 4 buffers, not 6", () => {
    // Each growth copies the line so far into a new buffer: fresh pages, the cost of a large
    // line's receipt (docs/performance.md, "Sixth round"). Doubling all the way takes 6 buffers:
    // 256 KiB, 640 KiB, 1.4, 2.9, 5.9 and 11.9 MiB.
    const s = new LineSplitter(64 << 20);
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const capacities = new Set<number>();
    for (let i = 0; i < 140; i++) {
      s.push(chunk);
      capacities.add(s.retained);
    }
    capacities.delete(chunk.length); // the first chunk, adopted without a copy
    assert.deepEqual([...capacities], [256 * 1024, 640 * 1024, 1408 * 1024, 16 * 1472 * 1024]);
    s.push(b("\n"));
    const [line] = feed(s);
    assert.equal(line?.kind === "line" ? line.line.length : -1, 140 * chunk.length);
  });

  void test("memory stays within maxBytes plus one chunk, however the bytes arrive", () => {
    const max = 100_000;
    const s = new LineSplitter(max);
    for (let i = 0; i < 1_000; i++) s.push(b("z".repeat(99)));
    assert.ok(s.retained <= max + 1, `capacity ${s.retained}`);
    assert.deepEqual(texts(feed(s, b("z".repeat(2_000)))), ["!too_large"]);
    assert.equal(s.retained, 0);
  });
});
