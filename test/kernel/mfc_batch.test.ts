/**
 * KernelTables.addMfcs on the real kernel (src/kernel/mfc_netlink.ts: IPv4 entries as rtnetlink
 * RTM_NEWROUTE messages, many per send): it must leave exactly what addMfc one by one leaves, in
 * the default table and in another, refuse what addMfc refuses with the same error at the same
 * place (refused messages are added again with MRT_ADD_MFC, whose answer counts), and its entries
 * must be the routing socket's own, gone with MRT_DONE. The work runs in a child (netns6.ts).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { execFileSync } from "node:child_process";
import type { BatchReport, NetlinkFailsReport, NoNetAdminReport, TinyBufferReport } from "./fixtures/mfc_batch_child.js";
import { createLab6, runInRouter, type Lab6 } from "./fixtures/netns6.js";

const CHILD = fileURLToPath(new URL("./fixtures/mfc_batch_child.ts", import.meta.url));

void describe("KernelTables.addMfcs (rtnetlink batch) on real IPMR tables in a netns", () => {
  let lab: Lab6 | undefined;
  let r: BatchReport;

  before(() => {
    lab = createLab6("kb");
    r = runInRouter<BatchReport>(lab, CHILD);
  });

  after(() => lab?.remove());

  for (const table of ["default", "table 100"]) {
    void test(`${table}: the same 300 entries as addMfc one by one (parents, TTLs, (*,G))`, () => {
      const run = r[table];
      assert.ok(run);
      assert.equal(run.batch.length, 300, run.batch.slice(0, 3).join("\n"));
      assert.deepEqual(run.batch, run.single);
      assert.ok(run.batch.some((l) => l.includes("(0.0.0.0,")) && run.batch.some((l) => l.includes("ttl 5")), run.batch.slice(0, 6).join("\n"));
    });

    void test(`${table}: MRT_DONE drops them like the socket's own entries`, () => {
      assert.deepEqual(r[table]?.afterDone, []);
    });

    void test(`${table}: refusals where addMfc refuses, with its errors`, () => {
      const run = r[table];
      assert.deepEqual(run?.refusals.batch, ["ok", "MRT_ADD_MFC EINVAL", "ok", "MRT_ADD_MFC ENFILE", "ok"]);
      assert.deepEqual(run.refusals.batch, run.refusals.single);
    });

    void test(`${table}: in 1 000 entries (8 sends), each refused one at its own index`, () => {
      const expected = Array.from({ length: 1000 }, (_, i) => i).filter((i) => i % 97 === 5);
      assert.deepEqual(r[table]?.spread, expected);
    });

    void test(`${table}: rtnetlink did the adds: MRT_ADD_MFC only for the entries it refused`, () => {
      // Refusals: the two refused, and the last entry, whose parent VIF 2 was deleted: rtnetlink
      // names the parent by its device (c0, no VIF now: ENFILE), MRT_ADD_MFC takes VIF 2 as given
      // and adds it, so the fallback leaves it as addMfc would.
      assert.deepEqual(r[table]?.setsockoptAdds, { good: 0, refusals: 3, spread: 11 });
    });

    void test(`${table}: IPv6 entries in the same call are added too`, () => {
      assert.equal(r[table]?.ipv6.length, 2, r[table]?.ipv6.join("\n"));
    });
  }

  void test("without CAP_NET_ADMIN (MRT_ADD_MFC needs none on the table's own socket): every entry added, rtnetlink tried once", () => {
    assert.ok(lab);
    // setpriv (util-linux) drops CAP_NET_ADMIN from the bounding set: root keeps every other capability.
    const out = execFileSync("ip", ["netns", "exec", lab.router, "setpriv", "--bounding-set=-net_admin", process.execPath, "--import", "tsx", CHILD, lab.sender, "no-net-admin"], {
      encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 120_000,
    });
    assert.deepEqual(JSON.parse(out) as NoNetAdminReport, { refused: 0, installed: 300, setsockoptAdds: 300, sends: [1, 0] });
  });

  void test("errors that overflow the receive buffer: the whole send counts as unconfirmed, and later errors are not lost", () => {
    assert.ok(lab);
    const out = execFileSync("ip", ["netns", "exec", lab.router, process.execPath, "--import", "tsx", CHILD, lab.sender, "tiny-rcvbuf"], {
      encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 120_000,
    });
    const refused = [...Array.from({ length: 64 }, (_, i) => i), 74, 138, 202, 266];
    assert.deepEqual(JSON.parse(out) as TinyBufferReport, { refused, installed: 320 - refused.length });
  });

  void test("rtnetlink unusable (its socket refused, or every send failing): every entry added with MRT_ADD_MFC", () => {
    assert.ok(lab);
    const out = execFileSync("ip", ["netns", "exec", lab.router, process.execPath, "--import", "tsx", CHILD, lab.sender, "netlink-fails"], {
      encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 120_000,
    });
    const each = { refused: 0, installed: 300, setsockoptAdds: 300 };
    assert.deepEqual(JSON.parse(out) as NetlinkFailsReport, { socket: each, send: each });
  });
});
