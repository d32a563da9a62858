/** src/diagnostics/checks.ts: findings and their fixes, from facts (pure). */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { checkRoute, routeStanding, rpFilterKey, type Facts, type InterfaceFacts } from "../../src/diagnostics/checks.js";
import type { Route } from "../../src/model/types.js";

const UP: InterfaceFacts = { exists: true, up: true, running: true, multicast: true, rpFilter: 0 };
const GONE: InterfaceFacts = { exists: false, up: false, running: false, multicast: false, rpFilter: 0 };

function facts(ifs: Record<string, InterfaceFacts>, extra: Partial<Facts> = {}): Facts {
  return { interfaces: new Map(Object.entries(ifs)), vifsInUse: 2, unrouted: [], ...extra };
}
const route = (iif: string, ...oifs: string[]): Route => ({ source: "10.0.0.1", group: "239.1.1.1", iif, oifs: oifs.map((ifname) => ({ ifname, ttl: 1 })) });

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
  const codes = (extra: Partial<Facts>): string[] => checkRoute(route("eth0", "eth1"), facts({ eth0: UP, eth1: UP }, extra)).map((f) => f.code);
  void test("names the join that fixes it (a hint: info) when the kernel counted no packet and nothing joins the group on the iif", () => {
    const [f] = checkRoute(route("eth0", "eth1"), facts({ eth0: UP, eth1: UP }, { joins: new Map(), packets: new Map([[key, 0]]) }));
    assert.equal(f?.code, "NO_JOIN");
    assert.equal(f?.severity, "info");
    assert.equal(f?.fix, "mfc join dev eth0 group 239.1.1.1 source 10.0.0.1");
  });
  void test("quiet when traffic arrives, when counters were not read (add), when the route is pending, or when a join covers it", () => {
    assert.deepEqual(codes({ joins: new Map(), packets: new Map([[key, 7]]) }), []);
    assert.deepEqual(codes({ joins: new Map() }), [], "the warnings of an add read no counters");
    assert.ok(!checkRoute(route("eth0", "eth1"), facts({ eth0: UP, eth1: GONE }, { joins: new Map(), packets: new Map([[key, 0]]) })).some((f) => f.code === "NO_JOIN"));
    const any = { ifname: "eth0", group: "239.1.1.1", source: null };
    const ssm = { ifname: "eth0", group: "239.1.1.1", source: "10.0.0.1" };
    assert.deepEqual(codes({ joins: new Map([["eth0|*,239.1.1.1", any]]), packets: new Map([[key, 0]]) }), [], "an any-source join");
    assert.deepEqual(codes({ joins: new Map([["eth0|10.0.0.1,239.1.1.1", ssm]]), packets: new Map([[key, 0]]) }), [], "a join of the route's source");
    assert.deepEqual(codes({ joins: new Map([["eth1|*,239.1.1.1", { ...any, ifname: "eth1" }]]), packets: new Map([[key, 0]]) }), ["NO_JOIN"], "a join on another interface does not count");
  });
});
