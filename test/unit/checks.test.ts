/** src/diagnostics/checks.ts: findings and their fixes, from facts (pure). */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { checkRoute, checkTable, disableIpv6Key, routeStanding, rpFilterKey, type Facts, type Finding, type InterfaceFacts } from "../../src/diagnostics/checks.js";
import type { Route } from "../../src/model/types.js";

const UP: InterfaceFacts = { exists: true, up: true, running: true, multicast: true, rpFilter: 0 };
const GONE: InterfaceFacts = { exists: false, up: false, running: false, multicast: false, rpFilter: 0 };

function facts(ifs: Record<string, InterfaceFacts>, extra: Partial<Facts> = {}): Facts {
  return { interfaces: new Map(Object.entries(ifs)), vifsInUse: { 4: 2, 6: 0 }, unrouted: [], ...extra };
}
const route = (iif: string, ...oifs: string[]): Route => ({ source: "10.0.0.1", group: "239.1.1.1", iif, oifs: oifs.map((ifname) => ({ ifname, ttl: 1 })) });
const route6 = (iif: string, ...oifs: string[]): Route => ({ source: "2001:db8::1", group: "ff3e::1", iif, oifs: oifs.map((ifname) => ({ ifname, ttl: 1 })) });
const codes = (fs: Finding[]): string[] => fs.map((f) => f.code);

void describe("rp_filter fixes", () => {
  void test("a dotted interface name is written with slashes in the sysctl key (sysctl(8))", () => {
    assert.equal(rpFilterKey("eth0"), "net.ipv4.conf.eth0.rp_filter");
    assert.equal(rpFilterKey("eth0.100"), "net.ipv4.conf.eth0/100.rp_filter");
    assert.equal(rpFilterKey("br0.10.20"), "net.ipv4.conf.br0/10/20.rp_filter");
  });
  void test("RP_FILTER_STRICT and RP_FILTER_LOOSE on eth0.100 give a fix sysctl accepts", () => {
    const strict = checkRoute(route("eth0.100", "eth1"), facts({ "eth0.100": { ...UP, rpFilter: 1 }, eth1: UP }));
    assert.equal(strict.find((f) => f.code === "RP_FILTER_STRICT")?.fix, "sysctl -w net.ipv4.conf.eth0/100.rp_filter=0 net.ipv4.conf.all.rp_filter=0");
    const loose = checkRoute(route("eth0.100", "eth1"), facts({ "eth0.100": { ...UP, rpFilter: 2 }, eth1: UP }));
    assert.match(loose.find((f) => f.code === "RP_FILTER_LOOSE")?.fix ?? "", /sysctl -w net\.ipv4\.conf\.eth0\/100\.rp_filter=0 /);
  });
});

