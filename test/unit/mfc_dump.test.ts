/**
 * dumpMfcStats (one rtnetlink dump) against SIOCGETSGCNT (one ioctl per entry), on the real
 * kernel in throwaway network namespaces (needs root and iproute2). Router namespace: veths a0
 * (vif 0, peer in the sender namespace) and b0 (vif 1). The work runs in a child started with
 * `ip netns exec`, which prints one JSON report.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { ChildReport } from "./fixtures/mfc_dump_child.js";

const NS = `mfct-dump-${process.pid}`;
const SENDER_NS = `mfct-dumps-${process.pid}`;
const SENDER_ADDR = "10.1.0.2";
const PKT_BYTES = 32; // IP 20 + UDP 8 + "mfct"
const CHILD = fileURLToPath(new URL("./fixtures/mfc_dump_child.ts", import.meta.url));

const ip = (...args: string[]): string => execFileSync("ip", args, { encoding: "utf8", stdio: "pipe" });

void describe("dumpMfcStats (real rtnetlink dump in a netns)", () => {
  let report: ChildReport;

  before(() => {
    ip("netns", "add", NS);
    ip("netns", "add", SENDER_NS);
    ip("-n", NS, "link", "add", "a0", "type", "veth", "peer", "name", "a0p");
    ip("-n", NS, "link", "add", "b0", "type", "veth", "peer", "name", "b0p");
    ip("-n", NS, "link", "set", "a0p", "netns", SENDER_NS);
    ip("-n", NS, "addr", "add", "10.1.0.1/24", "dev", "a0");
    ip("-n", SENDER_NS, "addr", "add", `${SENDER_ADDR}/24`, "dev", "a0p");
    for (const l of ["lo", "a0", "b0", "b0p"]) ip("-n", NS, "link", "set", l, "up");
    for (const l of ["lo", "a0p"]) ip("-n", SENDER_NS, "link", "set", l, "up");
    // rp_filter drops multicast before the MFC; the namespace may inherit a strict default.
    ip("netns", "exec", NS, "sysctl", "-q", "-w", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.a0.rp_filter=0");

    const out = execFileSync("ip", ["netns", "exec", NS, process.execPath, "--import", "tsx", CHILD, SENDER_NS, SENDER_ADDR], {
      encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 180_000, maxBuffer: 16 << 20,
    });
    report = JSON.parse(out) as ChildReport;
    for (const t of report.timings) {
      const ratio = (t.ioctlMs / t.dumpMs).toFixed(1);
      console.log(`${t.n} entries: dump ${t.dumpMs.toFixed(2)} ms, ioctl loop ${t.ioctlMs.toFixed(2)} ms (x${ratio})`);
    }
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

  void test("has the same keys and counters as SIOCGETSGCNT for 1 000 entries", () => {
    assert.deepEqual(report.compare1k.mismatches, []);
    assert.equal(report.compare1k.dumpSize, 1000);
  });

  void test("counts real traffic: (S,G), (*,G), and wrong_if, equal to the ioctl's", () => {
    const expect = (key: string, packets: number, wrongIf: number): void => {
      const t = report.traffic[key];
      assert.ok(t?.dump && t.ioctl, `${key}: ${JSON.stringify(t)}`);
      assert.deepEqual(t.dump, t.ioctl);
      assert.deepEqual(t.dump, { packets, bytes: packets * PKT_BYTES, wrongIf });
    };
    expect(`${SENDER_ADDR},239.1.1.1`, 5, 0);
    expect("0.0.0.0,239.2.2.2", 3, 0);
    expect(`${SENDER_ADDR},239.3.3.3`, 2, 2); // iif is vif 1; the packets came in on vif 0
  });

  void test("skips unresolved cache entries (the kernel's dump does include them)", () => {
    assert.match(report.ipMrouteShow, /unresolved/, "the kernel should hold an unresolved entry");
    assert.equal(report.unresolvedKeyInDump, false);
    assert.ok(report.unresolvedSkipped >= 1, JSON.stringify(report.unresolvedSkipped));
    assert.ok(report.unresolvedListed, "the unresolved flow is listed by its (origin, group)");
  });

  void test("dumps only the requested table (kernel-side with strict checking, else filtered)", () => {
    assert.equal(report.strictOtherTables, 0, "strict dump: the kernel filtered by table");
    assert.equal(report.nonStrict.strict, false);
    assert.equal(report.nonStrict.otherTables, 27, "non-strict dump: every table came back");
    assert.ok(report.nonStrict.sameAsStrict);
    assert.deepEqual(report.table5.keys, report.table5.expected);
    assert.deepEqual(report.table5.mismatches, []);
    assert.equal(report.table5.defaultHasThem, false);
    assert.deepEqual(report.table70000.keys, report.table70000.expected, "table ids above 255 (RTA_TABLE u32)");
    assert.equal(report.missingTableSize, 0, "a table that does not exist is empty");
    assert.equal(report.table5AfterClose, 0);
  });

  void test("agrees with the ioctl at 100 000 entries (hundreds of datagrams)", (t) => {
    // Timings are printed, not asserted: this 2-core machine is shared. At 100 000 entries the
    // dump is not faster than the ioctl loop (the kernel's dump is superlinear; see mfc_dump.ts).
    if (report.compare100k === null) {
      t.skip("the 1 000-entry dump was too slow to try 100 000");
      return;
    }
    assert.deepEqual(report.compare100k.mismatches, []);
    assert.equal(report.compare100k.dumpSize, 100_000);
  });
});
