/**
 * The CLI's reading of a transaction answer (src/cli/pass_result.ts) without parsing its changes:
 * with `skipChanges` an ok answer comes back as JSON.parse would give it but with `changes: []`,
 * and with `pass: "line"` every byte of the line, its newline included, is written out as it
 * arrives - however the line is cut into reads. Anything else (an error, changes that are not an
 * array) comes back whole.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ResultPassThrough, type AnswerHandling, type Output } from "../../src/cli/pass_result.js";
import type { Response } from "../../src/protocol/messages.js";

class Collect implements Output {
  readonly parts: Buffer[] = [];
  write(chunk: Uint8Array | string): boolean {
    this.parts.push(Buffer.from(chunk));
    return true;
  }
  once(): this {
    return this;
  }
  get text(): string {
    return Buffer.concat(this.parts).toString("utf8");
  }
}

/** Feeds `line` cut at the given byte offsets. */
function feed(line: string, cuts: number[], how: AnswerHandling): { res: Response | undefined; out: string; scanner: ResultPassThrough } {
  const bytes = Buffer.from(line);
  const out = new Collect();
  const scanner = new ResultPassThrough(how.pass === undefined ? undefined : out, how);
  let res: Response | undefined;
  let from = 0;
  for (const to of [...cuts, bytes.length]) {
    res = scanner.push(bytes.subarray(from, to)) ?? res;
    from = to;
  }
  return { res, out: out.text, scanner };
}

const everyCut = (line: string): number[][] => [[], ...Array.from({ length: Buffer.byteLength(line) - 1 }, (_, i) => [i + 1])];

/** Changes with every kind of value and strings that look like structure. */
const changes = [
  { action: "add_vif", vifi: 0, ifname: "e]0", ifindex: 2, threshold: 1 },
  { action: "add_mfc", source: null, group: "239.1.1.1", iif: 'a"b\\', oifs: [{ ifname: "é😀", ttl: 255 }, { ifname: "x}", ttl: 1 }] },
  { action: "join", ifname: "e1", ifindex: 3, group: "239.2.2.2", source: "10.0.0.1", changes: ["not", "top-level"] },
];
const result = { operations: 1, kernel_steps: 3, routes: { added: 1, replaced: 0, removed: 2, unchanged: 0 }, changes: [1, 2], warnings: [{ severity: "warning", message: '"changes":[' }] };

const HANDLINGS: AnswerHandling[] = [{ skipChanges: true }, { pass: "line", skipChanges: true }];

void describe("reading an answer without its changes", () => {
  for (const how of HANDLINGS) {
    const label = JSON.stringify(how);
    void test(`${label}: an ok answer with changes, cut anywhere`, () => {
      for (const [dryRun, id] of [[false, undefined], [true, 'i"d:[']] as const) {
        const whole = { status: "ok", dry_run: dryRun, changes, result, ...(id === undefined ? {} : { id }) };
        const line = JSON.stringify(whole) + "\n";
        for (const cuts of everyCut(line)) {
          const { res, out } = feed(line, cuts, how);
          assert.deepStrictEqual(res, { ...whole, changes: [] }, `cut at ${cuts.join(",")}`);
          assert.equal(out, how.pass === "line" ? line : "", `cut at ${cuts.join(",")}`);
        }
        // One byte a read.
        const bytes = Buffer.byteLength(line);
        assert.deepStrictEqual(feed(line, Array.from({ length: bytes - 1 }, (_, i) => i + 1), how).res, { ...whole, changes: [] });
      }
    });

    void test(`${label}: errors, odd changes and bytes after the newline`, () => {
      const error = { status: "error", error_code: "E_KERNEL", message: 'no "changes":[ here', details: { changes: [{ a: 1 }], operation: 3 } };
      const odd = { status: "ok", dry_run: false, changes: "none", result: {} };
      const notOk = { status: "weird", changes: [1], result: {} };
      for (const whole of [error, odd, notOk]) {
        const line = JSON.stringify(whole) + "\n";
        for (const cuts of everyCut(line)) {
          const { res, out } = feed(line, cuts, how);
          assert.deepStrictEqual(res, whole, `cut at ${cuts.join(",")}`);
          assert.equal(out, how.pass === "line" ? line : "");
        }
      }
      const first = JSON.stringify({ status: "ok", dry_run: false, changes: [1], result: { a: 1 } }) + "\n";
      const { res, out } = feed(`${first}{"status":"error"}\n`, [], how);
      assert.deepStrictEqual(res, { status: "ok", dry_run: false, changes: [], result: { a: 1 } });
      assert.equal(out, how.pass === "line" ? first : "");
    });
  }

  void test("a line cut off: the printed part gets its newline; a line that is no response says how it starts", () => {
    const line = JSON.stringify({ status: "ok", dry_run: false, changes, result }) + "\n";
    for (const at of [1, 30, 100, line.length - 3]) {
      const out = new Collect();
      const scanner = new ResultPassThrough(out, { pass: "line", skipChanges: true });
      assert.equal(scanner.push(Buffer.from(line.slice(0, at))), undefined);
      scanner.abort();
      assert.equal(out.text, `${line.slice(0, at)}\n`);
    }
    // Not JSON (and a newline inside a string): refused at the first newline, like JSON.parse of it.
    for (const garbage of [`${"é".repeat(300)}}\n`, `{"status":"ok","changes":["a\n"]}\n`]) {
      const bytes = Buffer.from(garbage);
      for (const cuts of [[], [1], [401]]) {
        const scanner = new ResultPassThrough(undefined, { skipChanges: true });
        assert.throws(() => {
          let from = 0;
          for (const to of [...cuts, bytes.length]) {
            scanner.push(bytes.subarray(from, to));
            from = to;
          }
        }, SyntaxError);
        assert.equal(scanner.lineStart(), garbage.slice(0, garbage.indexOf("\n")).slice(0, 200));
      }
    }
    const short = new ResultPassThrough(undefined, { skipChanges: true });
    assert.throws(() => short.push(Buffer.from('{"status":"ok"}x\n{"a":1}\n')), SyntaxError);
    assert.equal(short.lineStart(), '{"status":"ok"}x');
  });
});