void describe("the words of show: installed, partial, pending", () => {
  void test("routeStanding", () => {
    assert.equal(routeStanding(route("eth0", "eth1", "eth2"), facts({ eth0: UP, eth1: UP, eth2: UP })), "installed");
    assert.equal(routeStanding(route("eth0", "eth1", "eth2"), facts({ eth0: UP, eth1: UP, eth2: GONE })), "partial");
    assert.equal(routeStanding(route("eth0", "eth1"), facts({ eth0: UP, eth1: GONE })), "pending", "every oif missing");
    assert.equal(routeStanding(route("eth0", "eth1"), facts({ eth0: GONE, eth1: UP })), "pending", "iif missing");
    assert.equal(routeStanding(route("eth0", "eth1", "eth2"), facts({ eth0: UP, eth1: UP, eth2: UP }, { waiting: new Map([["eth2", "VIF limit: 32 in use"]]) })), "partial");
    assert.equal(routeStanding(route("eth0", "eth1"), facts({ eth0: UP, eth1: UP }, { refusedRoutes: new Map([["10.0.0.1,239.1.1.1", "kernel refused route: ENOBUFS"]]) })), "pending");
  });
  void test("IF_MISSING on one oif of an installed route says partial, not pending", () => {
    const [f] = checkRoute(route("eth0", "eth1", "eth2"), facts({ eth0: UP, eth1: UP, eth2: GONE }));
    assert.equal(f?.code, "IF_MISSING");
    assert.match(f?.message ?? "", /output interface eth2 does not exist: the route is partial \(installed, forwarding on its other output interfaces, not on eth2\)/);
    assert.doesNotMatch(f?.message ?? "", /pending/);
  });
  void test("IF_MISSING on the iif, or on the only oif, says pending", () => {
    for (const f of [facts({ eth0: GONE, eth1: UP }), facts({ eth0: UP, eth1: GONE })]) {
      const [m] = checkRoute(route("eth0", "eth1"), f).filter((x) => x.code === "IF_MISSING");
      assert.match(m?.message ?? "", /does not exist: the route is pending \(no kernel entry: it forwards nothing\)/);
    }
  });
  void test("IF_NO_VIF and ROUTE_REFUSED use the same words", () => {
    const limit = checkRoute(route("eth0", "eth1", "eth9"), facts({ eth0: UP, eth1: UP, eth9: UP }, { waiting: new Map([["eth9", "VIF limit: 32 in use"]]) }));
    assert.match(limit.find((f) => f.code === "IF_NO_VIF")?.message ?? "", /has no VIF \(VIF limit: 32 in use\): the route is partial/);
    const refused = checkRoute(route("eth0", "eth1"), facts({ eth0: UP, eth1: UP }, { refusedRoutes: new Map([["10.0.0.1,239.1.1.1", "kernel refused route: ENOBUFS"]]) }));
    assert.match(refused.find((f) => f.code === "ROUTE_REFUSED")?.message ?? "", /the route is pending/);
  });
});

void describe("NO_JOIN: a route that gets no packet, on an iif without a join", () => {
  const key = "10.0.0.1,239.1.1.1";
  const found = (extra: Partial<Facts>): string[] => codes(checkRoute(route("eth0", "eth1"), facts({ eth0: UP, eth1: UP }, extra)));
  void test("names the join that fixes it (a hint: info) when the kernel counted no packet and nothing joins the group on the iif", () => {
    const [f] = checkRoute(route("eth0", "eth1"), facts({ eth0: UP, eth1: UP }, { joins: new Map(), packets: new Map([[key, 0]]) }));
    assert.equal(f?.code, "NO_JOIN");
    assert.equal(f?.severity, "info");
    assert.equal(f?.fix, "mfc join dev eth0 group 239.1.1.1 source 10.0.0.1");
  });
  void test("quiet when traffic arrives, when counters were not read (add), when the route is pending, or when a join covers it", () => {
    assert.deepEqual(found({ joins: new Map(), packets: new Map([[key, 7]]) }), []);
    assert.deepEqual(found({ joins: new Map() }), [], "the warnings of an add read no counters");
    assert.ok(!checkRoute(route("eth0", "eth1"), facts({ eth0: UP, eth1: GONE }, { joins: new Map(), packets: new Map([[key, 0]]) })).some((f) => f.code === "NO_JOIN"));
    const any = { ifname: "eth0", group: "239.1.1.1", source: null };
    const ssm = { ifname: "eth0", group: "239.1.1.1", source: "10.0.0.1" };
    assert.deepEqual(found({ joins: new Map([["eth0|*,239.1.1.1", any]]), packets: new Map([[key, 0]]) }), [], "an any-source join");
    assert.deepEqual(found({ joins: new Map([["eth0|10.0.0.1,239.1.1.1", ssm]]), packets: new Map([[key, 0]]) }), [], "a join of the route's source");
    assert.deepEqual(found({ joins: new Map([["eth1|*,239.1.1.1", { ...any, ifname: "eth1" }]]), packets: new Map([[key, 0]]) }), ["NO_JOIN"], "a join on another interface does not count");
  });
});

