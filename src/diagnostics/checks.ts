/**
 * Pure: why a route cannot forward, from facts gathered by the daemon (facts.ts). Each finding
 * names what is wrong and the command that fixes it. These are the silent failures: the kernel
 * drops such traffic without an error, often without a counter (STACK.md).
 */
import { MAXVIFS } from "../kernel/port.js";
import { familyOf, type Family } from "../model/family.js";
import { formatSG, joinKey, routeFamily, routeKey, vifKey, type Join, type Route } from "../model/types.js";

export interface InterfaceFacts {
  exists: boolean;
  up: boolean;
  running: boolean;
  multicast: boolean;
  /** Effective rp_filter: max(conf.all, conf.<if>) — the kernel uses the larger. */
  rpFilter: number;
  /** net.ipv6.conf.<if>.disable_ipv6 is 1 (read only for interfaces of IPv6 routes). */
  ipv6Disabled?: boolean;
}

export interface Facts {
  interfaces: ReadonlyMap<string, InterfaceFacts>;
  /** VIFs (4) and MIFs (6) in use, each against its own kernel limit of 32. */
  vifsInUse: Record<Family, number>;
  /** "source,group" of multicast arriving right now that matches no MFC entry (kernel ~10 s), both families. */
  unrouted: readonly string[];
  /** Interfaces the configuration needs that have no VIF or MIF, by vifKey, and why (engine image). */
  waiting?: ReadonlyMap<string, string>;
  /** Routes the kernel refused to install, by route key, and why. */
  refusedRoutes?: ReadonlyMap<string, string>;
  /** The configured joins, by join key. */
  joins?: ReadonlyMap<string, Join>;
  /** Packets the kernel counted per route key (read for `mfc check`, not for the warnings of an add). */
  packets?: ReadonlyMap<string, number>;
  /** Of those, the packets that arrived on another interface than the route's iif (never forwarded). */
  wrongIf?: ReadonlyMap<string, number>;
  /** Packets each VIF / MIF has sent, by vifKey (SIOCGETVIFCNT / SIOCGETMIFCNT_IN6). To be read
   *  after `packets`, so that every packet counted there that was forwarded is counted here too. */
  vifOut?: ReadonlyMap<string, number>;
}

export interface Finding {
  severity: "error" | "warning" | "info";
  code: "RP_FILTER_STRICT" | "RP_FILTER_LOOSE" | "IF_MISSING" | "IF_DOWN" | "IF_NO_CARRIER" | "IF_NO_MULTICAST" | "TTL_THRESHOLD" | "VIF_LIMIT_NEAR" | "UNROUTED_TRAFFIC" | "IF_NO_VIF" | "ROUTE_REFUSED" | "NO_JOIN" | "IPV6_DISABLED" | "TTL_TOO_LOW";
  message: string;
  fix?: string;
  route?: string;
  ifname?: string;
}

/**
 * The sysctl key of an interface's rp_filter. sysctl(8) separates key components with dots, so a
 * dot inside an interface name (a VLAN such as eth0.100) is written as a slash:
 * `net.ipv4.conf.eth0/100.rp_filter`.
 */
export function rpFilterKey(ifname: string): string {
  return `net.ipv4.conf.${ifname.replaceAll(".", "/")}.rp_filter`;
}

/** The sysctl key of an interface's disable_ipv6, written as rpFilterKey is. */
export function disableIpv6Key(ifname: string): string {
  return `net.ipv6.conf.${ifname.replaceAll(".", "/")}.disable_ipv6`;
}

/**
 * How a route stands for the words findings use (the same as `show`): `pending` when it has no
 * kernel entry (its input interface, or every output interface, has no VIF, or the kernel refused
 * it), `partial` when it is installed but some output interfaces have no VIF, else `installed`.
 */
