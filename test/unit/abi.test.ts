/**
 * src/kernel/abi.ts is the one table of Linux numbers; pure logic (engine, diagnostics, view,
 * model, protocol, errors) must not reach the platform, not even through a kernel module.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { constants } from "node:os";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { ERRNO, errnoName } from "../../src/kernel/abi.js";
import { KernelError } from "../../src/kernel/errors.js";

void test("the errno table is the platform's (os.constants.errno)", () => {
  assert.deepEqual({ ...ERRNO }, { ...constants.errno });
});

void test("errnoName: the kernel's usual name; E<n> when unknown", () => {
  assert.equal(errnoName(11), "EAGAIN");
  assert.equal(errnoName(95), "EOPNOTSUPP");
  assert.equal(errnoName(99), "EADDRNOTAVAIL");
  assert.equal(errnoName(4095), "E4095");
  assert.equal(new KernelError("MRT_ADD_VIF", 99).message, "MRT_ADD_VIF failed: EADDRNOTAVAIL");
});

const SRC = join(import.meta.dirname, "../../src");

/** Every module `file` imports at run time (`import type` is erased), transitively: project files
 *  by path, others by specifier. */
function importsOf(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  const text = readFileSync(file, "utf8");
  for (const m of text.matchAll(/^\s*(?:import|export)\s(?!type\s)[^;]*?from\s+"([^"]+)"/gms)) {
    const spec = m[1] as string;
    if (spec.startsWith(".")) importsOf(resolve(dirname(file), spec.replace(/\.js$/, ".ts")), seen);
    else seen.add(spec);
  }
  return seen;
}

for (const entry of ["engine/engine.ts", "diagnostics/checks.ts", "view/model.ts", "view/render.ts", "protocol/schema.ts", "errors/codes.ts"]) {
  void test(`${entry} reaches no platform module (node:*, koffi)`, () => {
    const reached = [...importsOf(join(SRC, entry))].filter((m) => m.startsWith("node:") || m === "koffi");
    assert.deepEqual(reached, []);
  });
}
