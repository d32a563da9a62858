/**
 * Interface name <-> index on the real kernel (src/kernel/ifreq.ts: SIOCGIFINDEX and SIOCGIFNAME
 * on one socket kept open, in place of libc's if_nametoindex/if_indextoname). The engine trusts
 * these answers to be the kernel's of this moment (STACK.md: stale VIF indices after a link is
 * deleted), so a rename or a deletion must show at once. Runs in a child in a namespace of its own.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import type { IfreqReport } from "./fixtures/ifreq_child.js";
import { createNetns, runChildIn, type Netns } from "./fixtures/netns.js";

const CHILD = fileURLToPath(new URL("./fixtures/ifreq_child.ts", import.meta.url));
let ns: Netns | undefined;
let r: IfreqReport;

before(() => {
  ns = createNetns("ifreq");
  ns.ip("link", "set", "lo", "up");
  ns.ip("link", "add", "vé0", "type", "veth", "peer", "name", "abcdefghijklmno"); // no dummy module on every kernel
  r = runChildIn<IfreqReport>(ns.name, CHILD);
});

after(() => ns?.remove());

void test("name -> index and index -> name agree with the kernel's own table, UTF-8 and 15-byte names included", () => {
  assert.deepEqual(r.indexOf, r.sysIndex);
  for (const [name, index] of Object.entries(r.sysIndex)) assert.equal(r.nameOf[String(index)], name);
});

void test("no interface: empty, too long, unknown, a prefix of a name, a name cut by a NUL, or an index that no interface has or none can have", () => {
  assert.deepEqual(r.invalid, [null, null, null, null, null]);
  assert.deepEqual(r.invalidNames, [null, null, null, null, null]);
});

void test("flags come from the same socket", () => {
  assert.equal(r.upFlag, true);
});

void test("a rename and a deletion show at once: nothing is cached", () => {
  assert.deepEqual(r.afterRename, { newIndex: r.sysIndex["vé0"], oldIndex: null, name: "renamed0" });
  assert.deepEqual(r.afterDelete, { index: null, name: null });
});
