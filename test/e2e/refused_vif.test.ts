// Issue 10 item 3 on the real kernel: one interface the kernel refuses as a VIF must not block the
// restore. The refusal is real: an interface whose MTU is below 68 loses its IPv4 in_device, and
// MRT_ADD_VIF (VIFF_USE_IFINDEX) then fails with EADDRNOTAVAIL. After a restart the daemon serves,
// every other route is installed and forwards real multicast, the refused routes are `pending`
// with the reason "kernel refused VIF: EADDRNOTAVAIL" (status, show, check), and once the interface
// is fixed (MTU 1500: a link event) they are installed within seconds. A live change naming an
// interface the kernel refuses (one not yet in the configuration) gets E_KERNEL and changes
// nothing; a new route over the interface that already waits is accepted as pending.
// Needs root and a built dist/. Run: node --import tsx --test test/e2e/refused_vif.test.ts
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { createLab } from "../lab/lab.js";
import { kernelTables, startDaemon, type DaemonHandle } from "../lab/daemon.js";
import { assertKernelEqualsShow } from "../lab/kernel_view.js";
import { mfcOk, route, show, status } from "../lab/show.js";
import { tempDir } from "../lab/temp_dir.js";
import { forwards } from "../lab/traffic.js";
import { until } from "../lab/wait.js";

// ---- helpers (shared ones live in test/lab/) ---------------------------------------------------

/** Bytes of the state files (snapshot and journal), to prove a refused change wrote nothing. */
function stateBytes(d: DaemonHandle): string {
  const j = `${d.stateFile}.journal`;
  return readFileSync(d.stateFile).toString("base64") + "|" + (existsSync(j) ? readFileSync(j).toString("base64") : "-");
}

const REFUSED = /kernel refused VIF: EADDRNOTAVAIL/;

// ---- test -------------------------------------------------------------------------------------