export function routeStanding(route: Route, facts: Facts): "installed" | "partial" | "pending" {
  const family = routeFamily(route);
  const hasVif = (name: string): boolean => facts.interfaces.get(name)?.exists === true && facts.waiting?.has(vifKey(family, name)) !== true;
  const withVif = route.oifs.filter((o) => hasVif(o.ifname)).length;
  if (facts.refusedRoutes?.has(routeKey(route.source, route.group)) || !hasVif(route.iif) || withVif === 0) return "pending";
  return withVif < route.oifs.length ? "partial" : "installed";
}

/** What an interface without a VIF means for the route, in `show`'s words. (An input interface
 *  without a VIF always makes the route pending.) */
function consequence(name: string, standing: "installed" | "partial" | "pending"): string {
  return standing === "pending"
    ? "the route is pending (no kernel entry: it forwards nothing)"
    : `the route is partial (installed, forwarding on its other output interfaces, not on ${name})`;
}

export function checkRoute(route: Route, facts: Facts): Finding[] {
  const out: Finding[] = [];
  const key = formatSG(route);
  const family = routeFamily(route);
  const v6 = family === 6;
  const vif = v6 ? "MIF" : "VIF";
  const standing = routeStanding(route, facts);
  const iif = facts.interfaces.get(route.iif);
  // IPv6 has no rp_filter: ip6_mc_input hands multicast to ip6mr with no reverse-path check.
  if (!v6 && iif?.exists && iif.rpFilter === 1) {
    out.push({
      severity: "error", code: "RP_FILTER_STRICT", route: key, ifname: route.iif,
      message: `rp_filter is strict (1) on input interface ${route.iif}: multicast from a source not routed back via ${route.iif} is dropped before the MFC, with no counter`,
      fix: `sysctl -w ${rpFilterKey(route.iif)}=0 net.ipv4.conf.all.rp_filter=0`,
    });
  } else if (!v6 && iif?.exists && iif.rpFilter === 2) {
    out.push({
      severity: "warning", code: "RP_FILTER_LOOSE", route: key, ifname: route.iif,
      message: `rp_filter is loose (2) on input interface ${route.iif}: traffic is dropped if there is no route at all back to ${route.source ?? "the sources"}`,
      fix: `ip route get ${route.source ?? "<source>"}  # must succeed; or sysctl -w ${rpFilterKey(route.iif)}=0 net.ipv4.conf.all.rp_filter=0`,
    });
  }
  for (const [role, name] of [["input", route.iif], ...route.oifs.map((o) => ["output", o.ifname] as const)] as const) {
    const f = facts.interfaces.get(name);
    if (!f?.exists) {
      out.push({
        severity: "error", code: "IF_MISSING", route: key, ifname: name,
        message: `${role} interface ${name} does not exist: ${consequence(name, standing)}; the daemon adds it when it appears`,
        fix: `ip link show ${name}`,
      });
      continue;
    }
    const noVif = facts.waiting?.get(vifKey(family, name));
    if (noVif !== undefined && noVif !== "interface missing") {
      out.push({
        severity: "error", code: "IF_NO_VIF", route: key, ifname: name,
        message: `${role} interface ${name} has no ${vif} (${noVif}): ${consequence(name, standing)}; the daemon retries and adds it as soon as it fits`,
        fix: noVif.startsWith(`${vif} limit`)
          ? `mfc ${v6 ? "-6 " : ""}vif show  # free a ${vif}: delete routes or pinned ${vif}s of interfaces you no longer need`
          : v6
            ? `ip -d link show ${name}  # then: kill -HUP $(pidof mfc_daemon) or wait`
            : `ip -d link show ${name}  # the kernel needs IPv4 on the interface (e.g. MTU >= 68); then: kill -HUP $(pidof mfc_daemon) or wait`,
      });
    }
    if (!f.up) out.push({ severity: "error", code: "IF_DOWN", route: key, ifname: name, message: `${role} interface ${name} is down`, fix: `ip link set ${name} up` });
    else if (!f.running) out.push({ severity: "warning", code: "IF_NO_CARRIER", route: key, ifname: name, message: `${role} interface ${name} has no carrier`, fix: `ip link show ${name}  # check the cable / peer` });
    if (!f.multicast) out.push({ severity: "error", code: "IF_NO_MULTICAST", route: key, ifname: name, message: `${role} interface ${name} is not multicast-capable`, fix: `ip link set ${name} multicast on` });
    if (v6 && f.ipv6Disabled === true) {
      // Measured on kernel 6.18: on the iif ip6_rcv drops the packets before the MFC counts them;
      // on an oif ip6mr finds no route out (the MIF stays, counting nothing) and sends nothing.
      out.push({
        severity: "error", code: "IPV6_DISABLED", route: key, ifname: name,
        message: role === "input"
          ? `IPv6 is disabled on input interface ${name} (disable_ipv6 = 1): the kernel drops every IPv6 packet arriving there, before the MFC, with no counter`
          : `IPv6 is disabled on output interface ${name} (disable_ipv6 = 1): the kernel forwards nothing there`,
        fix: `sysctl -w ${disableIpv6Key(name)}=0`,
      });
    }
  }
  const refused = facts.refusedRoutes?.get(routeKey(route.source, route.group));
  if (refused !== undefined) {
    out.push({ severity: "error", code: "ROUTE_REFUSED", route: key, message: `the kernel refused to install this route (${refused}): the route is pending (no kernel entry: it forwards nothing); the daemon retries` });
  }
  const pkts = facts.packets?.get(routeKey(route.source, route.group));
  if (pkts === 0 && standing !== "pending" && iif?.exists === true && facts.joins && !joined(route, facts.joins)) {
    // The most common reason after rp_filter: a snooping switch upstream never sends the group here.
    // Only a hint (info): the daemon cannot see whether such a switch is there, or the source is quiet.
    out.push({
      severity: "info", code: "NO_JOIN", route: key, ifname: route.iif,
      message: `no packet has arrived for this route, and the router has not joined ${route.group} on ${route.iif}: an ${v6 ? "MLD" : "IGMP"}-snooping switch upstream sends a group only to ports that joined it`,
      fix: `mfc join dev ${route.iif} group ${route.group}${route.source === null ? "" : ` source ${route.source}`}`,
    });
  }
  const low = ttlTooLow(route, facts, standing, out);
  if (low) out.push(low);
  for (const o of route.oifs) {
    if (o.ttl > 1) {
      out.push({
        severity: "info", code: "TTL_THRESHOLD", route: key, ifname: o.ifname,
        message: `oif ${o.ifname} has TTL threshold ${o.ttl}: only packets arriving with TTL > ${o.ttl} leave on it (and packets with TTL 1 are never forwarded)`,
      });
    }
  }
  return out;
}

