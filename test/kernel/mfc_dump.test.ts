/**
 * dumpMfc (one rtnetlink dump of an IPMR or IP6MR table: its unresolved flows, for `mfc check`)
 * on the real kernel in throwaway network namespaces (needs root and iproute2). Router namespace:
 * veths a0 (vif 0 and MIF 0, peer in the sender namespace) and b0 (vif 1 and MIF 1). The work runs
 * in a child started with `ip netns exec`, which prints one JSON report.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { ChildReport } from "./fixtures/mfc_dump_child.js";

const NS = `mfct-dump-${process.pid}`;
const SENDER_NS = `mfct-dumps-${process.pid}`;
const SENDER_ADDR = "10.1.0.2";
const SENDER_ADDR6 = "fd00:1::2";
const CHILD = fileURLToPath(new URL("./fixtures/mfc_dump_child.ts", import.meta.url));

const ip = (...args: string[]): string => execFileSync("ip", args, { encoding: "utf8", stdio: "pipe" });

void describe("dumpMfc (real rtnetlink dump in a netns)", () => {
  let report: ChildReport;

  before(() => {
    ip("netns", "add", NS);
    ip("netns", "add", SENDER_NS);
    ip("-n", NS, "link", "add", "a0", "type", "veth", "peer", "name", "a0p");
    ip("-n", NS, "link", "add", "b0", "type", "veth", "peer", "name", "b0p");
    ip("-n", NS, "link", "set", "a0p", "netns", SENDER_NS);
    ip("-n", NS, "addr", "add", "10.1.0.1/24", "dev", "a0");
    ip("-n", SENDER_NS, "addr", "add", `${SENDER_ADDR}/24`, "dev", "a0p");
    // nodad: usable at once (STACK.md).
    ip("-n", NS, "addr", "add", "fd00:1::1/64", "dev", "a0", "nodad");
    ip("-n", SENDER_NS, "addr", "add", `${SENDER_ADDR6}/64`, "dev", "a0p", "nodad");
    for (const l of ["lo", "a0", "b0", "b0p"]) ip("-n", NS, "link", "set", l, "up");
    for (const l of ["lo", "a0p"]) ip("-n", SENDER_NS, "link", "set", l, "up");
    // rp_filter drops multicast before the MFC; the namespace may inherit a strict default.
    ip("netns", "exec", NS, "sysctl", "-q", "-w", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.a0.rp_filter=0");

    const out = execFileSync("ip", ["netns", "exec", NS, process.execPath, "--import", "tsx", CHILD, SENDER_NS, SENDER_ADDR, SENDER_ADDR6], {
      encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 120_000,
    });
    report = JSON.parse(out) as ChildReport;
  });

  after(() => {
    for (const ns of [NS, SENDER_NS]) {
      try {
        ip("netns", "del", ns); // also destroys the veths (and the router's MFC)
      } catch {
        // not created (before() failed early)
      }
    }
  });

  void test("lists the unresolved flow by (origin, group), and no resolved entry", () => {
    assert.match(report.ipMrouteShow, /unresolved/, "the kernel should hold an unresolved entry");
    assert.deepEqual(report.unresolved, [`${SENDER_ADDR},239.9.9.9`]);
  });

  void test("dumps only the requested table (kernel-side with strict checking, else filtered)", () => {
    assert.equal(report.strict, true);
    assert.equal(report.strictOtherTables, 0, "strict dump: the kernel filtered by table");
    assert.equal(report.nonStrict.strict, false);
    assert.equal(report.nonStrict.otherTables, 27, "non-strict dump: every table came back");
    assert.deepEqual(report.nonStrict.unresolved, report.unresolved);
    assert.deepEqual(report.table5, [], "table 5 has entries, none unresolved");
    assert.deepEqual(report.table70000, [], "table ids above 255 (RTA_TABLE u32)");
    assert.deepEqual(report.missingTable, [], "a table that does not exist has no flows");
  });

  void test("IPv6: lists the unresolved flow of the IP6MR table in the model's text, and no resolved entry", () => {
    assert.match(report.v6.ipMrouteShow, /unresolved/, "the kernel should hold an unresolved IPv6 entry");
    assert.deepEqual(report.v6.unresolved, [`${SENDER_ADDR6},ff3e::9:9`]);
    assert.deepEqual(report.unresolved, [`${SENDER_ADDR},239.9.9.9`], "the IPv4 dump lists no IPv6 flow");
  });

  void test("IPv6: the default table is 254 (0 means it too), and only the requested table is dumped", () => {
    assert.deepEqual(report.v6.table0, report.v6.unresolved);
    assert.deepEqual(report.v6.table254, report.v6.unresolved);
    assert.deepEqual(report.v6.table253, [], "253, IPv4's default, is no IPv6 table");
    assert.equal(report.v6.strict, true);
    assert.equal(report.v6.strictOtherTables, 0, "strict dump: the kernel filtered by table");
    assert.equal(report.v6.nonStrict.otherTables, 20, "non-strict dump: every IPv6 table came back (and no IPv4 one)");
    assert.deepEqual(report.v6.nonStrict.unresolved, report.v6.unresolved);
    assert.deepEqual(report.v6.table5, [], "table 5 has entries, none unresolved");
  });
});
