/**
 * `mfc check` on the real daemon and kernel for the silent failures of IPv6 (and of a TTL 1 IPv4
 * sender): each test makes the failure real (no datagram arrives), checks that `mfc check` names
 * the cause, applies the fix it prints and sees the datagrams arrive.
 *
 *   sender eth0 --- up0 [router + mfc_daemon] dn1 --- eth0 recv1
 *                                             dn2 --- eth0 recv2
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { createLab } from "../lab/lab.js";
import { startDaemon } from "../lab/daemon.js";

interface Finding { severity: string; code: string; route?: string; ifname?: string; message: string; fix?: string }

const lab = await createLab();
after(() => lab.destroy());
const d = await startDaemon(lab);
after(() => d.cleanup());

const S6 = lab.addr6.sender;
/** Long enough for a datagram that was going to arrive to have arrived (veth is synchronous). */
const QUIET_MS = 700;

async function findings(args: string[] = []): Promise<Finding[]> {
  return (JSON.parse(await d.mfcOk(["-j", "check", ...args])) as { result: { findings: Finding[] } }).result.findings;
}

async function routerSysctl(...kv: string[]): Promise<void> {
  await lab.exec(lab.ns.router, ["sysctl", "-qw", ...kv]);
}

void test("a sender's hop limit 1: TTL_TOO_LOW names it; raising the hop limit makes packets flow", async () => {
  const group = "ff3e::77:1";
  await d.mfcOk(["add", "from", S6, "to", group, "iif", "up0", "oif", "dn1"]);
  const rx = await lab.listen("recv1", group, 5311);
  try {
    // IPV6_MULTICAST_HOPS 1, every sender's default.
    await lab.send(group, 5311, 3, { ttl: 1 });
    assert.equal(await rx.waitFor(1, QUIET_MS), false, "hop limit 1 must not be forwarded (else this test proves nothing)");
    const low = (await findings(["from", S6, "to", group])).filter((f) => f.code === "TTL_TOO_LOW");
    assert.equal(low.length, 1, JSON.stringify(low));
    assert.equal(low[0]?.severity, "warning");
    assert.match(low[0]?.message ?? "", /counted 3 packets for this route on up0 but sent none on dn1: they arrive with hop limit 1/);
    assert.match(low[0]?.fix ?? "", /raise the sender's IPV6_MULTICAST_HOPS .*ip6tables -t mangle -A PREROUTING -i up0 -s \S+ -d ff3e::77:1 -j HL --hl-set 8$/);
    const text = await d.mfcOk(["check", "from", S6, "to", group]);
    assert.match(text, /warning: TTL_TOO_LOW/);

    // The sender's fix: a hop limit above 1.
    await lab.send(group, 5311, 3, { ttl: 8 });
    assert.ok(await rx.waitFor(3, 3000), `with hop limit 8 packets must arrive (got ${rx.count()})`);
    assert.deepEqual((await findings(["from", S6, "to", group])).map((f) => f.code), [], "dn1 has sent packets: nothing to say");
  } finally {
    await rx.stop();
  }
});

void test("IPv4 too: a TTL 1 sender gets TTL_TOO_LOW with IP_MULTICAST_TTL", async () => {
  const group = "239.77.7.1";
  await d.mfcOk(["add", "from", lab.addr.sender, "to", group, "iif", "up0", "oif", "dn2"]);
  const rx = await lab.listen("recv2", group, 5312);
  try {
    await lab.send(group, 5312, 2, { ttl: 1 });
    assert.equal(await rx.waitFor(1, QUIET_MS), false, "TTL 1 must not be forwarded");
    const [low] = (await findings(["from", lab.addr.sender, "to", group])).filter((f) => f.code === "TTL_TOO_LOW");
    assert.match(low?.message ?? "", /counted 2 packets .* on up0 but sent none on dn2: they arrive with TTL 1/);
    assert.match(low?.fix ?? "", /IP_MULTICAST_TTL .*iptables -t mangle -A PREROUTING -i up0 -s \S+ -d 239\.77\.7\.1 -j TTL --ttl-set 8$/);
    await lab.send(group, 5312, 2, { ttl: 8 });
    assert.ok(await rx.waitFor(2, 3000), `with TTL 8 packets must arrive (got ${rx.count()})`);
  } finally {
    await rx.stop();
  }
});

void test("IPv6 forwarding off is no finding: ip6mr forwards multicast with net.ipv6.conf.all.forwarding=0", async () => {
  const group = "ff3e::77:2";
  await d.mfcOk(["add", "from", S6, "to", group, "iif", "up0", "oif", "dn1"]);
  await routerSysctl("net.ipv6.conf.all.forwarding=0");
  const rx = await lab.listen("recv1", group, 5313);
  try {
    await lab.send(group, 5313, 3, { ttl: 8 });
    assert.ok(await rx.waitFor(3, 3000), `forwarded with IPv6 forwarding off (got ${rx.count()})`);
    assert.deepEqual((await findings(["from", S6, "to", group])).map((f) => f.code), []);
  } finally {
    await rx.stop();
    await routerSysctl("net.ipv6.conf.all.forwarding=1");
  }
});

void test("IPv6 disabled on an output interface: IPV6_DISABLED (not TTL_TOO_LOW), and its fix makes packets flow", async () => {
  const group = "ff3e::77:3";
  await d.mfcOk(["add", "from", S6, "to", group, "iif", "up0", "oif", "dn2"]);
  await routerSysctl("net.ipv6.conf.dn2.disable_ipv6=1");
  const rx = await lab.listen("recv2", group, 5314);
  try {
    await lab.send(group, 5314, 3, { ttl: 8 });
    assert.equal(await rx.waitFor(1, QUIET_MS), false, "nothing leaves on an interface without IPv6");
    const found = await findings(["from", S6, "to", group]);
    assert.deepEqual(found.map((f) => [f.code, f.ifname]), [["IPV6_DISABLED", "dn2"]], "packets counted, none sent: disable_ipv6, not the hop limit");
    assert.equal(found[0]?.severity, "error");
    assert.equal(found[0]?.fix, "sysctl -w net.ipv6.conf.dn2.disable_ipv6=0");
    await lab.exec(lab.ns.router, (found[0]?.fix ?? "").split(" "));
    await lab.send(group, 5314, 3, { ttl: 8 });
    assert.ok(await rx.waitFor(3, 3000), `after the fix packets must arrive (got ${rx.count()})`);
    assert.deepEqual((await findings(["from", S6, "to", group])).map((f) => f.code), []);
  } finally {
    await rx.stop();
    await routerSysctl("net.ipv6.conf.dn2.disable_ipv6=0");
  }
});

void test("IPv6 multicast that matches no route: UNROUTED_TRAFFIC names the real source", async () => {
  const group = "ff3e::77:4";
  // A route for another source: up0 is a MIF, so the kernel queues the flow as unresolved (~10 s).
  await d.mfcOk(["add", "from", "fd00:99::1", "to", group, "iif", "up0", "oif", "dn1"]);
  await lab.send(group, 5315, 2, { ttl: 8 });
  for (const args of [[], ["-6"]]) {
    const r = JSON.parse(await d.mfcOk([...args, "-j", "check"])) as { result: { findings: Finding[] } };
    const unrouted = r.result.findings.find((f) => f.code === "UNROUTED_TRAFFIC" && f.route?.includes(group));
    assert.ok(unrouted, `no UNROUTED_TRAFFIC for ${group} in ${JSON.stringify(r.result.findings)}`);
    assert.equal(unrouted.route, `(${S6}, ${group})`);
    assert.match(unrouted.fix ?? "", new RegExp(`^mfc add from ${S6} to ${group} iif `));
  }
});

void test("no packet and no MLD join on the iif: NO_JOIN says MLD, and the join it names silences it", async () => {
  const group = "ff3e::77:5";
  await d.mfcOk(["add", "from", S6, "to", group, "iif", "up0", "oif", "dn1"]);
  const [hint] = (await findings(["from", S6, "to", group])).filter((f) => f.code === "NO_JOIN");
  assert.match(hint?.message ?? "", /has not joined ff3e::77:5 on up0: an MLD-snooping switch upstream/);
  assert.equal(hint?.fix, `mfc join dev up0 group ${group} source ${S6}`);
  await d.mfcOk((hint?.fix ?? "").split(" ").slice(1));
  assert.deepEqual((await findings(["from", S6, "to", group])).map((f) => f.code), []);
});
