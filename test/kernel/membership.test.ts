/**
 * src/kernel/membership.ts on the real kernel, each part in a netns of its own.
 * IPv4: a source-specific and an any-source join of one group on one device (two sockets), then the
 * device deleted. The kernel answers a source-specific leave on a device that is gone with ENODEV;
 * the pool leaves the whole group on that index instead (which frees the socket's entry), and a
 * second leave is a no-op.
 * IPv6 (fixtures/membership6_child.ts): joins of both families side by side (/proc/net/igmp6,
 * mcfilter6, igmp), more sources than net.ipv6.mld_max_msf and more groups than a small
 * net.core.optmem_max allows on one socket, a refused source-specific join that leaves nothing
 * behind, and the leaves of a vanished device.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Report6 } from "./fixtures/membership6_child.js";

const CHILD = fileURLToPath(new URL("./fixtures/membership_child.ts", import.meta.url));
const CHILD6 = fileURLToPath(new URL("./fixtures/membership6_child.ts", import.meta.url));

/** A new netns; `after` deletes it. Returns the peer-less link type it supports. */
function netns(name: string): string {
  execFileSync("ip", ["netns", "add", name]);
  after(() => execFileSync("ip", ["netns", "del", name]));
  // Some minimal kernels lack CONFIG_DUMMY: ifb is a peer-less device as good for this.
  try {
    execFileSync("ip", ["-n", name, "link", "add", "probe0", "type", "dummy"], { stdio: "pipe" });
    execFileSync("ip", ["-n", name, "link", "del", "probe0"]);
    return "dummy";
  } catch {
    return "ifb";
  }
}

void test("leaving joins on a device that is gone: source-specific via the whole-group leave, nothing left half-done", () => {
  const ns = `mfct-memb-${process.pid}`;
  const kind = netns(ns);
  const out = execFileSync("ip", ["netns", "exec", ns, process.execPath, "--import", "tsx", CHILD, kind], { encoding: "utf8" });
  const r = JSON.parse(out) as { held: boolean; leaves: string[] };
  assert.equal(r.held, true, "the source-specific join was held (/proc/net/mcfilter)");
  assert.deepEqual(r.leaves, ["ok", "ok", "ok"], "every leave of a vanished device's joins succeeds");
});

void describe("IPv6 joins (AF_INET6 sockets, level IPPROTO_IPV6)", () => {
  let r: Report6;

  before(() => {
    const ns = `mfct-memb6-${process.pid}`;
    const kind = netns(ns);
    const out = execFileSync("ip", ["netns", "exec", ns, process.execPath, "--import", "tsx", CHILD6, kind], {
      encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 60_000,
    });
    r = JSON.parse(out) as Report6;
  });

  void test("any-source and source-specific joins, next to an IPv4 join on the same device", () => {
    assert.deepEqual([...r.any].sort(), ["ff3e::1:1", "ff3e::1:2"], "/proc/net/igmp6");
    assert.deepEqual(r.sources, { "ff3e::1:2": ["2001:db8::1", "2001:db8::2"] }, "/proc/net/mcfilter6");
    assert.equal(r.ipv4, true, "the IPv4 join is in /proc/net/igmp");
  });

  void test("more joins than one socket holds are spread over sockets (ENOBUFS for sources, ENOMEM for groups)", () => {
    assert.equal(r.manySources, 70, "70 sources of one group (mld_max_msf is 64 by default)");
    assert.ok(r.manySourcesSockets >= 1, "the sources past the cap went to another socket");
    assert.deepEqual({ joined: r.spread.joined, listed: r.spread.listed }, { joined: 50, listed: 50 }, "50 groups with optmem_max 1024");
    assert.ok(r.spread.sockets > 1, `50 groups took ${r.spread.sockets} socket(s)`);
  });

  void test("a source-specific join no socket can hold is refused, names the limits, and leaves no membership", () => {
    assert.match(r.refused.outcome, /^MCAST_JOIN_SOURCE_GROUP \(net\.core\.optmem_max \/ net\.ipv6\.mld_max_msf\) failed: ENOBUFS$/);
    assert.equal(r.refused.listed, false, "the group the kernel joined before refusing the source is left again");
    assert.equal(r.refused.othersListed, true);
  });

  void test("leaving the joins of a vanished device: source-specific via the whole-group leave", () => {
    assert.deepEqual(r.leaves, ["ok", "ok", "ok"]);
  });
});
