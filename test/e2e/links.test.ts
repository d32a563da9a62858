// SPEC §6.3, second sentence, on the real kernel: routes whose interfaces are missing stay
// `pending` (with a reason) and are installed when the interface appears; a VIF whose interface
// vanishes is re-added when it returns — while the daemon runs and across a restart, with no
// operator action. Also: no MFC entry keeps naming the VIF of a deleted device (the kernel keeps
// stale VIF indices in MFC entries; a new device on that index would inherit them).
// Needs root and a built dist/. Run: node --import tsx --test test/e2e/links.test.ts
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createLab, type Lab } from "../lab/lab.js";
import { kernelTables, startDaemon, type DaemonHandle } from "../lab/daemon.js";
import { procHex } from "../lab/kernel_view.js";
import { mfcOk, route, show } from "../lab/show.js";
import { tempDir } from "../lab/temp_dir.js";
import { forwards } from "../lab/traffic.js";
import { until } from "../lab/wait.js";

// ---- helpers (shared ones live in test/lab/) ---------------------------------------------------

interface Tables { vifs: Map<string, number>; mfcs: { group: string; iif: number; oifs: number[] }[] }

/** /proc/net/ip_mr_vif as name -> VIF index; ip_mr_cache as (group, iif, oif VIF indices). */
async function tables(lab: Lab): Promise<Tables> {
  const k = await kernelTables(lab);
  const vifs = new Map(k.vif.map((row) => { const [idx = "", name = ""] = row.split(/\s+/); return [name, Number(idx)] as const; }));
  const mfcs = k.cache.map((row) => {
    const [group = "", , iif = "", , , , ...oifs] = row.split(/\s+/);
    return { group, iif: Number(iif), oifs: oifs.map((o) => Number(o.split(":")[0])) };
  });
  return { vifs, mfcs };
}

/** Re-creates router dn1 <-> recv1 eth0 as the lab made it (veth, addresses, routes, rp_filter 0). */
async function recreateDn1(lab: Lab): Promise<void> {
  const r = lab.ns.router;
  const rx = lab.ns.recv1;
  await lab.exec(r, ["ip", "link", "add", "dn1", "type", "veth", "peer", "name", "eth0", "netns", rx]);
  await lab.exec(r, ["sysctl", "-qw", "net.ipv4.conf.dn1.rp_filter=0"]);
  await lab.exec(r, ["ip", "addr", "add", `${lab.addr.routerDn1}/24`, "dev", "dn1"]);
  await lab.exec(r, ["ip", "link", "set", "dn1", "multicast", "on", "up"]);
  await lab.exec(rx, ["ip", "addr", "add", `${lab.addr.recv1}/24`, "dev", "eth0"]);
  await lab.exec(rx, ["ip", "link", "set", "eth0", "multicast", "on", "up"]);
  await lab.exec(rx, ["ip", "route", "add", "224.0.0.0/4", "dev", "eth0"]);
  await lab.exec(rx, ["ip", "route", "replace", "default", "via", lab.addr.routerDn1]);
}

const G1 = "239.5.0.1"; // (S,G)  up0 -> dn1            : pending while dn1 is gone
const G2 = "239.5.0.2"; // (*,G)  up0 -> dn1, dn2       : keeps forwarding to dn2
const G3 = "239.5.0.3"; // (S,G)  up0 -> dn2            : untouched

async function setup(t: TestContext): Promise<{ lab: Lab; d: DaemonHandle; dir: string }> {
  const lab = await createLab();
  t.after(() => lab.destroy());
  const dir = tempDir(t, "mfct-links-");
  const d = await startDaemon(lab, { dir });
  t.after(() => d.cleanup());
  const S = lab.addr.sender;
  await mfcOk(d, ["vif", "add", "dev", "dn1", "threshold", "2"]); // pinned: must come back by itself
  await mfcOk(d, ["add", "from", S, "to", G1, "iif", "up0", "oif", "dn1"]);
  await mfcOk(d, ["add", "to", G2, "iif", "up0", "oif", "dn1", "dn2"]);
  await mfcOk(d, ["add", "from", S, "to", G3, "iif", "up0", "oif", "dn2"]);
  return { lab, d, dir };
}

