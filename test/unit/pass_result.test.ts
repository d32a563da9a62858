/**
 * The CLI's pass-through of an ok answer's result (src/cli/pass_result.ts): what it prints is what
 * JSON.stringify(JSON.parse(line).result) would be, however the line is cut into reads, and the
 * envelope comes back parsed; anything else is kept and parsed whole.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ResultPassThrough, type Output } from "../../src/cli/pass_result.js";
import type { Response } from "../../src/protocol/messages.js";

class Collect implements Output {
  /** Bytes as written (a read may end inside a UTF-8 sequence: decoded only as a whole). */
  readonly parts: Buffer[] = [];
  writes = 0;
  constructor(private readonly acceptUpTo = Infinity) {}
  write(chunk: Uint8Array | string): boolean {
    this.parts.push(Buffer.from(chunk));
    return ++this.writes <= this.acceptUpTo;
  }
  once(): this {
    return this;
  }
  get text(): string {
    return Buffer.concat(this.parts).toString("utf8");
  }
}

/** Feeds `line` cut at the given offsets; returns the response, the output and whether it wanted a drain. */
function feed(line: string, cuts: number[], out = new Collect()): { res: Response | undefined; out: Collect; drain: boolean } {
  const bytes = Buffer.from(line);
  const p = new ResultPassThrough(out);
  let res: Response | undefined;
  let drain = false;
  let from = 0;
  for (const to of [...cuts, bytes.length]) {
    res = p.push(bytes.subarray(from, to)) ?? res;
    drain ||= p.backpressure;
    from = to;
  }
  return { res, out, drain };
}

const every = (line: string): number[][] => Array.from({ length: Buffer.byteLength(line) - 1 }, (_, i) => [i + 1]);

const tricky = {
  routes: [
    { source: null, group: "239.1.1.1", iif: "e}0", oifs: [{ ifname: 'a"b\\', ttl: 1 }], reason: "interface '{x]' missing: \"q\"" },
    { source: "10.0.0.1", group: "239.1.1.2", iif: "é😀", oifs: [], packets: 2 ** 40, bytes: 1e21 },
  ],
  vifs: [],
  result: { nested: "a key named result inside the result" },
};

void describe("ResultPassThrough", () => {
  void test("an ok answer: the result is printed as it arrives, cut anywhere; the envelope is returned", () => {
    const line = JSON.stringify({ status: "ok", dry_run: false, changes: [], result: tricky, id: "x\"}:" }) + "\n";
    for (const cuts of [[], ...every(line)]) {
      const { res, out } = feed(line, cuts);
      assert.equal(out.text, JSON.stringify(tricky) + "\n", `cut at ${cuts.join(",")}`);
      assert.deepEqual(res, { status: "ok", dry_run: false, changes: [], result: {}, id: "x\"}:" });
    }
  });

  void test("bytes after the newline are ignored; a result that is not an object is printed as the CLI always did", () => {
    const { res, out } = feed(JSON.stringify({ status: "ok", dry_run: false, changes: [], result: { a: 1 } }) + "\n{\"status\":\"error\"}\n", []);
    assert.equal(out.text, '{"a":1}\n');
    assert.equal(res?.status, "ok");
    for (const result of [null, "x", 5, [1, { b: 2 }]]) {
      const odd = feed(JSON.stringify({ status: "ok", dry_run: false, changes: [], result }) + "\n", [3]);
      assert.equal(odd.out.text, JSON.stringify(result) + "\n");
      assert.deepEqual(odd.res, { status: "ok", dry_run: false, changes: [], result });
    }
  });

  void test("an error answer prints nothing and comes back whole, also one that names a result", () => {
    const error = { status: "error", error_code: "E_INTERNAL", message: "no \"result\": here", details: { result: { x: 1 } } };
    for (const cuts of [[], ...every(JSON.stringify(error))]) {
      const { res, out } = feed(JSON.stringify(error) + "\n", cuts);
      assert.equal(out.text, "");
      assert.deepEqual(res, error);
    }
    const notOk = { status: "weird", result: { a: 1 } };
    const { res, out } = feed(JSON.stringify(notOk) + "\n", [5]);
    assert.equal(out.text, "");
    assert.deepEqual(res, notOk);
  });

  void test("backpressure is reported; an answer cut off mid-result ends the printed line", () => {
    const line = JSON.stringify({ status: "ok", dry_run: false, changes: [], result: tricky }) + "\n";
    assert.equal(feed(line, [60, 80], new Collect(1)).drain, true);
    const out = new Collect();
    const p = new ResultPassThrough(out);
    assert.equal(p.push(Buffer.from(line.slice(0, 80))), undefined);
    p.abort();
    assert.ok(out.text.endsWith("\n") && out.text.length > 1, JSON.stringify(out.text));
    assert.throws(() => feed('{"status":"ok","result":{}}x\n', []), SyntaxError);
  });
});
