// End to end, IPv6 (SPEC §7): real IPv6 UDP multicast through the kernel's MRT6 table, programmed by
// the built `mfc` talking to the built `mfc_daemon`. The same lab as forwarding.test.ts, with the
// IPv6 addresses every lab has (fd00:X:N::H):
//
//   sender eth0 --- up0 [router + mfc_daemon] dn1 --- eth0 recv1
//                                             dn2 --- eth0 recv2
//
// Witnesses: /proc/net/ip6_mr_vif, /proc/net/ip6_mr_cache and `ip -6 mroute show` in the router.
import type { ChildProcess } from "node:child_process";
import { after, before, describe, it, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createLab, type LabRole, type Receiver } from "../lab/lab.js";
import { startDaemon, type DaemonHandle } from "../lab/daemon.js";
import { until } from "../lab/wait.js";
import { canonicalIpv6 } from "../../src/model/ipv6.js";

interface VifJson { family: number; vifi: number | null; ifname: string; pkts_in: number; pkts_out: number }
interface RouteJson { source: string | null; group: string; iif: string; oifs: { ifname: string; ttl: number }[]; packets: number; bytes: number; state: string; reason?: string }
interface ShowJson { vifs: VifJson[]; routes: RouteJson[]; joins?: { ifname: string; group: string; source: string | null; state: string }[] }

/** Long enough for a datagram that was going to arrive to have arrived (veth is synchronous). */
const QUIET_MS = 300;
/** IPv6 header (40) + UDP header (8): what the kernel's byte counters add to each payload. */
const HDR6 = 48;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const lab = await createLab();
after(() => lab.destroy());
let d: DaemonHandle = await startDaemon(lab);
after(() => d.cleanup());

const mfc = (args: string[]): Promise<string> => d.mfcOk(args);
const show = async (args: string[] = []): Promise<ShowJson> => JSON.parse(await mfc([...args, "show", "-j"])) as ShowJson;
const S = lab.addr6.sender;

async function listen(t: TestContext, which: LabRole, group: string, port: number): Promise<Receiver> {
  const rx = await lab.listen(which, group, port);
  t.after(() => rx.stop());
  return rx;
}

async function proc(file: string): Promise<string[]> {
  const r = await lab.exec(lab.ns.router, ["cat", `/proc/net/${file}`]);
  return r.stdout.trim().split("\n").slice(1).map((l) => l.trim()).filter(Boolean);
}

/** MIF number -> device, from /proc/net/ip6_mr_vif. */
async function mifs(): Promise<Map<number, string>> {
  return new Map((await proc("ip6_mr_vif")).map((row) => { const [i = "", name = ""] = row.split(/\s+/); return [Number(i), name] as const; }));
}

/** Resolved entries of /proc/net/ip6_mr_cache as "group origin iif oif,oif" (device names). */
async function cache6(): Promise<string[]> {
  const names = await mifs();
  return (await proc("ip6_mr_cache")).map((row) => {
    const [group = "", origin = "", iif = "", , , , ...oifs] = row.split(/\s+/);
    // /proc prints every address in full (ff3e:0000:...): compared in canonical text.
    return { group: canonicalIpv6(group) ?? group, origin: canonicalIpv6(origin) ?? origin, iif: Number(iif), oifs: oifs.map((o) => Number(o.split(":")[0])) };
  }).filter((m) => names.has(m.iif)).map((m) => {
    const iif = names.get(m.iif) as string;
    const oifs = m.oifs.map((v) => names.get(v) ?? `?${v}`).filter((n) => !(m.origin === "::" && n === iif)).sort();
    return `${m.group} ${m.origin} ${iif} ${oifs.join(",")}`;
  }).sort();
}

/** `ip -6 mroute show` rows: "(S, G) Iif: X Oifs: A B State: resolved" plus counters with -s. */
async function ip6mroute(): Promise<string> {
  return (await lab.exec(lab.ns.router, ["ip", "-6", "-s", "mroute", "show"])).stdout;
}

