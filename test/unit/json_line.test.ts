/**
 * toJsonLine (src/cli/json_line.ts) decides alone whether `mfc apply` sends a file: it must take
 * exactly the texts JSON.parse takes (a text it wrongly takes reaches the daemon as a broken
 * request instead of a usage error), and leave them one line that parses to the same value.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { isUtf8 } from "node:buffer";
import { JsonLineCheck, toJsonLine } from "../../src/cli/json_line.js";

const parses = (text: string): boolean => {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
};

function check(text: string): void {
  const bytes = Buffer.from(text, "utf8");
  const ok = toJsonLine(bytes);
  assert.equal(ok, parses(text), `toJsonLine(${JSON.stringify(text)})`);
  // Refused: the bytes as they were, so that JSON.parse's message quotes the file's own text.
  if (!ok) return assert.deepEqual(bytes, Buffer.from(text, "utf8"));
  assert.equal(bytes.includes(0x0a) || bytes.includes(0x0d), false, "no line break left");
  assert.deepEqual(JSON.parse(bytes.toString("utf8")), JSON.parse(text));
}

void describe("toJsonLine", () => {
  void test("agrees with JSON.parse on hand-picked texts", () => {
    const cases = [
      "{}", "[]", "0", "-0", "1.5e+3", "1E-2", "\"a\"", "true", "false", "null", " \r\n\t{ \"a\" : [1, 2, {\"b\": null}] }\n",
      "{\"routes\":[{\"group\":\"239.1.1.1\",\"iif\":\"eth0\",\"oifs\":[\"eth1\"]}]}", "\"\\u00e9\\n\\\"\\\\\\/\\b\\f\\r\\t\"", "\"é ☃ 😀\"",
      "", " ", "{", "}", "[", "[1,]", "[,1]", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{a:1}", "{'a':1}", "01", "1.", ".5", "-", "1e", "1e+",
      "+1", "0x10", "tru", "truex", "nul", "\"a", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"", "\"a\nb\"", "\"tab\there\"", "[1] [2]", "{} x",
      "\ufeff{}", "NaN", "Infinity", "[1 2]", "{\"a\":1 \"b\":2}", "[[[[[]]]]]", "[[[[[]]]]", "\"\\ud800\"",
    ];
    for (const c of cases) check(c);
  });

  void test("agrees with JSON.parse on any JSON value, with random whitespace and line breaks", () => {
    const spaced = fc.tuple(fc.jsonValue(), fc.array(fc.constantFrom(" ", "\n", "\r\n", "\t", ""), { minLength: 1, maxLength: 8 }))
      .map(([v, gaps]) => {
        let k = 0;
        // Whitespace after structural characters only (never inside a string or a number).
        return JSON.stringify(v, null, 1).replace(/\n */g, () => gaps[k++ % gaps.length] as string);
      });
    fc.assert(fc.property(spaced, (text) => check(text)), { numRuns: 2000 });
  });

  void test("agrees with JSON.parse on texts with one character changed, dropped or added", () => {
    const mutated = fc.tuple(fc.json(), fc.nat(), fc.constantFrom("drop", "set", "insert"), fc.constantFrom(...",:[]{}\"\\ 0123456789.eE+-tfnlu\n\tax\u0001é"))
      .map(([text, at, how, ch]) => {
        const i = text.length === 0 ? 0 : at % text.length;
        if (how === "drop") return text.slice(0, i) + text.slice(i + 1);
        if (how === "set") return text.slice(0, i) + ch + text.slice(i + 1);
        return text.slice(0, i) + ch + text.slice(i);
      });
    fc.assert(fc.property(mutated, (text) => check(text)), { numRuns: 5000 });
  });

  // `mfc apply` of a large file sends the part checked while it checks the rest (main.ts): each
  // step must hand out only bytes that are final, and a refusal must give the file back as it was.
  void test("in steps: the same verdict; each step's part is final; refused, the bytes as they were", () => {
    const text = fc.oneof(
      fc.tuple(fc.jsonValue(), fc.constantFrom(undefined, 1, 2)).map(([v, indent]) => JSON.stringify(v, null, indent) + "\n"),
      fc.json(),
      fc.tuple(fc.json(), fc.nat(), fc.constantFrom(",", "]", "\n", "\"", "x", "\u0001")).map(([t, at, ch]) => t.slice(0, at % (t.length + 1)) + ch + t.slice(at % (t.length + 1))),
    );
    fc.assert(fc.property(text, fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 20 }), (t, steps) => {
      const original = Buffer.from(t, "utf8");
      const whole = Buffer.from(original);
      const expected = toJsonLine(whole);
      const b = Buffer.from(original);
      const check = new JsonLineCheck(b);
      const handedOut: Buffer[] = [];
      let end = 0;
      for (let k = 0; end >= 0 && end < b.length; k++) {
        const next = check.advance(end + (steps[k % steps.length] as number));
        assert.ok(next === -1 || next >= end, `a step went back: ${end} -> ${next}`);
        if (next > end) handedOut.push(Buffer.from(b.subarray(end, next)));
        end = next;
      }
      assert.equal(end === b.length, expected, `verdict for ${JSON.stringify(t)}`);
      if (expected) {
        // What each step handed out is what the whole check leaves: nothing changed afterwards.
        assert.deepEqual(Buffer.concat(handedOut), whole);
        assert.deepEqual(b, whole);
      } else {
        assert.deepEqual(b, original);
      }
    }), { numRuns: 3000 });
  });

  // The CLI no longer asks isUtf8 first: the check itself must refuse bytes that are no UTF-8.
  void test("takes a text's bytes only when they are UTF-8 and JSON.parse takes their text", () => {
    const byte = fc.oneof(
      fc.constantFrom(0x80, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0xa0, 0x9f, 0x90, 0x8f),
      fc.integer({ min: 0, max: 255 }),
    );
    const bytesArb = fc.tuple(fc.json(), fc.array(fc.tuple(fc.nat(), fc.array(byte, { minLength: 1, maxLength: 4 })), { minLength: 1, maxLength: 3 }))
      .map(([text, inserts]) => {
        let b = Buffer.from(text, "utf8");
        // Mostly inside strings: after an opening quote, where a byte >= 0x80 is allowed at all.
        for (const [at, bytes] of inserts) {
          const quote = b.indexOf(0x22, at % (b.length + 1));
          const i = quote < 0 ? at % (b.length + 1) : quote + 1;
          b = Buffer.concat([b.subarray(0, i), Buffer.from(bytes), b.subarray(i)]);
        }
        return b;
      });
    fc.assert(fc.property(bytesArb, (b) => {
      const expected = isUtf8(b) && parses(b.toString("utf8"));
      assert.equal(toJsonLine(Buffer.from(b)), expected, `toJsonLine(${b.toString("hex")})`);
    }), { numRuns: 5000 });
    for (const hex of ["22c3a922", "22c0af22", "22eda08022", "22f4908080 22", "22e282ac22", "22f09f988022", "22c322", "22e2822022", "22efbbbf22", "22e080af22", "22f08080af22", "22e0a08022"]) {
      const b = Buffer.from(hex.replace(/ /g, ""), "hex");
      assert.equal(toJsonLine(Buffer.from(b)), isUtf8(b) && parses(b.toString("utf8")), hex);
    }
  });
});
