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
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLab, type Lab } from "../lab/lab.js";
import { kernelTables, startDaemon, type DaemonHandle } from "../lab/daemon.js";

// ---- helpers (kept local: each e2e file is self-contained) ------------------------------------

interface Oif { ifname: string; ttl: number }
interface RouteView { source: string | null; group: string; iif: string; oifs: Oif[]; state: string; reason?: string }
interface VifView { vifi: number | null; ifname: string }
interface Show { vifs: VifView[]; routes: RouteView[] }

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

async function mfcOk(d: DaemonHandle, args: string[]): Promise<string> {
  const r = await d.mfc(args);
  assert.equal(r.code, 0, `mfc ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

async function show(d: DaemonHandle): Promise<Show> {
  return JSON.parse(await mfcOk(d, ["-j", "show"])) as Show;
}

async function status(d: DaemonHandle): Promise<Record<string, unknown>> {
  return (JSON.parse(await mfcOk(d, ["-j", "status"])) as { result: Record<string, unknown> }).result;
}

const route = (s: Show, group: string): RouteView => {
  const r = s.routes.find((x) => x.group === group);
  assert.ok(r, `route for ${group} in show -j`);
  return r;
};

function procHex(ip: string): string {
  return ip.split(".").reverse().map((o) => Number(o).toString(16).toUpperCase().padStart(2, "0")).join("");
}

/** /proc (default table) = show -j: same VIFs, one resolved entry per installed route with the oifs that have a VIF. */
async function assertKernelEqualsShow(lab: Lab, s: Show): Promise<void> {
  const k = await kernelTables(lab);
  const kvifs = new Map(k.vif.map((row) => { const [idx = "", name = ""] = row.split(/\s+/); return [Number(idx), name] as const; }));
  const svifs = new Map(s.vifs.filter((v) => v.vifi !== null).map((v) => [v.vifi as number, v.ifname] as const));
  assert.deepEqual([...kvifs].sort((a, b) => a[0] - b[0]), [...svifs].sort((a, b) => a[0] - b[0]), "/proc/net/ip_mr_vif = show -j vifs");
  const kernel = k.cache.map((row) => {
    const [group = "", origin = "", iif = "", , , , ...oifs] = row.split(/\s+/);
    return { group, origin, iif: Number(iif), oifs: oifs.map((o) => Number(o.split(":")[0])) };
  }).filter((m) => kvifs.has(m.iif))
    .map((m) => {
      const iif = kvifs.get(m.iif) as string;
      const oifs = m.oifs.map((v) => kvifs.get(v) ?? `?${v}`).filter((n) => !(m.origin === "00000000" && n === iif)).sort();
      return `${m.group} ${m.origin} ${iif} ${oifs.join(",")}`;
    }).sort();
  const named = new Set(svifs.values());
  const shown = s.routes.filter((r) => r.state === "installed").map((r) => {
    const oifs = r.oifs.map((o) => o.ifname).filter((n) => named.has(n)).sort();
    return `${procHex(r.group)} ${r.source === null ? "00000000" : procHex(r.source)} ${r.iif} ${oifs.join(",")}`;
  }).sort();
  assert.deepEqual(kernel, shown, "/proc/net/ip_mr_cache = installed routes of show -j");
}

/** Every flow's receiver gets all n datagrams. */
async function forwards(lab: Lab, flows: { group: string; port: number; to: "recv1" | "recv2" }[], n = 5): Promise<void> {
  const rxs = await Promise.all(flows.map(async (f) => ({ f, rx: await lab.listen(f.to, f.group, f.port) })));
  try {
    await Promise.all(flows.map((f) => lab.send(f.group, f.port, n, { ttl: 8 })));
    for (const { f, rx } of rxs) assert.ok(await rx.waitFor(n, 3_000), `${f.to} got ${rx.count()} of ${n} datagrams for ${f.group}`);
  } finally {
    await Promise.all(rxs.map(({ rx }) => rx.stop()));
  }
}

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
  const dir = mkdtempSync(join(tmpdir(), "mfct-refvif-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
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
  assert.match(onRefused.stderr, /warning: .*IF_NO_VIF.*rfz0.*kernel refused VIF: EADDRNOTAVAIL/);
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
