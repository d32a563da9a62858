/** src/model/ifname.ts: interface names are counted in bytes (IFNAMSIZ 16 with the NUL = 15 bytes). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { ifNameProblem } from "../../src/model/ifname.js";
import { parseOp } from "../../src/protocol/schema.js";

void test("15 bytes fit, 16 do not, whatever the number of characters (UTF-8)", () => {
  assert.equal(ifNameProblem("eth0123456789ab"), undefined, "15 ASCII bytes");
  assert.match(ifNameProblem("eth0123456789abc") ?? "", /longer than 15 bytes/, "16 ASCII bytes");
  assert.equal(ifNameProblem("ethé1234567890"), undefined, "14 characters, 15 bytes");
  assert.match(ifNameProblem("ethé12345678901") ?? "", /longer than 15 bytes/, "15 characters, 16 bytes: the kernel refuses it too");
  assert.match(ifNameProblem("€€€€€€") ?? "", /longer than 15 bytes/, "6 characters, 18 bytes");
  assert.equal(ifNameProblem("€€€€€"), undefined, "5 characters, 15 bytes");
});

void test("a request naming a 16-byte interface is E_INVALID_ARGUMENT", () => {
  assert.throws(() => parseOp("ADD_VIF", { ifname: "ethé12345678901", threshold: 1 }), (err: unknown) => {
    assert.equal((err as { code?: string }).code, "E_INVALID_ARGUMENT");
    return true;
  });
  assert.doesNotThrow(() => parseOp("ADD_VIF", { ifname: "ethé1234567890", threshold: 1 }));
});
