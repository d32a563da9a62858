/** src/model/ipv4.ts: strict dotted-quad parsing and the group/source address rules. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { MfcError } from "../../src/errors/codes.js";
import { checkGroup, checkSource, parseIpv4 } from "../../src/model/ipv4.js";

function assertInvalidAddress(fn: () => unknown, mentions: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof MfcError, `expected MfcError, got ${String(err)}`);
    assert.equal(err.code, "E_INVALID_ADDRESS");
    assert.ok(err.message.includes(`'${mentions}'`), `message should quote '${mentions}': ${err.message}`);
    return true;
  });
}

void describe("parseIpv4", () => {
  const rejected = [
    "239.1.1.256", "256.0.0.0", "01.2.3.4", "1.02.3.4", "1.2.3.00", "1.2.3", "1.2.3.4.5", " 1.2.3.4", "1.2.3.4 ",
    "1.2.3.4\n", "::1", "::ffff:1.2.3.4", "0x7f.0.0.1", "0x7f000001", "2130706433", "1..2.3", "1.2.3.", ".1.2.3",
    "", "a.b.c.d", "1.2.3.-4", "+1.2.3.4", "1.2.3.4/32", "１.2.3.4",
  ];
  for (const text of rejected) {
    void test(`rejects ${JSON.stringify(text)}`, () => {
      assert.equal(parseIpv4(text), undefined);
    });
  }

  const accepted: [string, number][] = [
    ["0.0.0.0", 0],
    ["1.2.3.4", 0x01020304],
    ["10.0.0.1", 0x0a000001],
    ["100.200.250.199", 0x64c8fac7],
    ["224.0.0.1", 0xe0000001],
    ["239.1.1.1", 0xef010101],
    ["255.255.255.255", 0xffffffff],
  ];
  for (const [text, value] of accepted) {
    void test(`accepts ${text}`, () => {
      assert.equal(parseIpv4(text), value);
    });
  }
});

void describe("checkGroup", () => {
  for (const g of ["224.0.1.0", "224.0.1.1", "232.1.2.3", "239.1.1.1", "239.255.255.255"]) {
    void test(`accepts ${g}`, () => assert.equal(checkGroup(g), g));
  }
  for (const g of ["224.0.0.0", "224.0.0.1", "224.0.0.251", "224.0.0.255"]) {
    void test(`rejects link-local ${g}`, () => {
      assertInvalidAddress(() => checkGroup(g), g);
      assert.throws(() => checkGroup(g), /link-local/);
    });
  }
  for (const g of ["10.0.0.1", "223.255.255.255", "240.0.0.1", "255.255.255.255", "0.0.0.0"]) {
    void test(`rejects non-multicast ${g}`, () => {
      assertInvalidAddress(() => checkGroup(g), g);
      assert.throws(() => checkGroup(g), /not a multicast address/);
    });
  }
  for (const g of ["239.1.1.256", "01.2.3.4", ""]) {
    void test(`rejects malformed ${JSON.stringify(g)}`, () => assertInvalidAddress(() => checkGroup(g), g));
  }
  void test("names the field in the message", () => {
    assert.throws(() => checkGroup("10.0.0.1", "state.routes[3].group"), /state\.routes\[3\]\.group/);
  });
});

void describe("checkSource", () => {
  for (const s of ["1.0.0.1", "10.0.0.1", "126.255.255.255", "128.0.0.1", "192.168.1.1", "223.255.255.254"]) {
    void test(`accepts ${s}`, () => assert.equal(checkSource(s), s));
  }
  const rejected = [
    "0.0.0.0", "127.0.0.1", "127.255.255.255", "224.0.1.1", "239.1.1.1", "240.0.0.1", "255.255.255.255",
    "10.0.0.256", " 10.0.0.1", "",
  ];
  for (const s of rejected) {
    void test(`rejects ${JSON.stringify(s)}`, () => assertInvalidAddress(() => checkSource(s), s));
  }
});
