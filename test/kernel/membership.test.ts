/**
 * src/kernel/membership.ts on the real kernel, in a netns of its own: a source-specific and an
 * any-source join of one group on one device (two sockets), then the device deleted. The kernel
 * answers a source-specific leave on a device that is gone with ENODEV; the pool leaves the whole
 * group on that index instead (which frees the socket's entry), and a second leave is a no-op.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const CHILD = fileURLToPath(new URL("./fixtures/membership_child.ts", import.meta.url));
const NS = `mfct-memb-${process.pid}`;

void test("leaving joins on a device that is gone: source-specific via the whole-group leave, nothing left half-done", () => {
  execFileSync("ip", ["netns", "add", NS]);
  after(() => execFileSync("ip", ["netns", "del", NS]));
  // Some minimal kernels lack CONFIG_DUMMY: ifb is a peer-less device as good for this.
  let kind = "dummy";
  try {
    execFileSync("ip", ["-n", NS, "link", "add", "probe0", "type", "dummy"], { stdio: "pipe" });
    execFileSync("ip", ["-n", NS, "link", "del", "probe0"]);
  } catch {
    kind = "ifb";
  }
  const out = execFileSync("ip", ["netns", "exec", NS, process.execPath, "--import", "tsx", CHILD, kind], { encoding: "utf8" });
  const r = JSON.parse(out) as { held: boolean; leaves: string[] };
  assert.equal(r.held, true, "the source-specific join was held (/proc/net/mcfilter)");
  assert.deepEqual(r.leaves, ["ok", "ok", "ok"], "every leave of a vanished device's joins succeeds");
});