void test("an interface the kernel refuses as a VIF leaves its routes pending; the rest restores and forwards; fixed, it is installed", async (t) => {
  const lab = await createLab();
  t.after(() => lab.destroy());
  const dir = tempDir(t, "mfct-refvif-");
  const r = lab.ns.router;
  await lab.addDummy("rfz0");
  await lab.addDummy("rfy0");
  const S = lab.addr.sender;
  const G1 = "239.6.0.1"; // (S,G) up0 -> dn1
  const G2 = "239.6.0.2"; // (*,G) up0 -> dn2
  const GR = "239.6.0.3"; // (S,G) up0 -> rfz0            : pending while rfz0 is refused
  const GP = "239.6.0.4"; // (S,G) up0 -> dn1, rfz0       : forwards to dn1 meanwhile

  // The state is acknowledged while rfz0 is healthy.
  const d = await startDaemon(lab, { dir });
  t.after(() => d.cleanup());
  await mfcOk(d, ["add", "from", S, "to", G1, "iif", "up0", "oif", "dn1"]);
  await mfcOk(d, ["add", "to", G2, "iif", "up0", "oif", "dn2"]);
  await mfcOk(d, ["add", "from", S, "to", GR, "iif", "up0", "oif", "rfz0"]);
  await mfcOk(d, ["add", "from", S, "to", GP, "iif", "up0", "oif", "dn1", "rfz0"]);
  assert.equal(await d.stop(), 0, d.logs());

  // MTU < 68 removes the IPv4 in_device: the kernel refuses rfz0 as a VIF (EADDRNOTAVAIL).
  await lab.exec(r, ["ip", "link", "set", "rfz0", "mtu", "60"]);
  await lab.exec(r, ["ip", "link", "set", "rfy0", "mtu", "60"]);
  const conf = await lab.exec(r, ["ls", "/proc/sys/net/ipv4/conf"]);
  assert.doesNotMatch(conf.stdout, /\brfz0\b/, "rfz0 has no IPv4 in_device");

  const d2 = await startDaemon(lab, { dir });
  t.after(() => d2.cleanup());
  assert.match(d2.logs(), /interface rfz0: kernel refused VIF: EADDRNOTAVAIL/);
  const s = await show(d2);
  assert.equal(route(s, G1).state, "installed");
  assert.equal(route(s, G1).reason, undefined);
  assert.equal(route(s, G2).state, "installed");
  assert.equal(route(s, GR).state, "pending");
  assert.match(route(s, GR).reason ?? "", REFUSED);
  assert.match(route(s, GR).reason ?? "", /rfz0/);
  assert.equal(route(s, GP).state, "installed", "the route still forwards to dn1");
  assert.match(route(s, GP).reason ?? "", REFUSED);
  assert.equal(s.vifs.find((v) => v.ifname === "rfz0")?.vifi, null);
  await assertKernelEqualsShow(lab, s);
  const st = await status(d2);
  assert.deepEqual(st.interfaces_waiting, { rfz0: "kernel refused VIF: EADDRNOTAVAIL" });
  assert.equal(st.routes, 4);
  const check = await d2.mfc(["-j", "check"]);
  const findings = (JSON.parse(check.stdout) as { result: { findings: { code: string; ifname?: string; message: string }[] } }).result.findings;
  assert.ok(findings.some((f) => f.code === "IF_NO_VIF" && f.ifname === "rfz0" && REFUSED.test(f.message)), `check: ${check.stdout}`);

  // Real multicast flows on every other route.
  await forwards(lab, [{ group: G1, port: 5601, to: "recv1" }, { group: G2, port: 5602, to: "recv2" }, { group: GP, port: 5604, to: "recv1" }]);

  // A live change naming an interface the kernel refuses: E_KERNEL, nothing changes.
  const before = { show: await show(d2), files: stateBytes(d2), kernel: await kernelTables(lab) };
  const live = await d2.mfc(["add", "from", S, "to", "239.6.0.5", "iif", "up0", "oif", "rfy0"]);
  assert.equal(live.code, 1, `add over rfy0: ${live.stdout}${live.stderr}`);
  assert.match(live.stderr, /E_KERNEL/);
  assert.match(live.stderr, /MRT_ADD_VIF.*EADDRNOTAVAIL/);
  const afterShow = await show(d2);
  assert.deepEqual(afterShow.routes.map((x) => `${x.group} ${x.state}`), before.show.routes.map((x) => `${x.group} ${x.state}`));
  assert.equal(stateBytes(d2), before.files, "the state files are untouched");
  assert.deepEqual((await kernelTables(lab)).vif, before.kernel.vif);

  // A new route over rfz0, which already waits with the kernel's refusal: the engine does not try
  // it again inside the transaction (a waiting interface never fails a change); it is accepted
  // as pending with that reason and a warning, like a route over a missing interface.
  const GN = "239.6.0.6";
  const onRefused = await d2.mfc(["add", "from", S, "to", GN, "iif", "up0", "oif", "rfz0"]);
  assert.equal(onRefused.code, 0, onRefused.stderr);
  assert.match(onRefused.stderr, /mfc: error: IF_NO_VIF.*rfz0.*kernel refused VIF: EADDRNOTAVAIL/);
  assert.equal(route(await show(d2), GN).state, "pending");
  assert.match(route(await show(d2), GN).reason ?? "", REFUSED);
  assert.deepEqual((await kernelTables(lab)).vif, before.kernel.vif, "no kernel change");

  // Fix the interface: the link event makes the daemon retry, and the routes are installed.
  await lab.exec(r, ["ip", "link", "set", "rfz0", "mtu", "1500"]);
  const fixed = await until("routes over rfz0 to be installed", async () => {
    const v = await show(d2);
    return v.routes.every((x) => x.state === "installed" && x.reason === undefined) ? v : undefined;
  }, 4_000);
  assert.ok((fixed.vifs.find((v) => v.ifname === "rfz0")?.vifi ?? null) !== null, "rfz0 has a VIF");
  await assertKernelEqualsShow(lab, fixed);
  const st2 = await status(d2);
  assert.deepEqual(st2.interfaces_waiting, {});
  assert.equal(st2.routes_pending, 0);
  await forwards(lab, [{ group: G1, port: 5611, to: "recv1" }, { group: GP, port: 5614, to: "recv1" }]);
  assert.equal(await d2.stop(), 0, d2.logs());
});