/** While dn1 is missing: G1 pending with a reason naming dn1, no MFC entry names the dead VIF. */
async function checkDn1Missing(lab: Lab, d: DaemonHandle, staleVifi: number | undefined): Promise<void> {
  const s = await until("G1 to be pending", async () => {
    const v = await show(d);
    return route(v, G1).state === "pending" ? v : undefined;
  });
  assert.match(route(s, G1).reason ?? "", /dn1/, "the pending reason names the missing interface");
  assert.equal(route(s, G2).state, "installed", "(*,G2) still forwards to dn2");
  assert.equal(route(s, G3).state, "installed");
  const dn1 = s.vifs.find((v) => v.ifname === "dn1");
  assert.ok(dn1 && dn1.vifi === null && dn1.pinned, `dn1 is listed as a pinned VIF without a number: ${JSON.stringify(dn1)}`);

  const k = await until("the kernel to drop G1's entry", async () => {
    const tb = await tables(lab);
    return tb.mfcs.some((m) => m.group === procHex(G1)) ? undefined : tb;
  });
  assert.equal(k.vifs.has("dn1"), false, "no VIF for dn1 in the kernel");
  assert.deepEqual(k.mfcs.map((m) => m.group).sort(), [procHex(G2), procHex(G3)].sort());
  if (staleVifi !== undefined) {
    for (const m of k.mfcs) {
      assert.ok(m.iif !== staleVifi && !m.oifs.includes(staleVifi), `MFC entry ${m.group} still names dn1's old VIF ${staleVifi}: ${JSON.stringify(m)}`);
    }
  }
  // Every VIF an entry names exists (an entry naming a free index would forward into whatever gets it).
  const live = new Set(k.vifs.values());
  for (const m of k.mfcs) for (const v of [m.iif, ...m.oifs]) assert.ok(live.has(v), `MFC entry ${m.group} names VIF ${v}, which does not exist`);
}

/** After dn1 is back: everything installed again, dn1's VIF re-added with its threshold, traffic flows. */
async function checkDn1Back(lab: Lab, d: DaemonHandle, port: number): Promise<void> {
  const s = await until("G1 to be installed again", async () => {
    const v = await show(d);
    return v.routes.every((r) => r.state === "installed" && r.reason === undefined) ? v : undefined;
  });
  const dn1 = s.vifs.find((v) => v.ifname === "dn1");
  assert.ok(dn1 && dn1.vifi !== null && dn1.pinned && dn1.threshold === 2, `dn1's pinned VIF is back: ${JSON.stringify(dn1)}`);
  const k = await tables(lab);
  const vifi = k.vifs.get("dn1");
  assert.ok(vifi !== undefined, "kernel VIF for dn1");
  for (const g of [G1, G2]) {
    const m = k.mfcs.find((x) => x.group === procHex(g));
    assert.ok(m?.oifs.includes(vifi), `${g} forwards to dn1's new VIF ${vifi}: ${JSON.stringify(m)}`);
  }
  await forwards(lab, [{ group: G1, port, to: "recv1" }]);
  await forwards(lab, [{ group: G2, port: port + 1, to: "recv1" }]);
  await forwards(lab, [{ group: G3, port: port + 2, to: "recv2" }]);
}

// ---- tests ----------------------------------------------------------------------------------------

void test("an interface deleted and re-created while the daemon runs: pending with a reason, then installed and forwarding again", async (t) => {
  const { lab, d } = await setup(t);
  await forwards(lab, [{ group: G1, port: 5201, to: "recv1" }]); // control
  const staleVifi = (await tables(lab)).vifs.get("dn1");
  assert.ok(staleVifi !== undefined);

  await lab.delLink("dn1"); // deletes recv1's eth0 too (veth pair)
  await checkDn1Missing(lab, d, staleVifi);
  await forwards(lab, [{ group: G3, port: 5202, to: "recv2" }]); // the rest keeps working meanwhile
  await forwards(lab, [{ group: G2, port: 5203, to: "recv2" }]);

  // A new interface arriving now must not inherit anything from dn1's old VIF number.
  await lab.addDummy("new0");
  await mfcOk(d, ["vif", "add", "dev", "new0"]);
  await checkDn1Missing(lab, d, staleVifi);

  await recreateDn1(lab);
  await checkDn1Back(lab, d, 5210);
  const state = await show(d);
  assert.ok(state.vifs.some((v) => v.ifname === "new0" && v.vifi !== null));
});

void test("restart while an interface is missing: the start succeeds with the route pending, and it is installed when the interface appears", async (t) => {
  const { lab, d, dir } = await setup(t);
  assert.equal(await d.stop("SIGTERM"), 0);
  await lab.delLink("dn1");

  const d2 = await startDaemon(lab, { dir });
  t.after(() => d2.cleanup());
  await checkDn1Missing(lab, d2, undefined);

  await recreateDn1(lab);
  await checkDn1Back(lab, d2, 5220);
  assert.equal(await d2.stop("SIGTERM"), 0);
});

void test("an interface renamed away is missing (pending, no stale entry); renamed back it forwards again", async (t) => {
  const { lab, d } = await setup(t);
  const staleVifi = (await tables(lab)).vifs.get("dn1");
  const ip = (...args: string[]): Promise<unknown> => lab.exec(lab.ns.router, ["ip", "link", "set", ...args]);
  await ip("dn1", "down");
  await ip("dn1", "name", "old1");
  await ip("old1", "up");
  await checkDn1Missing(lab, d, staleVifi); // the routes name dn1, not whatever device had its index
  await ip("old1", "down");
  await ip("old1", "name", "dn1");
  await ip("dn1", "up");
  await checkDn1Back(lab, d, 5230);
});