void describe("IPv6 routes", () => {
  void test("no rp_filter finding: IPv6 has no rp_filter (ip6mr takes multicast before any source check)", () => {
    for (const rpFilter of [1, 2]) {
      assert.deepEqual(codes(checkRoute(route6("eth0", "eth1"), facts({ eth0: { ...UP, rpFilter }, eth1: UP }))), []);
      assert.equal(codes(checkRoute(route("eth0", "eth1"), facts({ eth0: { ...UP, rpFilter }, eth1: UP }))).length, 1, "the same interface, an IPv4 route");
    }
  });
  void test("routeStanding reads the waiting MIFs (eth2/6), not the interface's VIF", () => {
    const ifs = { eth0: UP, eth1: UP, eth2: UP };
    assert.equal(routeStanding(route6("eth0", "eth1", "eth2"), facts(ifs, { waiting: new Map([["eth2/6", "MIF limit: 32 in use"]]) })), "partial");
    assert.equal(routeStanding(route6("eth0", "eth1"), facts(ifs, { waiting: new Map([["eth0/6", "MIF limit: 32 in use"]]) })), "pending");
    assert.equal(routeStanding(route6("eth0", "eth1", "eth2"), facts(ifs, { waiting: new Map([["eth2", "VIF limit: 32 in use"]]) })), "installed", "eth2's VIF waits, its MIF does not");
    assert.equal(routeStanding(route("eth0", "eth1", "eth2"), facts(ifs, { waiting: new Map([["eth2/6", "MIF limit: 32 in use"]]) })), "installed", "an IPv4 route needs no MIF");
  });
  void test("IF_NO_VIF names the MIF and the -6 fix", () => {
    const fs = checkRoute(route6("eth0", "eth1", "eth9"), facts({ eth0: UP, eth1: UP, eth9: UP }, { waiting: new Map([["eth9/6", "MIF limit: 32 in use"]]) }));
    const f = fs.find((x) => x.code === "IF_NO_VIF");
    assert.match(f?.message ?? "", /^output interface eth9 has no MIF \(MIF limit: 32 in use\): the route is partial/);
    assert.match(f?.fix ?? "", /^mfc -6 vif show {2}# free a MIF/);
    const other = checkRoute(route6("eth0", "eth1", "eth9"), facts({ eth0: UP, eth1: UP, eth9: UP }, { waiting: new Map([["eth9/6", "kernel refused MIF: ENOBUFS"]]) }));
    assert.doesNotMatch(other.find((x) => x.code === "IF_NO_VIF")?.fix ?? "", /IPv4/, "the IPv4 hint does not apply to a MIF");
  });
  void test("NO_JOIN says MLD and names the IPv6 join", () => {
    const [f] = checkRoute(route6("eth0", "eth1"), facts({ eth0: UP, eth1: UP }, { joins: new Map(), packets: new Map([["2001:db8::1,ff3e::1", 0]]) }));
    assert.equal(f?.code, "NO_JOIN");
    assert.match(f?.message ?? "", /an MLD-snooping switch upstream/);
    assert.equal(f?.fix, "mfc join dev eth0 group ff3e::1 source 2001:db8::1");
    const [f4] = checkRoute(route("eth0", "eth1"), facts({ eth0: UP, eth1: UP }, { joins: new Map(), packets: new Map([["10.0.0.1,239.1.1.1", 0]]) }));
    assert.match(f4?.message ?? "", /an IGMP-snooping switch upstream/);
  });
});

void describe("IPV6_DISABLED: disable_ipv6 = 1 on an interface of an IPv6 route", () => {
  void test("on the iif and on an oif: an error each, with the sysctl that fixes it", () => {
    const fs = checkRoute(route6("eth0.100", "eth1"), facts({ "eth0.100": { ...UP, ipv6Disabled: true }, eth1: { ...UP, ipv6Disabled: true } }));
    const found = fs.filter((f) => f.code === "IPV6_DISABLED");
    assert.deepEqual(found.map((f) => [f.severity, f.ifname, f.fix]), [
      ["error", "eth0.100", "sysctl -w net.ipv6.conf.eth0/100.disable_ipv6=0"],
      ["error", "eth1", "sysctl -w net.ipv6.conf.eth1.disable_ipv6=0"],
    ]);
    assert.match(found[0]?.message ?? "", /input interface eth0\.100 .*drops every IPv6 packet arriving there, before the MFC, with no counter/);
    assert.match(found[1]?.message ?? "", /output interface eth1 .*forwards nothing there/);
    assert.equal(disableIpv6Key("br0.10.20"), "net.ipv6.conf.br0/10/20.disable_ipv6");
  });
  void test("not for an IPv4 route, nor when IPv6 is on", () => {
    assert.deepEqual(codes(checkRoute(route("eth0", "eth1"), facts({ eth0: { ...UP, ipv6Disabled: true }, eth1: UP }))), []);
    assert.deepEqual(codes(checkRoute(route6("eth0", "eth1"), facts({ eth0: { ...UP, ipv6Disabled: false }, eth1: UP }))), []);
  });
});

void describe("TTL_TOO_LOW: packets counted, none sent on any oif", () => {
  const key6 = "2001:db8::1,ff3e::1";
  const key4 = "10.0.0.1,239.1.1.1";
  const ifs = { eth0: UP, eth1: UP, eth2: UP };
  const low = (r: Route, extra: Partial<Facts>, ifFacts: Record<string, InterfaceFacts> = ifs): Finding | undefined =>
    checkRoute(r, facts(ifFacts, extra)).find((f) => f.code === "TTL_TOO_LOW");
  void test("IPv6: hop limit 1, with the sender's and the router's fix", () => {
    const f = low(route6("eth0", "eth1", "eth2"), { packets: new Map([[key6, 5]]), vifOut: new Map([["eth1/6", 0], ["eth2/6", 0]]) });
    assert.equal(f?.severity, "warning");
    assert.equal(f?.ifname, "eth0");
    assert.equal(f?.message, "the kernel counted 5 packets for this route on eth0 but sent none on eth1, eth2: they arrive with hop limit 1, which no router forwards (senders default to it: IPV6_MULTICAST_HOPS)");
    assert.equal(f?.fix, "raise the sender's IPV6_MULTICAST_HOPS (e.g. 8); or on this router: ip6tables -t mangle -A PREROUTING -i eth0 -s 2001:db8::1 -d ff3e::1 -j HL --hl-set 8");
    const any = low({ ...route6("eth0", "eth1"), source: null }, { packets: new Map([["*,ff3e::1", 1]]), vifOut: new Map([["eth1/6", 0]]) });
    assert.match(any?.message ?? "", /counted 1 packet for/);
    assert.match(any?.fix ?? "", /PREROUTING -i eth0 -d ff3e::1 -j HL/, "any source: no -s");
  });
  void test("IPv4: TTL 1, or at most the oifs' threshold, with IP_MULTICAST_TTL and iptables", () => {
    const f = low(route("eth0", "eth1"), { packets: new Map([[key4, 3]]), vifOut: new Map([["eth1", 0]]) });
    assert.match(f?.message ?? "", /: they arrive with TTL 1, which is not forwarded \(senders default to TTL 1: IP_MULTICAST_TTL\)$/);
    assert.equal(f?.fix, "raise the sender's IP_MULTICAST_TTL (e.g. 8); or on this router: iptables -t mangle -A PREROUTING -i eth0 -s 10.0.0.1 -d 239.1.1.1 -j TTL --ttl-set 8");
    const thr: Route = { ...route("eth0"), oifs: [{ ifname: "eth1", ttl: 4 }, { ifname: "eth2", ttl: 12 }] };
    const t = low(thr, { packets: new Map([[key4, 3]]), vifOut: new Map([["eth1", 0], ["eth2", 0]]) });
    assert.match(t?.message ?? "", /they arrive with TTL <= 4 \(the oif threshold\)/);
    assert.match(t?.fix ?? "", /IP_MULTICAST_TTL \(e\.g\. 13\).*--ttl-set 13$/, "above every threshold");
  });
  void test("quiet when a packet left, a counter is unknown, nothing arrived or only on a wrong interface", () => {
    const r = route6("eth0", "eth1", "eth2");
    const pk = new Map([[key6, 5]]);
    assert.equal(low(r, { packets: pk, vifOut: new Map([["eth1/6", 0], ["eth2/6", 2]]) }), undefined, "eth2 sent some");
    assert.equal(low(r, { packets: pk, vifOut: new Map([["eth1/6", 0]]) }), undefined, "eth2's MIF counter not read");
    assert.equal(low(r, { packets: pk, vifOut: new Map([["eth1", 0], ["eth2", 0]]) }), undefined, "the VIFs' counters are not the MIFs'");
    assert.equal(low(r, { packets: pk }), undefined, "no counters (the warnings of an add)");
    assert.equal(low(r, { packets: new Map([[key6, 0]]), vifOut: new Map([["eth1/6", 0], ["eth2/6", 0]]) }), undefined, "nothing counted");
    assert.equal(low(r, { packets: pk, wrongIf: new Map([[key6, 5]]), vifOut: new Map([["eth1/6", 0], ["eth2/6", 0]]) }), undefined, "all on a wrong interface");
    assert.ok(low(r, { packets: pk, wrongIf: new Map([[key6, 4]]), vifOut: new Map([["eth1/6", 0], ["eth2/6", 0]]) })?.message.includes("counted 1 packet "), "one arrived on the iif");
  });
  void test("quiet when the route is not installed whole, or another error explains it", () => {
    const extra = { packets: new Map([[key6, 5]]), vifOut: new Map([["eth1/6", 0], ["eth2/6", 0]]) };
    const r = route6("eth0", "eth1", "eth2");
    assert.equal(low(r, { ...extra, waiting: new Map([["eth2/6", "interface missing"]]) }), undefined, "partial");
    assert.equal(low(r, extra, { ...ifs, eth2: { ...UP, up: false } }), undefined, "an oif down");
    assert.equal(low(r, extra, { ...ifs, eth1: { ...UP, ipv6Disabled: true } }), undefined, "IPv6 off on an oif (measured: its MIF then counts nothing)");
    assert.equal(low(r, extra, { ...ifs, eth1: { ...UP, running: false } }), undefined, "an oif without carrier (a warning)");
    assert.ok(low(r, extra, { ...ifs, eth1: { ...UP, multicast: true } }), "and all is well otherwise");
  });
});

void describe("checkTable", () => {
  void test("VIF_LIMIT_NEAR per family: 28 of 32 VIFs, or of 32 MIFs", () => {
    const near = (vifsInUse: Facts["vifsInUse"], family?: 4 | 6): Finding[] => checkTable(facts({}, { vifsInUse }), family);
    assert.deepEqual(near({ 4: 27, 6: 27 }), []);
    const [v4] = near({ 4: 28, 6: 0 });
    assert.equal(v4?.message, "28 of 32 VIFs are in use (kernel limit MAXVIFS); routes on new interfaces will fail with E_VIF_LIMIT");
    assert.equal(v4?.fix, "mfc vif show  # remove unused pinned VIFs with: mfc vif del dev IF");
    const [v6, more] = near({ 4: 3, 6: 30 });
    assert.equal(more, undefined);
    assert.equal(v6?.message, "30 of 32 MIFs are in use (kernel limit MAXMIFS); routes on new interfaces will fail with E_VIF_LIMIT");
    assert.equal(v6?.fix, "mfc -6 vif show  # remove unused pinned MIFs with: mfc -6 vif del dev IF");
    assert.equal(near({ 4: 30, 6: 30 }).length, 2);
    assert.deepEqual(near({ 4: 30, 6: 30 }, 6).map((f) => f.message.slice(0, 14)), ["30 of 32 MIFs "], "mfc -6 check");
  });
  void test("UNROUTED_TRAFFIC of both families, or of one (mfc -4/-6 check)", () => {
    const f = facts({}, { unrouted: ["10.0.0.9,239.1.1.1", "2001:db8::9,ff3e::1:1"] });
    assert.deepEqual(checkTable(f).map((x) => x.route), ["(10.0.0.9, 239.1.1.1)", "(2001:db8::9, ff3e::1:1)"]);
    const [six] = checkTable(f, 6);
    assert.equal(six?.message, "multicast from 2001:db8::9 to ff3e::1:1 is arriving but matches no route");
    assert.equal(six?.fix, "mfc add from 2001:db8::9 to ff3e::1:1 iif <IF it arrives on> oif <IF...>   # or: mfc add to ff3e::1:1 ... for any source");
    assert.deepEqual(checkTable(f, 4).map((x) => x.route), ["(10.0.0.9, 239.1.1.1)"]);
  });
});
