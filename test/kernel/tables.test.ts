/**
 * src/kernel/tables.ts (KernelTables, the real KernelPort) on the real kernel, in throwaway
 * namespaces (netns6.ts): the IPv6 table is taken on the first IPv6 change only (before it, another
 * socket can still take it; IPv6 reads and deletions answer "absent"); a table another process owns
 * is a KernelError the engine reports; IPv4 and IPv6 entries side by side, with one upcall watch
 * for both; flushAll and close release both tables and the joins. The work runs in a child.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import type { TablesReport } from "./fixtures/tables_child.js";
import { SENDER_ADDR, SENDER_ADDR4, createLab6, runInRouter, type Lab6 } from "./fixtures/netns6.js";

const CHILD = fileURLToPath(new URL("./fixtures/tables_child.ts", import.meta.url));
const BUSY = "IPv6 multicast routing table default is already owned by another process (smcroute, pim6sd, another mfc_daemon?); stop it or configure another 'table'";

void describe("KernelTables (real IPMR and IP6MR tables in a netns)", () => {
  let lab: Lab6 | undefined;
  let r: TablesReport;

  before(() => {
    lab = createLab6("kt");
    r = runInRouter<TablesReport>(lab, CHILD);
  });

  after(() => lab?.remove());

  void test("before the first IPv6 change the IPv6 table is not ours: reads absent, deletions as the kernel answers them", () => {
    assert.deepEqual(r.before, {
      open: false, reads: [null, null], delMfc: "MRT6_DEL_MFC ENOENT", delVif: "MRT6_DEL_MIF EADDRNOTAVAIL", leave: "ok",
      free: "ok", openAfter: false,
    });
  });

  void test("an IPv6 table owned by another process: the change is a KernelError naming it; ensureIpv6 a TableBusyError; a join still works", () => {
    assert.deepEqual(r.busy, {
      addVif: "MRT6_INIT EADDRINUSE", call: `MRT6_INIT failed: EADDRINUSE (${BUSY})`, ensure: `TableBusyError: ${BUSY}`,
      join: "ok", open: false,
    });
  });

  void test("the first IPv6 VIF takes the IPv6 table", () => {
    assert.deepEqual(r.opened, { open: true, other: `TableBusyError: ${BUSY}` });
  });

  void test("IPv4 and IPv6 VIFs and entries side by side, each in its family's table", () => {
    assert.deepEqual(r.vifs4, ["0 a0", "1 b0"]);
    assert.deepEqual(r.mifs6, { 0: "a0", 1: "b0" });
    assert.deepEqual(r.cache4, ["010101EF 0200010A 0 1:1", "020202EF 00000000 0 0:1 1:1"]);
    assert.deepEqual(r.cache6, ["ff3e::1 fd00:1::2 0 1:1", "ff3e::2 :: 0 0:1 1:1"]);
  });

  void test("counters of both families after real traffic", () => {
    assert.deepEqual(r.counters, {
      sg4: { packets: 3, bytes: 96, wrongIf: 0 }, sg6: { packets: 3, bytes: 159, wrongIf: 0 }, out4: 3, out6: 3,
    });
  });

  void test("one watch reports the upcalls of both tables, the IPv6 one taken after the watch started", () => {
    assert.deepEqual(r.upcalls, [
      { vifi: 0, source: SENDER_ADDR4, group: "239.9.9.9" },
      { vifi: 0, source: SENDER_ADDR, group: "ff3e::9" },
    ]);
  });

  void test("flushAll empties both tables; close releases both tables and the joins", () => {
    assert.equal(r.joined, true, "the IPv6 join is in /proc/net/igmp6");
    assert.deepEqual(r.flushed, { vifs4: [], mifs6: {}, cache4: [], cache6: [] });
    assert.deepEqual(r.closed, { vifs4: [], mifs6: {}, cache6: [], joined: false, retake4: "ok", retake6: "ok" });
  });
});
