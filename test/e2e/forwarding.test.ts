// End to end: real UDP multicast through the real kernel, programmed by the built `mfc` CLI talking to
// the built `mfc_daemon`. Needs root (network namespaces) and a build. Run:
//   npm run build && node --import tsx --test test/e2e/forwarding.test.ts
//
//   sender eth0 --- up0 [router + mfc_daemon] dn1 --- eth0 recv1
//                                             dn2 --- eth0 recv2
//
// Every test starts from an empty table (flush in beforeEach), so VIFs are created afresh and their
// kernel counters start at zero. Each test uses its own group and port.
import { after, before, beforeEach, describe, it, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createLab, type LabRole, type Receiver } from "../lab/lab.js";
import { kernelTables, startDaemon } from "../lab/daemon.js";

interface VifJson {
  vifi: number | null; ifname: string; ifindex: number | null; threshold: number;
  pkts_in: number; bytes_in: number; pkts_out: number; bytes_out: number;
}
interface RouteJson {
  source: string | null; group: string; iif: string; oifs: { ifname: string; ttl: number }[];
  packets: number; bytes: number; wrong_if: number; state: string; reason?: string;
}
interface ShowJson { vifs: VifJson[]; routes: RouteJson[] }
/** One entry of `ip -j mroute show` (iproute2 6.1); "ttl" is omitted when it is 1. */
interface IpMroute { src: string; dst: string; iif: string; multipath?: { oif: string; ttl?: number }[]; state: string }

/** Long enough for a datagram that was going to arrive to have arrived (veth is synchronous). */
const QUIET_MS = 300;
/** IPv4 header (20) + UDP header (8): what the kernel's byte counters add to each payload. */
const HDR = 28;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const lab = await createLab();
after(() => lab.destroy());
const d = await startDaemon(lab);
after(() => d.cleanup());

/** A second source address on the sender's link: traffic an (S,G) route must not match. */
const OTHER_SOURCE = `10.${lab.x}.1.3`;

const mfc = (args: string[]): Promise<string> => d.mfcOk(args);

async function show(): Promise<ShowJson> {
  return JSON.parse(await mfc(["show", "-j"])) as ShowJson;
}

async function ipMroute(): Promise<IpMroute[]> {
  const r = await lab.exec(lab.ns.router, ["ip", "-j", "mroute", "show"]);
  return (r.stdout.trim() === "" ? [] : JSON.parse(r.stdout)) as IpMroute[];
}

/** A receiver that is stopped when the test ends (the lab would kill it anyway, later). */
async function listen(t: TestContext, which: LabRole, group: string, port: number): Promise<Receiver> {
  const rx = await lab.listen(which, group, port);
  t.after(() => rx.stop());
  return rx;
}

async function expectArrive(rx: Receiver, n: number, what: string): Promise<void> {
  assert.ok(await rx.waitFor(n), `${what}: expected ${n} datagrams, got ${rx.count()}`);
}

function route(view: ShowJson, group: string): RouteJson {
  const r = view.routes.find((x) => x.group === group);
  assert.ok(r, `no route for ${group} in ${JSON.stringify(view.routes)}`);
  return r;
}

function vif(view: ShowJson, ifname: string): VifJson {
  const v = view.vifs.find((x) => x.ifname === ifname);
  assert.ok(v, `no VIF for ${ifname} in ${JSON.stringify(view.vifs)}`);
  return v;
}

/**
 * /proc/net/ip_mr_cache rows minus the kernel's own unresolved entries (iif -1): traffic without a
 * route queues there for up to 10 s (e.g. the other-source datagrams of the first test).
 */
function resolvedRows(cache: string[]): string[] {
  return cache.filter((row) => row.split(/\s+/)[2] !== "-1");
}

before(async () => {
  await lab.exec(lab.ns.sender, ["ip", "addr", "add", `${OTHER_SOURCE}/24`, "dev", "eth0"]);
});

beforeEach(async () => {
  await mfc(["flush"]);
});

