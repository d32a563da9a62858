/**
 * SysctlFiles (src/daemon/sysctl_files.ts) on the real kernel: the fds it keeps open must always
 * give the value of this moment (the warnings of an `add` read rp_filter through them), follow an
 * interface that is deleted and made again under the same name, and stay bounded in number.
 * Runs in a child in a namespace of its own.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { SysctlReport } from "./fixtures/sysctl_child.js";

const CHILD = fileURLToPath(new URL("./fixtures/sysctl_child.ts", import.meta.url));
const NS = `mfct-sysctl-${process.pid}`;
const ip = (...args: string[]): void => void execFileSync("ip", args, { stdio: "pipe" });
let r: SysctlReport;

before(() => {
  ip("netns", "add", NS);
  ip("-n", NS, "link", "add", "vx0", "type", "veth", "peer", "name", "vx1");
  r = JSON.parse(execFileSync("ip", ["netns", "exec", NS, process.execPath, "--import", "tsx", CHILD], { encoding: "utf8", timeout: 60_000 })) as SysctlReport;
});

after(() => {
  try {
    ip("netns", "del", NS);
  } catch {
    // not created
  }
});

void test("a kept fd reads the value of this moment; a deleted interface reads as none; one made again under its name is read afresh, also when the kept fd is the first to notice", () => {
  assert.deepEqual(r.values, [1, 2, null, 1, 2]);
});

void test("at most 64 fds stay open, however many files are read; a missing file leaves none", () => {
  assert.ok(r.files > 64, `premise: more files than the bound (${r.files})`);
  assert.ok(r.fdsAfterMany - r.fdsBefore <= 64, `${r.fdsAfterMany - r.fdsBefore} more fds`);
  assert.equal(r.missing, null);
  assert.equal(r.fdsAfterMissing, r.fdsAfterMany);
});
