// Group-range templates on the real kernel (issue 14 part 2, SPEC §7): a route whose group is a
// range installs an (S, G) entry for each flow that arrives on its iif and matches (the kernel's
// IGMPMSG_NOCACHE upcall), the first packets of a flow are forwarded (the kernel holds them for the
// upcall's round trip), flows outside the range or from another source are not taken, an exact
// route wins over a template, a template replaced in place moves its flows, a flow idle for
// template_idle_s goes, deleting the template removes its flows, and a restart keeps the template.
//
//   sender eth0 (S, and OTHER) --- up0 [router + mfc_daemon] dn1 --- recv1
//                                                             dn2 --- recv2
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { createLab, type LabRole } from "../lab/lab.js";
import { startDaemon } from "../lab/daemon.js";
import { until } from "../lab/wait.js";

const lab = await createLab();
after(() => lab.destroy());
const S = lab.addr.sender;
const OTHER = `10.${lab.x}.1.3`;
await lab.exec(lab.ns.sender, ["ip", "addr", "add", `${OTHER}/24`, "dev", "eth0"]);
const IDLE_S = 2;
// Flows stay while the first tests run; the last restarts the daemon with a short idle time.
const d = await startDaemon(lab, { extraConfig: "template_idle_s = 600" });
after(() => d.cleanup());
const mfc = (args: string[]): Promise<string> => d.mfcOk(args);
const { up, dn1, dn2 } = lab.routerIf;
const PORT = 5201;

/** Sends n datagrams (back to back) from `from`; resolves with how many each receiver got. */
async function burst(group: string, n: number, from = S): Promise<{ recv1: number; recv2: number }> {
  const rx = { recv1: await lab.listen("recv1", group, PORT), recv2: await lab.listen("recv2", group, PORT) };
  try {
    await lab.send(group, PORT, n, { ttl: 8, localAddr: from });
    await Promise.all((["recv1", "recv2"] as LabRole[]).map((r) => rx[r as "recv1" | "recv2"].waitFor(n, 1_000)));
    return { recv1: rx.recv1.count(), recv2: rx.recv2.count() };
  } finally {
    await Promise.all([rx.recv1.stop(), rx.recv2.stop()]);
  }
}

/** The kernel's resolved entries: "S,G iif>oifs" from `ip -j mroute show` (default table). */
async function kernelEntries(): Promise<string[]> {
  const out = (await lab.exec(lab.ns.router, ["ip", "-j", "mroute", "show"])).stdout.trim();
  const rows = (out === "" ? [] : JSON.parse(out)) as { src: string; dst: string; iif: string; multipath?: { oif: string }[] }[];
  // Unresolved entries (flows no route took, held ~10 s by the kernel) are not entries of ours.
  return rows.filter((r) => r.iif !== "unresolved").map((r) => `${r.src},${r.dst} ${r.iif}>${(r.multipath ?? []).map((o) => o.oif).sort().join("+")}`).sort();
}

interface ShownRoute { source: string | null; group: string; state: string; packets: number; flows?: { source: string; group: string; packets: number }[] }
async function template(group: string): Promise<ShownRoute | undefined> {
  return (JSON.parse(await mfc(["show", "-j"])) as { routes: ShownRoute[] }).routes.find((r) => r.group === group);
}