async function expectArrive(rx: Receiver, n: number, what: string): Promise<void> {
  assert.ok(await rx.waitFor(n), `${what}: expected ${n} datagrams, got ${rx.count()}`);
}

/** Another process (as pim6sd would) owning the default IPv6 table of the router until killed. */
async function holdIpv6Table(t: TestContext): Promise<ChildProcess> {
  const holderJs = new URL("../../dist/kernel/mroute6.js", import.meta.url).pathname;
  const holder = lab.spawn(lab.ns.router, [process.execPath, "--input-type=module", "-e",
    `const { Mroute6Table } = await import(${JSON.stringify(holderJs)}); new Mroute6Table(); process.stdout.write("HELD\\n"); setInterval(() => {}, 1e6);`]);
  t.after(() => { holder.kill("SIGKILL"); });
  await new Promise<void>((res, rej) => {
    holder.stdout?.on("data", (b: Buffer) => { if (b.toString().includes("HELD")) res(); });
    holder.once("exit", (code) => rej(new Error(`holder exited ${String(code)}`)));
  });
  return holder;
}

// First, while this daemon has not taken the IPv6 table yet.
void describe("IPv4 and IPv6 in one transaction", () => {
  void it("all or nothing across both families: the IPv6 table owned by another process fails the batch, IPv4 part included", async (t) => {
    // The first IPv6 change of this daemon takes the IPv6 table: another process takes it first.
    const holder = await holdIpv6Table(t);
    const batch = [
      `add source ${lab.addr.sender} group 239.7.7.7 iif up0 oif dn1`,
      `add source ${S} group ff3e::7:7 iif up0 oif dn1`,
    ].join("\n") + "\n";
    const r = await d.mfc(["batch", "-"], { input: batch });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /E_KERNEL: .*MRT6_INIT.*EADDRINUSE/);
    const shown = JSON.parse(await d.mfcOk(["show", "-j"])) as ShowJson;
    assert.deepEqual(shown.routes, [], "nothing was committed");
    // The plan adds the IPv4 VIFs before the first MIF (steps in VIF key order: dn1, dn1/6, ...):
    // dn1's VIF was in the kernel when MRT6_INIT failed, and the rollback took it out again.
    assert.deepEqual(await proc("ip_mr_vif"), [], "the IPv4 VIF added before the failure was rolled back");
    assert.deepEqual(await proc("ip_mr_cache"), [], "no IPv4 entry");
    // Once the other process lets go, the same batch goes through, both families at once.
    holder.kill("SIGKILL");
    await new Promise((res) => holder.once("exit", res));
    await d.mfcOk(["batch", "-"], { input: batch });
    const both = JSON.parse(await d.mfcOk(["show", "-j"])) as ShowJson;
    assert.deepEqual(both.routes.map((x) => `${x.group} ${x.state}`).sort(), ["239.7.7.7 installed", "ff3e::7:7 installed"]);
    assert.ok((await cache6()).includes(`ff3e::7:7 ${S} up0 dn1`));
    await mfc(["flush"]);
  });

});