/**
 * TTL_TOO_LOW: the kernel counted packets for the route (on its iif) and none left on any of its
 * oifs. The kernel forwards on an oif only a packet whose TTL (IPv6: hop limit) is above the oif's
 * threshold (1 for IPv6), dropping the others with no counter but the entry's; and senders default
 * to 1 (IP_MULTICAST_TTL, IPV6_MULTICAST_HOPS). Measured on kernel 6.18: such packets count on the
 * (S,G) entry and the iif's MIF, never on an oif's. Said only when nothing else explains it: the
 * route installed whole; no error or warning about it (a missing, down or IPv6-less oif sends
 * nothing either; one without carrier has its own warning); packets on a wrong interface left
 * out; a counter read for every oif (a VIF counts what it sent since it was added: the reason it
 * is read after the route's packets). It still cannot tell packets counted before an oif got its
 * VIF (an oif added since, by replace or when its interface came back) while the source is quiet
 * now: hence a warning, not an error.
 */
function ttlTooLow(route: Route, facts: Facts, standing: "installed" | "partial" | "pending", found: readonly Finding[]): Finding | undefined {
  const rkey = routeKey(route.source, route.group);
  const arrived = (facts.packets?.get(rkey) ?? 0) - (facts.wrongIf?.get(rkey) ?? 0);
  if (arrived <= 0 || standing !== "installed" || found.some((f) => f.severity !== "info")) return undefined;
  const family = routeFamily(route);
  if (!route.oifs.every((o) => facts.vifOut?.get(vifKey(family, o.ifname)) === 0)) return undefined;
  const names = route.oifs.map((o) => o.ifname).join(", ");
  const counted = `the kernel counted ${arrived} packet${arrived === 1 ? "" : "s"} for this route on ${route.iif} but sent none on ${names}`;
  const match = `-i ${route.iif}${route.source === null ? "" : ` -s ${route.source}`} -d ${route.group}`;
  if (family === 6) {
    return {
      severity: "warning", code: "TTL_TOO_LOW", route: formatSG(route), ifname: route.iif,
      message: `${counted}: they arrive with hop limit 1, which no router forwards (senders default to it: IPV6_MULTICAST_HOPS)`,
      fix: `raise the sender's IPV6_MULTICAST_HOPS (e.g. 8); or on this router: ip6tables -t mangle -A PREROUTING ${match} -j HL --hl-set 8`,
    };
  }
  const threshold = Math.min(...route.oifs.map((o) => o.ttl));
  const ttl = Math.max(8, Math.max(...route.oifs.map((o) => o.ttl)) + 1);
  return {
    severity: "warning", code: "TTL_TOO_LOW", route: formatSG(route), ifname: route.iif,
    message: `${counted}: they arrive with TTL ${threshold === 1 ? "1" : `<= ${threshold} (the oif threshold)`}, which is not forwarded (senders default to TTL 1: IP_MULTICAST_TTL)`,
    fix: `raise the sender's IP_MULTICAST_TTL (e.g. ${ttl}); or on this router: iptables -t mangle -A PREROUTING ${match} -j TTL --ttl-set ${ttl}`,
  };
}