void test("a source-specific template installs each matching flow, first packets included, and nothing else", async (t) => {
  await mfc(["add", "from", S, "group", "239.77.0.0/16", "iif", up, "oif", dn1]);
  assert.deepEqual(await kernelEntries(), [], "a template has no kernel entry of its own");
  const t0 = process.hrtime.bigint();
  const first = await burst("239.77.1.1", 3);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  assert.deepEqual(first, { recv1: 3, recv2: 0 }, "the first packets of a new flow are forwarded, not lost");
  assert.deepEqual(await kernelEntries(), [`${S},239.77.1.1 ${up}>${dn1}`]);
  assert.deepEqual(await burst("239.77.200.9", 2), { recv1: 2, recv2: 0 }, "another group of the range");
  assert.deepEqual(await burst("239.78.1.1", 2), { recv1: 0, recv2: 0 }, "a group outside the range is not taken");
  assert.deepEqual(await burst("239.77.1.1", 2, OTHER), { recv1: 0, recv2: 0 }, "another source is not taken by a source-specific template");
  assert.deepEqual(await kernelEntries(), [`${S},239.77.1.1 ${up}>${dn1}`, `${S},239.77.200.9 ${up}>${dn1}`]);
  const shown = await template("239.77.0.0/16");
  assert.equal(shown?.state, "installed");
  assert.deepEqual(shown?.flows?.map((f) => `${f.source},${f.group}:${f.packets}`), [`${S},239.77.1.1:3`, `${S},239.77.200.9:2`]);
  assert.equal(shown?.packets, 5, "a template counts the packets of its flows");
  const text = await mfc(["show", "routes"]);
  assert.match(text, new RegExp(`\\(${S.replaceAll(".", "\\.")}, 239\\.77\\.0\\.0/16\\).*template: 2 flow\\(s\\)\\n  flow \\(${S.replaceAll(".", "\\.")}, 239\\.77\\.1\\.1\\)  pkts 3`));
  // How long the upcall round trip is, in packets: 20 datagrams back to back (no pause) to a new
  // flow. The kernel holds the first 4 of an unresolved flow and drops the rest until the entry
  // exists, so every datagram past 4 that arrives was sent after the daemon had installed it.
  const fast = await burst("239.77.50.50", 20);
  assert.ok(fast.recv1 >= 3, `a back-to-back burst to a new flow: ${fast.recv1} of 20 arrived`);
  const status = (JSON.parse(await mfc(["-j", "status"])) as { result: Record<string, number> }).result;
  assert.deepEqual([status.routes, status.templates, status.template_flows, status.routes_pending], [1, 1, 3, 0], "status counts the template and its flows apart");
  t.diagnostic(`first 3 datagrams of a new flow: 3 of 3 delivered (${ms.toFixed(0)} ms with listeners and sender start); 20 back to back to another new flow: ${fast.recv1} of 20 delivered`);
});

void test("an any-source template takes every source; an exact route wins; replaced in place, its flows move", async () => {
  await mfc(["add", "group", "239.79.0.0/16", "iif", up, "oif", dn1]);
  assert.deepEqual(await burst("239.79.0.5", 2, S), { recv1: 2, recv2: 0 });
  assert.deepEqual(await burst("239.79.0.5", 2, OTHER), { recv1: 2, recv2: 0 });
  // An exact route for one flow: the kernel entry is the route's now, forwarding to dn2.
  await mfc(["add", "from", S, "group", "239.79.0.5", "iif", up, "oif", dn2]);
  assert.deepEqual(await burst("239.79.0.5", 2, S), { recv1: 0, recv2: 2 }, "the exact route wins");
  assert.deepEqual(await burst("239.79.0.5", 2, OTHER), { recv1: 2, recv2: 0 }, "the other source still goes by the template");
  // Replaced in place (same key, new output): its flows follow at once.
  await mfc(["replace", "group", "239.79.0.0/16", "iif", up, "oif", dn2]);
  assert.deepEqual(await burst("239.79.0.5", 2, OTHER), { recv1: 0, recv2: 2 }, "the flow moved with its template");
  // The exact route goes: the flow's next packet is taken by the template again.
  await mfc(["del", "from", S, "group", "239.79.0.5"]);
  assert.deepEqual(await burst("239.79.0.5", 2, S), { recv1: 0, recv2: 2 });
  const shown = await template("239.79.0.0/16");
  assert.deepEqual(shown?.flows?.map((f) => `${f.source},${f.group}`).sort(), [`${OTHER},239.79.0.5`, `${S},239.79.0.5`].sort());
});

void test("a restart keeps the template (not its flows); an idle flow goes after template_idle_s; deleting a template removes its flows", async () => {
  await d.stop("SIGTERM");
  const d2 = await startDaemon(lab, { dir: d.dir, extraConfig: `template_idle_s = ${IDLE_S}` });
  after(() => d2.cleanup());
  assert.deepEqual(await kernelEntries(), [], "flows are not saved: the kernel starts empty");
  assert.deepEqual(await burst("239.77.3.3", 2), { recv1: 2, recv2: 0 }, "the template came back with the restart");

  await until("the idle flow to be removed", async () => ((await kernelEntries()).some((e) => e.startsWith(`${S},239.77.3.3 `)) ? undefined : true), (IDLE_S + 10) * 1000, 250);
  assert.match(d2.logs(), /flow \([\d.]+, 239\.77\.3\.3\) removed \(idle for 2 s\)/);
  assert.deepEqual(await burst("239.77.3.3", 2), { recv1: 2, recv2: 0 }, "its next packet installs it again");

  assert.deepEqual(await burst("239.79.0.5", 2, OTHER), { recv1: 0, recv2: 2 });
  await d2.mfcOk(["del", "group", "239.79.0.0/16"]);
  assert.ok(!(await kernelEntries()).some((e) => e.includes(",239.79.")), "the template's flows went with it");
  assert.deepEqual(await burst("239.79.0.5", 2, OTHER), { recv1: 0, recv2: 0 });
  await d2.stop("SIGTERM");
});