void describe("forwarding real multicast", () => {
  void it("an (S,G) route forwards to its oif only, and only traffic from S", async (t) => {
    const G = "239.10.0.1";
    const PORT = 41001;
    await mfc(["add", "from", lab.addr.sender, "to", G, "iif", "up0", "oif", "dn1"]);
    const [r1, r2] = await Promise.all([listen(t, "recv1", G, PORT), listen(t, "recv2", G, PORT)]);
    // Another source first: the (S,G) entry must not match it. Same path, so if it were forwarded
    // it would reach recv1 before the datagrams from S do.
    await lab.send(G, PORT, 3, { localAddr: OTHER_SOURCE, payload: "other-source" });
    await lab.send(G, PORT, 5, { payload: "from-S" });
    await expectArrive(r1, 5, "recv1 behind oif dn1");
    await sleep(QUIET_MS);
    assert.deepEqual(r1.payloads(), Array<string>(5).fill("from-S"));
    assert.equal(r2.count(), 0, "recv2 is behind dn2, which is not an oif");
  });

  void it("two oifs fan out to both receivers", async (t) => {
    const G = "239.10.0.2";
    const PORT = 41002;
    await mfc(["add", "from", lab.addr.sender, "to", G, "iif", "up0", "oif", "dn1", "dn2"]);
    const [r1, r2] = await Promise.all([listen(t, "recv1", G, PORT), listen(t, "recv2", G, PORT)]);
    await lab.send(G, PORT, 4);
    await expectArrive(r1, 4, "recv1");
    await expectArrive(r2, 4, "recv2");
    await sleep(QUIET_MS);
    assert.equal(r1.count(), 4, "no duplicates on recv1");
    assert.equal(r2.count(), 4, "no duplicates on recv2");
  });

  void it("an any-source (*,G) route forwards from every source and counts them all", async (t) => {
    const G = "239.10.0.3";
    const PORT = 41003;
    await mfc(["add", "to", G, "iif", "up0", "oif", "dn1"]);
    const view = await show();
    assert.equal(route(view, G).source, null);
    const [r1, r2] = await Promise.all([listen(t, "recv1", G, PORT), listen(t, "recv2", G, PORT)]);
    await lab.send(G, PORT, 3, { payload: "src-a" });
    await lab.send(G, PORT, 2, { localAddr: OTHER_SOURCE, payload: "src-b" });
    await expectArrive(r1, 5, "recv1 (both sources)");
    await sleep(QUIET_MS);
    assert.equal(r1.count(), 5);
    assert.deepEqual(r1.payloads().sort(), ["src-a", "src-a", "src-a", "src-b", "src-b"]);
    assert.equal(r2.count(), 0);
    const after = route(await show(), G);
    assert.equal(after.packets, 5, "the (*,G) entry counts packets from every source");
    assert.equal(after.bytes, 3 * (HDR + 5) + 2 * (HDR + 5));
  });

  void it("del stops forwarding and frees the VIFs", async (t) => {
    const G = "239.10.0.4";
    const PORT = 41004;
    await mfc(["add", "from", lab.addr.sender, "to", G, "iif", "up0", "oif", "dn1"]);
    const r1 = await listen(t, "recv1", G, PORT);
    await lab.send(G, PORT, 2, { payload: "before-del" });
    await expectArrive(r1, 2, "before del");
    assert.equal((await kernelTables(lab)).vif.length, 2, "up0 and dn1 are VIFs while the route exists");

    await mfc(["del", "from", lab.addr.sender, "to", G]);
    const view = await show();
    assert.deepEqual(view.routes, []);
    assert.deepEqual(view.vifs, [], "VIFs held only by the deleted route are removed");
    const k = await kernelTables(lab);
    assert.deepEqual(k.vif, [], "/proc/net/ip_mr_vif is empty");
    assert.deepEqual(resolvedRows(k.cache), [], "/proc/net/ip_mr_cache has no resolved entry");

    await lab.send(G, PORT, 3, { payload: "after-del" });
    await sleep(QUIET_MS);
    assert.deepEqual(r1.payloads(), ["before-del", "before-del"], "nothing is forwarded after del");
  });

  void it("counters in show -j grow with the packets sent", async (t) => {
    const G = "239.10.0.5";
    const PORT = 41005;
    const payload = "counter-test"; // 12 bytes
    await mfc(["add", "from", lab.addr.sender, "to", G, "iif", "up0", "oif", "dn1"]);
    const r1 = await listen(t, "recv1", G, PORT);
    const zero = await show();
    assert.equal(route(zero, G).packets, 0);
    assert.equal(route(zero, G).bytes, 0);
    assert.equal(vif(zero, "up0").pkts_in, 0);
    assert.equal(vif(zero, "dn1").pkts_out, 0);

    for (const [n, total] of [[7, 7], [4, 11]] as const) {
      await lab.send(G, PORT, n, { payload });
      await expectArrive(r1, total, "recv1");
      const view = await show();
      const r = route(view, G);
      assert.equal(r.packets, total, "route packets");
      assert.equal(r.bytes, total * (HDR + payload.length), "route bytes");
      assert.equal(r.wrong_if, 0);
      assert.equal(r.state, "installed");
      const up = vif(view, "up0");
      const dn = vif(view, "dn1");
      assert.equal(up.pkts_in, total, "up0 pkts_in");
      assert.equal(up.bytes_in, total * (HDR + payload.length), "up0 bytes_in");
      assert.equal(up.pkts_out, 0, "up0 pkts_out");
      assert.equal(dn.pkts_out, total, "dn1 pkts_out");
      assert.equal(dn.bytes_out, total * (HDR + payload.length), "dn1 bytes_out");
      assert.equal(dn.pkts_in, 0, "dn1 pkts_in");
    }
  });

  void it("ip mroute show (iproute2) agrees with mfc show -j", async () => {
    const SG = "239.10.0.6";
    const STAR = "239.10.0.7";
    await mfc(["add", "from", lab.addr.sender, "to", SG, "iif", "up0", "oif", "dn1", "ttl", "5", "dn2"]);
    await mfc(["add", "to", STAR, "iif", "up0", "oif", "dn2"]);
    const mine = (await show()).routes;
    const kernel = (await ipMroute()).filter((e) => e.dst === SG || e.dst === STAR);
    assert.equal(kernel.length, 2, JSON.stringify(kernel));
    for (const r of mine) {
      const k = kernel.find((e) => e.dst === r.group);
      assert.ok(k, `ip mroute has no entry for ${r.group}`);
      assert.equal(k.src, r.source ?? "0.0.0.0", "source");
      assert.equal(k.iif, r.iif, "iif");
      assert.equal(k.state, "resolved");
      // A kernel-native (*,G) entry needs ttls[iif] set to match at all (STACK.md), so iproute2
      // lists the iif among the oifs; the kernel never forwards a (*,G) packet back out of its iif.
      const koifs = (k.multipath ?? [])
        .filter((o) => !(r.source === null && o.oif === r.iif))
        .map((o) => ({ ifname: o.oif, ttl: o.ttl ?? 1 }));
      const sortByName = (a: { ifname: string }, b: { ifname: string }): number => a.ifname.localeCompare(b.ifname);
      assert.deepEqual(koifs.sort(sortByName), [...r.oifs].sort(sortByName), `oifs of ${r.group}`);
    }
    // And the text form an operator reads.
    const text = (await lab.exec(lab.ns.router, ["ip", "mroute", "show"])).stdout;
    assert.match(text, new RegExp(`^\\(${lab.addr.sender.replaceAll(".", "\\.")},${SG.replaceAll(".", "\\.")}\\)\\s+Iif: up0\\s+Oifs: dn1\\(ttl 5\\) dn2\\s+State: resolved`, "m"));
    // As docs/operations.md says: the (*,G) entry lists its iif among the Oifs (ttls[parent] = 1).
    assert.match(text, new RegExp(`^\\(0\\.0\\.0\\.0,${STAR.replaceAll(".", "\\.")}\\)\\s+Iif: up0\\s+Oifs: (up0 dn2|dn2 up0)\\s+State: resolved`, "m"), text);
  });

  void it("replace moves the traffic to the new oifs", async (t) => {
    const G = "239.10.0.8";
    const PORT = 41008;
    await mfc(["add", "from", lab.addr.sender, "to", G, "iif", "up0", "oif", "dn1"]);
    const [r1, r2] = await Promise.all([listen(t, "recv1", G, PORT), listen(t, "recv2", G, PORT)]);
    await lab.send(G, PORT, 3, { payload: "one" });
    await expectArrive(r1, 3, "recv1 before replace");

    await mfc(["replace", "from", lab.addr.sender, "to", G, "iif", "up0", "oif", "dn2"]);
    const view = await show();
    assert.deepEqual(route(view, G).oifs, [{ ifname: "dn2", ttl: 1 }]);
    assert.deepEqual(view.vifs.map((v) => v.ifname).sort(), ["dn2", "up0"], "dn1's VIF is released");
    await lab.send(G, PORT, 3, { payload: "two" });
    await expectArrive(r2, 3, "recv2 after replace");
    await sleep(QUIET_MS);
    assert.deepEqual(r1.payloads(), ["one", "one", "one"], "recv1 gets nothing after replace");
    assert.deepEqual(r2.payloads(), ["two", "two", "two"], "recv2 got nothing before replace");
  });

  void it("a packet with TTL 1 is never forwarded", async (t) => {
    const G = "239.10.0.9";
    const PORT = 41009;
    await mfc(["add", "from", lab.addr.sender, "to", G, "iif", "up0", "oif", "dn1"]);
    const r1 = await listen(t, "recv1", G, PORT);
    await lab.send(G, PORT, 3, { ttl: 1, payload: "ttl1" });
    await lab.send(G, PORT, 2, { ttl: 2, payload: "ttl2" });
    await expectArrive(r1, 2, "TTL 2 datagrams");
    await sleep(QUIET_MS);
    assert.deepEqual(r1.payloads(), ["ttl2", "ttl2"]);
  });

  void it("an oif with ttl 5 forwards only packets with TTL > 5", async (t) => {
    const G = "239.10.0.10";
    const PORT = 41010;
    await mfc(["add", "from", lab.addr.sender, "to", G, "iif", "up0", "oif", "dn1", "ttl", "5", "dn2"]);
    assert.deepEqual(route(await show(), G).oifs, [{ ifname: "dn1", ttl: 5 }, { ifname: "dn2", ttl: 1 }]);
    const [r1, r2] = await Promise.all([listen(t, "recv1", G, PORT), listen(t, "recv2", G, PORT)]);
    for (const ttl of [4, 5, 6, 8]) await lab.send(G, PORT, 2, { ttl, payload: `ttl${ttl}` });
    await expectArrive(r1, 4, "recv1 (TTL 6 and 8)");
    await expectArrive(r2, 8, "recv2 (every TTL > 1)");
    await sleep(QUIET_MS);
    assert.deepEqual(r1.payloads(), ["ttl6", "ttl6", "ttl8", "ttl8"], "dn1 (ttl 5) drops TTL 4 and 5");
    assert.equal(r2.count(), 8, "dn2 (ttl 1) forwards all of them");
  });
});
