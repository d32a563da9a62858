/** src/protocol/framing.ts: NDJSON line splitting with a hard size cap. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { LineSplitter, type FrameEvent } from "../../src/protocol/framing.js";

const b = (s: string): Buffer => Buffer.from(s, "utf8");

/** Events as strings: the line's text, or "!too_large". */
function texts(events: FrameEvent[]): string[] {
  return events.map((e) => (e.kind === "line" ? e.line.toString("utf8") : "!too_large"));
}

/** Bytes the splitter holds (private state, read to prove nothing is kept after an overflow). */
function buffered(s: LineSplitter): number {
  const inner = s as unknown as { chunks?: Buffer[]; size?: number };
  assert.ok(Array.isArray(inner.chunks) && typeof inner.size === "number", "LineSplitter internals changed: update this test");
  const sum = inner.chunks.reduce((n, c) => n + c.length, 0);
  assert.equal(sum, inner.size, "size matches the buffered chunks");
  return sum;
}

void describe("LineSplitter", () => {
  void test("one line per chunk", () => {
    const s = new LineSplitter(1024);
    assert.deepEqual(texts(s.push(b('{"action":"PING"}\n'))), ['{"action":"PING"}']);
    assert.equal(buffered(s), 0);
  });

  void test("a line split across chunks, byte by byte", () => {
    const s = new LineSplitter(1024);
    const msg = '{"action":"SHOW","payload":{"what":"routes"}}\n';
    const out: string[] = [];
    for (const ch of b(msg)) out.push(...texts(s.push(Buffer.from([ch]))));
    assert.deepEqual(out, [msg.slice(0, -1)]);
    assert.equal(buffered(s), 0);
  });

  void test("a multi-byte UTF-8 character split across chunks is reassembled intact", () => {
    const s = new LineSplitter(1024);
    const whole = b('{"id":"é€"}\n');
    const out = [...s.push(whole.subarray(0, 8)), ...s.push(whole.subarray(8, 10)), ...s.push(whole.subarray(10))];
    assert.deepEqual(texts(out), ['{"id":"é€"}']);
  });

  void test("several lines in one chunk, and a partial tail kept for the next chunk", () => {
    const s = new LineSplitter(1024);
    assert.deepEqual(texts(s.push(b("a\nbb\nccc\ndd"))), ["a", "bb", "ccc"]);
    assert.equal(buffered(s), 2);
    assert.deepEqual(texts(s.push(b("d\ne\n"))), ["ddd", "e"]);
    assert.equal(buffered(s), 0);
  });

  void test("empty lines are reported as empty lines (the server skips them)", () => {
    const s = new LineSplitter(1024);
    assert.deepEqual(texts(s.push(b("\n\nx\n\n"))), ["", "", "x", ""]);
  });

  void test("CRLF: lines split at LF, the CR stays and JSON.parse ignores it", () => {
    const s = new LineSplitter(1024);
    const events = s.push(b('{"action":"PING","id":1}\r\n{"action":"PING","id":2}\r'));
    assert.deepEqual(texts(events), ['{"action":"PING","id":1}\r']);
    const more = s.push(b("\n"));
    assert.deepEqual(texts(more), ['{"action":"PING","id":2}\r']);
    const lines = [...events, ...more].map((e) => (e.kind === "line" ? (JSON.parse(e.line.toString()) as { id: number }).id : -1));
    assert.deepEqual(lines, [1, 2]);
    assert.deepEqual(texts(s.push(b("\r\n"))), ["\r"], "a CR-only line reaches the server, which skips it");
  });

  void test("a line of exactly maxBytes is accepted, in one chunk or several", () => {
    const max = 16;
    const line = "x".repeat(max);
    assert.deepEqual(texts(new LineSplitter(max).push(b(`${line}\n`))), [line]);
    const s = new LineSplitter(max);
    assert.deepEqual(s.push(b(line)), [], "exactly maxBytes may wait for its newline");
    assert.equal(buffered(s), max);
    assert.deepEqual(texts(s.push(b("\nnext\n"))), [line, "next"]);
  });

  void test("a complete line of maxBytes + 1 is too_large", () => {
    const s = new LineSplitter(16);
    assert.deepEqual(texts(s.push(b(`ok\n${"x".repeat(17)}\nafter\n`))), ["ok", "!too_large"]);
    assert.equal(buffered(s), 0);
  });

  void test("an unterminated line growing past the limit is reported once, nothing kept afterwards", () => {
    const s = new LineSplitter(16);
    assert.deepEqual(s.push(b("x".repeat(10))), []);
    assert.deepEqual(texts(s.push(b("x".repeat(7)))), ["!too_large"], "10 + 7 > 16");
    assert.equal(buffered(s), 0);
    // Once overflowed the stream is dead: no more events, nothing buffered, however much arrives.
    assert.deepEqual(s.push(b("\n")), []);
    assert.deepEqual(s.push(b('{"action":"PING"}\n')), []);
    assert.deepEqual(s.push(Buffer.alloc(1 << 20, 0x78)), []);
    assert.equal(buffered(s), 0);
  });

  void test("a huge chunk without a newline is refused without being kept", () => {
    const s = new LineSplitter(1024);
    assert.deepEqual(texts(s.push(Buffer.alloc(1 << 20, 0x78))), ["!too_large"]);
    assert.equal(buffered(s), 0);
  });

  void test("lines before the oversized one in the same chunk are still delivered, in order", () => {
    const s = new LineSplitter(8);
    assert.deepEqual(texts(s.push(b("a\nbb\n123456789"))), ["a", "bb", "!too_large"]);
  });
});
