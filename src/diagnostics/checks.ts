/**
 * Pure: why a route cannot forward, from facts gathered by the daemon (facts.ts). Each finding
 * names what is wrong and the command that fixes it. These are the silent failures: the kernel
 * drops such traffic without an error, often without a counter (STACK.md).
 */
import { MAXVIFS } from "../kernel/port.js";
import { formatSG, joinKey, routeKey, type Join, type Route } from "../model/types.js";

export interface InterfaceFacts {
  exists: boolean;
  up: boolean;
  running: boolean;
  multicast: boolean;
  /** Effective rp_filter: max(conf.all, conf.<if>) — the kernel uses the larger. */
  rpFilter: number;
}

export interface Facts {
  interfaces: ReadonlyMap<string, InterfaceFacts>;
  vifsInUse: number;
  /** "source,group" of multicast arriving right now that matches no MFC entry (kernel ~10 s). */
  unrouted: readonly string[];
  /** Interfaces the configuration needs that have no VIF, and why (engine image). */
  waiting?: ReadonlyMap<string, string>;
  /** Routes the kernel refused to install, by route key, and why. */
  refusedRoutes?: ReadonlyMap<string, string>;
  /** The configured joins, by join key. */
  joins?: ReadonlyMap<string, Join>;
  /** Packets the kernel counted per route key (read for `mfc check`, not for the warnings of an add). */
  packets?: ReadonlyMap<string, number>;
}

export interface Finding {
  severity: "error" | "warning" | "info";
  code: "RP_FILTER_STRICT" | "RP_FILTER_LOOSE" | "IF_MISSING" | "IF_DOWN" | "IF_NO_CARRIER" | "IF_NO_MULTICAST" | "TTL_THRESHOLD" | "VIF_LIMIT_NEAR" | "UNROUTED_TRAFFIC" | "IF_NO_VIF" | "ROUTE_REFUSED" | "NO_JOIN";
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

/**
 * How a route stands for the words findings use (the same as `show`): `pending` when it has no
 * kernel entry (its input interface, or every output interface, has no VIF, or the kernel refused
 * it), `partial` when it is installed but some output interfaces have no VIF, else `installed`.
 */
export function routeStanding(route: Route, facts: Facts): "installed" | "partial" | "pending" {
  const hasVif = (name: string): boolean => facts.interfaces.get(name)?.exists === true && facts.waiting?.has(name) !== true;
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
  const standing = routeStanding(route, facts);
  const iif = facts.interfaces.get(route.iif);
  if (iif?.exists && iif.rpFilter === 1) {
    out.push({
      severity: "error", code: "RP_FILTER_STRICT", route: key, ifname: route.iif,
      message: `rp_filter is strict (1) on input interface ${route.iif}: multicast from a source not routed back via ${route.iif} is dropped before the MFC, with no counter`,
      fix: `sysctl -w ${rpFilterKey(route.iif)}=0 net.ipv4.conf.all.rp_filter=0`,
    });
  } else if (iif?.exists && iif.rpFilter === 2) {
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
    const noVif = facts.waiting?.get(name);
    if (noVif !== undefined && noVif !== "interface missing") {
      out.push({
        severity: "error", code: "IF_NO_VIF", route: key, ifname: name,
        message: `${role} interface ${name} has no VIF (${noVif}): ${consequence(name, standing)}; the daemon retries and adds it as soon as it fits`,
        fix: noVif.startsWith("VIF limit")
          ? "mfc vif show  # free a VIF: delete routes or pinned VIFs of interfaces you no longer need"
          : `ip -d link show ${name}  # the kernel needs IPv4 on the interface (e.g. MTU >= 68); then: kill -HUP $(pidof mfc_daemon) or wait`,
      });
    }
    if (!f.up) out.push({ severity: "error", code: "IF_DOWN", route: key, ifname: name, message: `${role} interface ${name} is down`, fix: `ip link set ${name} up` });
    else if (!f.running) out.push({ severity: "warning", code: "IF_NO_CARRIER", route: key, ifname: name, message: `${role} interface ${name} has no carrier`, fix: `ip link show ${name}  # check the cable / peer` });
    if (!f.multicast) out.push({ severity: "error", code: "IF_NO_MULTICAST", route: key, ifname: name, message: `${role} interface ${name} is not multicast-capable`, fix: `ip link set ${name} multicast on` });
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
      message: `no packet has arrived for this route, and the router has not joined ${route.group} on ${route.iif}: an IGMP-snooping switch upstream sends a group only to ports that joined it`,
      fix: `mfc join dev ${route.iif} group ${route.group}${route.source === null ? "" : ` source ${route.source}`}`,
    });
  }
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

/** A join that brings the route's traffic to its iif: any-source, or for the route's source. */
function joined(route: Route, joins: ReadonlyMap<string, Join>): boolean {
  const any = joinKey({ ifname: route.iif, source: null, group: route.group });
  return joins.has(any) || (route.source !== null && joins.has(joinKey({ ifname: route.iif, source: route.source, group: route.group })));
}

const UNROUTED_SHOWN = 10;

export function checkTable(facts: Facts): Finding[] {
  // The kernel queues packets of a flow that matches no entry as "unresolved" (~10 s): traffic is
  // arriving on a VIF but no route takes it — often a wrong source address, or no route at all.
  const out: Finding[] = facts.unrouted.slice(0, UNROUTED_SHOWN).map((key) => {
    const [source, group] = key.split(",") as [string, string];
    return {
      severity: "warning", code: "UNROUTED_TRAFFIC", route: formatSG({ source, group }),
      message: `multicast from ${source} to ${group} is arriving but matches no route${facts.unrouted.length > UNROUTED_SHOWN ? ` (${facts.unrouted.length} such flows, first ${UNROUTED_SHOWN} shown)` : ""}`,
      fix: `mfc add from ${source} to ${group} iif <IF it arrives on> oif <IF...>   # or: mfc add to ${group} ... for any source`,
    };
  });
  if (facts.vifsInUse < MAXVIFS - 4) return out;
  return [...out, {
    severity: "warning", code: "VIF_LIMIT_NEAR",
    message: `${facts.vifsInUse} of ${MAXVIFS} VIFs are in use (kernel limit MAXVIFS); routes on new interfaces will fail with E_VIF_LIMIT`,
    fix: "mfc vif show  # remove unused pinned VIFs with: mfc vif del dev IF",
  }];
}