void describe("IPv6 forwarding through MRT6", () => {
  before(async () => { await mfc(["flush"]); });

  void it("(S,G): fans out to both receivers; MIFs, ip6_mr_cache, ip -6 mroute and counters agree with show", async (t) => {
    const g = "ff3e::1:1";
    const r1 = await listen(t, "recv1", g, 41001);
    const r2 = await listen(t, "recv2", g, 41001);
    await mfc(["add", "source", S, "group", g, "iif", "up0", "oif", "dn1", "dn2"]);
    await lab.send(g, 41001, 4, { payload: "v6sg" });
    await expectArrive(r1, 4, "recv1");
    await expectArrive(r2, 4, "recv2");
    const view = await show();
    const r = view.routes.find((x) => x.group === g);
    assert.ok(r && r.state === "installed", JSON.stringify(view.routes));
    assert.equal(r.packets, 4);
    assert.equal(r.bytes, 4 * ("v6sg".length + HDR6));
    // MIFs: numbered in their own table, named in show like VIFs, with family 6.
    const shownMifs = new Map(view.vifs.filter((v) => v.family === 6 && v.vifi !== null).map((v) => [v.vifi as number, v.ifname] as const));
    assert.deepEqual([...(await mifs())].sort(), [...shownMifs].sort(), "/proc/net/ip6_mr_vif = show -j MIFs");
    assert.equal(view.vifs.filter((v) => v.family === 4).length, 0, "no IPv4 VIF for an IPv6 route");
    assert.deepEqual(await cache6(), [`${g} ${S} up0 dn1,dn2`]);
    const ip = await ip6mroute();
    assert.match(ip, new RegExp(`\\(${S.replaceAll(":", ":")},\\s*${g}\\)\\s+Iif: up0\\s+Oifs: dn1 dn2`), ip);
    assert.match(ip, /4 packets, \d+ bytes/, ip);
    // The MIF counters count the same packets in and out.
    const up = view.vifs.find((v) => v.family === 6 && v.ifname === "up0");
    assert.equal(up?.pkts_in, 4);
    assert.equal(view.vifs.find((v) => v.family === 6 && v.ifname === "dn1")?.pkts_out, 4);
  });

  void it("an (S,G) route does not match another source; (*,G) takes any source", async (t) => {
    const g = "ff3e::2:2";
    const rx = await listen(t, "recv1", g, 41002);
    await mfc(["add", "source", "fd00:ffff::9", "group", g, "iif", "up0", "oif", "dn1"]);
    await lab.send(g, 41002, 3);
    await sleep(QUIET_MS);
    assert.equal(rx.count(), 0, "traffic of another source must not match an (S,G) route");
    await mfc(["del", "source", "fd00:ffff::9", "group", g]);
    await mfc(["add", "group", g, "iif", "up0", "oif", "dn1"]);
    await lab.send(g, 41002, 3);
    await expectArrive(rx, 3, "(*,G)");
    assert.ok((await cache6()).includes(`${g} :: up0 dn1`), (await cache6()).join("\n"));
  });

  void it("hop limit: packets arriving with hop limit 1 are not forwarded, hop limit 2 are", async (t) => {
    const g = "ff3e::3:3";
    const rx = await listen(t, "recv2", g, 41003);
    await mfc(["add", "source", S, "group", g, "iif", "up0", "oif", "dn2"]);
    await lab.send(g, 41003, 3, { ttl: 1 });
    await sleep(QUIET_MS);
    assert.equal(rx.count(), 0, "hop limit 1 must not be forwarded");
    const r = (await show()).routes.find((x) => x.group === g);
    assert.equal(r?.packets, 3, "the kernel counted them on the entry all the same");
    await lab.send(g, 41003, 2, { ttl: 2 });
    await expectArrive(rx, 2, "hop limit 2");
    // An IPv6 oif has no TTL threshold of its own: asking for one is refused, not ignored.
    const refused = await d.mfc(["add", "source", S, "group", "ff3e::3:4", "iif", "up0", "oif", "dn2", "ttl", "5"]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /E_INVALID_ARGUMENT: .*ttl 5 cannot apply to IPv6/);
  });

  void it("IPv4 and IPv6 routes side by side: -4 / -6 show one family, plain show both", async () => {
    await mfc(["add", "source", lab.addr.sender, "group", "239.6.6.6", "iif", "up0", "oif", "dn1"]);
    const both = await show();
    assert.ok(both.routes.some((r) => r.group === "239.6.6.6") && both.routes.some((r) => r.group.includes(":")));
    const v6 = await show(["-6"]);
    assert.ok(v6.routes.length > 0 && v6.routes.every((r) => r.group.includes(":")), JSON.stringify(v6.routes));
    assert.ok(v6.vifs.every((v) => v.family === 6));
    const v4 = await show(["-4"]);
    assert.deepEqual(v4.routes.map((r) => r.group), ["239.6.6.6"]);
    assert.ok(v4.vifs.length > 0 && v4.vifs.every((v) => v.family === 4));
    const text = await mfc(["show"]);
    assert.match(text, /^vif\s+ifname/m);
    assert.match(text, /^mif\s+ifname/m);
    const wrong = await d.mfc(["-4", "add", "group", "ff3e::9", "iif", "up0", "oif", "dn1"]);
    assert.equal(wrong.code, 2, "a route of the other family under -4 is a usage error");
    await mfc(["-4", "flush"]);
    const after4 = await show();
    assert.ok(!after4.routes.some((r) => r.group === "239.6.6.6"), "-4 flush removed the IPv4 route");
    assert.ok(after4.routes.some((r) => r.group.includes(":")), "-4 flush kept the IPv6 routes");
  });

  void it("a join of an IPv6 group is an MLD membership of the router on that device", async () => {
    await mfc(["join", "dev", "dn1", "group", "ff3e::77"]);
    const igmp6 = (await lab.exec(lab.ns.router, ["cat", "/proc/net/igmp6"])).stdout;
    assert.match(igmp6, /\d+\s+dn1\s+ff3e0000000000000000000000000077\s/, igmp6);
    const view = await show();
    assert.deepEqual(view.joins?.filter((j) => j.group === "ff3e::77").map((j) => j.state), ["installed"]);
    await mfc(["leave", "dev", "dn1", "group", "ff3e::77"]);
    const gone = (await lab.exec(lab.ns.router, ["cat", "/proc/net/igmp6"])).stdout;
    assert.doesNotMatch(gone, /dn1\s+ff3e0000000000000000000000000077/);
  });

  void it("restart restores the IPv6 routes; SIGKILL releases the MRT6 table and the next start restores it", async (t) => {
    const g = "ff3e::4:4";
    await mfc(["add", "source", S, "group", g, "iif", "up0", "oif", "dn1"]);
    const before = await cache6();
    assert.ok(before.includes(`${g} ${S} up0 dn1`));
    const dir = d.dir;
    assert.equal(await d.stop("SIGTERM"), 0);
    assert.deepEqual(await cache6(), [], "MRT6_DONE on stop: the kernel table is empty");
    d = await startDaemon(lab, { dir });
    assert.deepEqual(await cache6(), before, "restored as before");
    const rx = await listen(t, "recv1", g, 41004);
    await lab.send(g, 41004, 2);
    await expectArrive(rx, 2, "after restart");
    assert.equal(await d.stop("SIGKILL"), null);
    assert.deepEqual(await proc("ip6_mr_vif"), [], "closing the socket (SIGKILL) dropped every MIF");
    d = await startDaemon(lab, { dir });
    assert.deepEqual(await cache6(), before, "restored after SIGKILL");
  });

  void it("a restart while another process owns the IPv6 table starts, IPv4 installed, MIFs waiting; the retry takes the table", async (t) => {
    const g = "ff3e::4:5";
    await mfc(["add", "source", S, "group", g, "iif", "up0", "oif", "dn1"]);
    await mfc(["add", "source", lab.addr.sender, "group", "239.4.4.5", "iif", "up0", "oif", "dn2"]);
    const dir = d.dir;
    assert.equal(await d.stop("SIGTERM"), 0);
    const holder = await holdIpv6Table(t);
    d = await startDaemon(lab, { dir });
    const status = (JSON.parse(await d.mfcOk(["-j", "status"])) as { result: { interfaces_waiting: Record<string, string>; ipv6_table: string } }).result;
    const busy = /^kernel refused MIF: EADDRINUSE \(IPv6 multicast routing table default is already owned by another process/;
    for (const dev of ["up0", "dn1"]) assert.match(status.interfaces_waiting[`${dev} (IPv6)`] ?? "", busy, `${dev}: ${JSON.stringify(status)}`);
    assert.equal(status.ipv6_table, "not in use");
    assert.match(d.logs(), /interface up0 \(IPv6\): kernel refused MIF: EADDRINUSE/);
    assert.ok((await proc("ip_mr_cache")).some((row) => row.includes("EF040405") || row.includes("050404EF")), "the IPv4 route is installed");
    const view = await show();
    assert.equal(view.routes?.find((r) => r.group === g)?.state, "pending");
    // The other process lets go: the retry (5 s, then backing off) takes the table and installs.
    holder.kill("SIGKILL");
    await until("the IPv6 route installed by the retry", async () => (await cache6()).some((row) => row.startsWith(`${g} `)), 20_000);
    assert.equal((JSON.parse(await d.mfcOk(["-j", "status"])) as { result: { ipv6_table: string } }).result.ipv6_table, "owned");
  });
});

void describe("MIF limit", () => {
  void it("MIFs are counted apart from VIFs: 32 of each; the 33rd MIF is refused and nothing changes", async (t) => {
    const d9 = await startDaemon(lab, { extraConfig: "table = 9" });
    t.after(() => d9.cleanup());
    const names = Array.from({ length: 33 }, (_, i) => `m6x${i}`);
    for (const n of names) await lab.addDummy(n);
    t.after(async () => { for (const n of names) await lab.delLink(n); });
    // 31 MIFs and 31 VIFs over the same devices (iif + 30 oifs each), side by side.
    const oifs = names.slice(1, 31);
    await d9.mfcOk(["add", "group", "ff3e::9:1", "iif", names[0] as string, "oif", ...oifs]);
    await d9.mfcOk(["add", "group", "239.9.9.1", "iif", names[0] as string, "oif", ...oifs]);
    await d9.mfcOk(["add", "group", "ff3e::9:2", "iif", names[0] as string, "oif", names[31] as string]);
    const before = JSON.parse(await d9.mfcOk(["show", "-j"])) as ShowJson;
    assert.equal(before.vifs.filter((v) => v.family === 6 && v.vifi !== null).length, 32);
    assert.equal(before.vifs.filter((v) => v.family === 4 && v.vifi !== null).length, 31);
    const r = await d9.mfc(["add", "group", "ff3e::9:3", "iif", names[0] as string, "oif", names[32] as string]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /E_VIF_LIMIT: .*the change needs more than 32 MIFs/);
    // The IPv4 table still has room for the same device.
    await d9.mfcOk(["add", "group", "239.9.9.3", "iif", names[0] as string, "oif", names[32] as string]);
    const after = JSON.parse(await d9.mfcOk(["show", "-j"])) as ShowJson;
    assert.deepEqual(after.vifs.filter((v) => v.family === 6), before.vifs.filter((v) => v.family === 6));
    const mifRows = (await lab.exec(lab.ns.router, ["ip", "-6", "mroute", "show", "table", "9"])).stdout;
    assert.doesNotMatch(mifRows, /ff3e::9:3/);
  });
});

void describe("IPv6 group ranges (templates)", () => {
  void it("a template ff3e::5:0/112 installs each flow the kernel reports (MRT6MSG_NOCACHE), first packets included", async (t) => {
    await mfc(["add", "source", S, "group", "ff3e::5:0/112", "iif", "up0", "oif", "dn1"]);
    assert.ok(!(await cache6()).some((row) => row.startsWith("ff3e::5:")), "a template has no kernel entry of its own");
    const rx = await listen(t, "recv1", "ff3e::5:9", 41005);
    const outside = await listen(t, "recv1", "ff3e::6:9", 41006);
    await lab.send("ff3e::5:9", 41005, 3, { intervalMs: 20 });
    await expectArrive(rx, 3, "a flow of the template");
    await lab.send("ff3e::6:9", 41006, 2);
    await sleep(QUIET_MS);
    assert.equal(outside.count(), 0, "a group outside the range is not taken");
    assert.ok((await cache6()).includes(`ff3e::5:9 ${S} up0 dn1`), (await cache6()).join("\n"));
    const shown = (await show(["-6"])).routes.find((r) => r.group === "ff3e::5:0/112") as RouteJson & { flows?: { source: string; group: string; packets: number }[] };
    assert.deepEqual(shown.flows?.map((f) => `${f.source},${f.group}:${f.packets}`), [`${S},ff3e::5:9:3`]);
    await mfc(["del", "source", S, "group", "ff3e::5:0/112"]);
    assert.ok(!(await cache6()).some((row) => row.startsWith("ff3e::5:9")), "deleting the template removed its flow");
  });
});
