/**
 * src/kernel/mroute6.ts (Mroute6Table) on the real kernel, in throwaway namespaces (netns6.ts):
 * MIFs a0 (0), b0 (1, threshold 200), c0 (2); an (S,G) entry out of b0, a (*,G) entry with the
 * input MIF in its set and one without; refusals; real traffic from the sender namespace; upcalls,
 * also after 2000 pings that nobody read; replace, delete, flush, close (MRT6_DONE) and another
 * table. The work runs in a child inside the router namespace, which prints one JSON report.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { SENDER_ADDR, createLab6, runInRouter, type Lab6, type ProcMfc6 } from "./fixtures/netns6.js";

const CHILD = fileURLToPath(new URL("./fixtures/mroute6_child.ts", import.meta.url));

interface Counters { packets: number; bytes: number; wrongIf: number }
interface MifCounters { pktsIn: number; pktsOut: number; bytesIn: number; bytesOut: number }
interface Report {
  secondOwner: string;
  mifs: Record<string, string>;
  refusals: Record<string, string>;
  mfcMissingMifs: { parent: string; member: string; proc: ProcMfc6[] };
  entries: ProcMfc6[];
  ipShow: string;
  absent: Record<string, null>;
  counters: { sg: Counters; starG: Counters; starGNoParent: Counters; mif0: MifCounters; mif1: MifCounters; mif2: MifCounters };
  upcalls: unknown[];
  rxQueueAfterPings: number[];
  upcallAfterPings: unknown[];
  replaced: ProcMfc6[];
  delOtherParent: string;
  afterDelete: ProcMfc6[];
  mifsAfterDelete: Record<string, string>;
  staticAdd: string;
  beforeFlush: number;
  afterFlush: { mifs: Record<string, string>; cache: ProcMfc6[] };
  beforeClose: { mifs: Record<string, string>; cache: ProcMfc6[] };
  afterClose: { mifs: Record<string, string>; cache: ProcMfc6[] };
  retake: string;
  table5: { ipShow: string; proc: ProcMfc6[]; mifs: Record<string, string> };
}

const entry = (group: string, origin: string, iif: number, oifs: string[]): Pick<ProcMfc6, "group" | "origin" | "iif" | "oifs"> => ({ group, origin, iif, oifs });
const shape = (rows: ProcMfc6[]): Pick<ProcMfc6, "group" | "origin" | "iif" | "oifs">[] =>
  rows.map(({ group, origin, iif, oifs }) => ({ group, origin, iif, oifs })).sort((a, b) => a.group.localeCompare(b.group));

void describe("Mroute6Table (real ip6mr in a netns)", () => {
  let lab: Lab6 | undefined;
  let r: Report;

  before(() => {
    lab = createLab6("mr6");
    r = runInRouter<Report>(lab, CHILD);
  });

  after(() => lab?.remove());

  void test("one owner per table: a second MRT6_INIT is TableBusyError naming the IPv6 table", () => {
    assert.match(r.secondOwner, /^TableBusyError: IPv6 multicast routing table default is already owned/);
  });

  void test("MIFs by ifindex (/proc/net/ip6_mr_vif), and the kernel's refusals", () => {
    assert.deepEqual(r.mifs, { 0: "a0", 1: "b0", 2: "c0" });
    assert.deepEqual(r.refusals, {
      mif32: "ENFILE", mifInUse: "EADDRINUSE", mifNoDevice: "EADDRNOTAVAIL", mifBigIfindex: "EOVERFLOW",
      delMifMissing: "EADDRNOTAVAIL", mfcParent32: "ENFILE", mfcUnicastGroup: "EINVAL", delMfcMissing: "ENOENT",
    });
    // A parent or a member naming no MIF is accepted; the member is dropped.
    assert.deepEqual(r.mfcMissingMifs.parent, "ok");
    assert.deepEqual(r.mfcMissingMifs.member, "ok");
    assert.deepEqual(shape(r.mfcMissingMifs.proc), [
      entry("ff3e::78", SENDER_ADDR, 20, ["1:1"]), entry("ff3e::79", SENDER_ADDR, 0, ["1:1"]),
    ]);
  });

  void test("(S,G) and (*,G) entries: exactly the MIFs of the set (/proc/net/ip6_mr_cache, ip -6 mroute show)", () => {
    assert.deepEqual(shape(r.entries), [
      entry("ff3e::1", SENDER_ADDR, 0, ["1:1"]),
      entry("ff3e::2", "::", 0, ["0:1", "2:1"]),
      entry("ff3e::3", "::", 0, ["2:1"]),
    ]);
    assert.match(r.ipShow, /\(fd00:1::2,ff3e::1\)\s+Iif: a0\s+Oifs: b0\s+State: resolved/);
    assert.match(r.ipShow, /\(::,ff3e::2\)\s+Iif: a0\s+Oifs: a0 c0\s+State: resolved/);
    assert.deepEqual(r.absent, { sg: null, template: null, mif9: null, mif3: null }, "no entry / no MIF: undefined");
  });

  void test("forwarding after real traffic: counters, hop limit 1, thresholds, (*,G)", () => {
    const c = r.counters;
    // 5 datagrams with hop limit 8 and 3 with hop limit 1: all counted by the entry, 5 forwarded out
    // of b0 although its MIF has threshold 200 (ip6mr forwards on every member when hop limit > 1).
    assert.deepEqual({ packets: c.sg.packets, wrongIf: c.sg.wrongIf }, { packets: 8, wrongIf: 0 });
    assert.equal(c.mif1.pktsOut, 5);
    // (*,G) with the input MIF in its set: forwarded out of c0, never back out of a0, no upcall.
    assert.deepEqual({ packets: c.starG.packets, wrongIf: c.starG.wrongIf }, { packets: 4, wrongIf: 0 });
    assert.equal(c.mif2.pktsOut, 4);
    assert.equal(c.mif0.pktsOut, 0);
    assert.equal(c.mif0.pktsIn, 12, "8 + 4 datagrams matched an entry on a0");
    // (*,G) without the input MIF in its set never matches: the flow is an upcall.
    assert.equal(c.starGNoParent.packets, 0);
    assert.ok(c.mif1.bytesOut > 0 && c.mif0.bytesIn > 0);
  });

  void test("upcalls: MRT6MSG_NOCACHE for flows with no entry, on the input MIF, in canonical text", () => {
    assert.deepEqual(r.upcalls, [
      { vifi: 0, source: SENDER_ADDR, group: "ff3e::3" },
      { vifi: 0, source: SENDER_ADDR, group: "ff3e::9" },
    ]);
  });

  void test("ICMP6_FILTER: pings nobody read leave the socket's queue empty, and an upcall still arrives", () => {
    assert.deepEqual(r.rxQueueAfterPings, [0], "rx_queue of the raw ICMPv6 socket (/proc/net/raw6)");
    assert.deepEqual(r.upcallAfterPings, [{ vifi: 0, source: SENDER_ADDR, group: "ff3e::a" }]);
  });

  void test("replace, delete (the parent is ignored), delete a MIF", () => {
    assert.deepEqual(shape(r.replaced), [entry("ff3e::1", SENDER_ADDR, 0, ["2:1"])], "MRT6_ADD_MFC replaces the (S,G)");
    assert.ok((r.replaced[0]?.pkts ?? 0) >= 8, "a replaced entry keeps its counters");
    assert.equal(r.delOtherParent, "ok", "MRT6_DEL_MFC with another parent deletes the (S,G)");
    assert.deepEqual(r.afterDelete.filter((e) => e.iif >= 0), [], "only the kernel's unresolved flows are left");
    assert.deepEqual(r.mifsAfterDelete, { 0: "a0", 2: "c0" });
  });

  void test("MRT6_FLUSH and MRT6_DONE empty the table; a closed table can be taken again", () => {
    assert.equal(r.staticAdd, "ok", "a non-owner with CAP_NET_ADMIN adds a static entry");
    assert.equal(r.beforeFlush, 2);
    assert.deepEqual(r.afterFlush, { mifs: {}, cache: [] }, "flush drops MIFs, entries (static ones too) and unresolved flows");
    assert.deepEqual(r.beforeClose.mifs, { 0: "a0", 1: "b0" });
    assert.equal(r.beforeClose.cache.length, 1);
    assert.deepEqual(r.afterClose, { mifs: {}, cache: [] });
    assert.equal(r.retake, "ok");
  });

  void test("MRT6_TABLE: another table, seen by ip -6 mroute show table N only", () => {
    assert.match(r.table5.ipShow, /\(fd00:1::2,ff3e::5\)\s+Iif: a0\s+Oifs: b0\s+State: resolved/);
    assert.deepEqual(r.table5.proc, []);
    assert.deepEqual(r.table5.mifs, {});
  });
});