/** A join that brings the route's traffic to its iif: any-source, or for the route's source. */
function joined(route: Route, joins: ReadonlyMap<string, Join>): boolean {
  const any = joinKey({ ifname: route.iif, source: null, group: route.group });
  return joins.has(any) || (route.source !== null && joins.has(joinKey({ ifname: route.iif, source: route.source, group: route.group })));
}

const UNROUTED_SHOWN = 10;

/** Table-wide findings: of both families, or of `family` alone (`mfc -4/-6 check`). */
export function checkTable(facts: Facts, family?: Family): Finding[] {
  // The kernel queues packets of a flow that matches no entry as "unresolved" (~10 s): traffic is
  // arriving on a VIF but no route takes it — often a wrong source address, or no route at all.
  const unrouted = facts.unrouted.filter((k) => family === undefined || familyOf(k) === family);
  const out: Finding[] = unrouted.slice(0, UNROUTED_SHOWN).map((key) => {
    const [source, group] = key.split(",") as [string, string];
    return {
      severity: "warning", code: "UNROUTED_TRAFFIC", route: formatSG({ source, group }),
      message: `multicast from ${source} to ${group} is arriving but matches no route${unrouted.length > UNROUTED_SHOWN ? ` (${unrouted.length} such flows, first ${UNROUTED_SHOWN} shown)` : ""}`,
      fix: `mfc add from ${source} to ${group} iif <IF it arrives on> oif <IF...>   # or: mfc add to ${group} ... for any source`,
    };
  });
  for (const f of [4, 6] as const) {
    if ((family !== undefined && f !== family) || facts.vifsInUse[f] < MAXVIFS - 4) continue;
    const [vif, limit, opt] = f === 6 ? ["MIF", "MAXMIFS", "-6 "] : ["VIF", "MAXVIFS", ""];
    out.push({
      severity: "warning", code: "VIF_LIMIT_NEAR",
      message: `${facts.vifsInUse[f]} of ${MAXVIFS} ${vif}s are in use (kernel limit ${limit}); routes on new interfaces will fail with E_VIF_LIMIT`,
      fix: `mfc ${opt}vif show  # remove unused pinned ${vif}s with: mfc ${opt}vif del dev IF`,
    });
  }
  return out;
}
