/** Effects: gathers the facts diagnostics need, in the daemon's own network namespace. */
import { IFF_MULTICAST, IFF_RUNNING, IFF_UP, interfaceFlags } from "../kernel/ifreq.js";
import type { Facts, InterfaceFacts } from "../diagnostics/checks.js";
import type { Image } from "../engine/image.js";
import { dumpMfc } from "../kernel/mfc_dump.js";
import type { VifCounters } from "../kernel/port.js";
import type { Family } from "../model/family.js";
import { vifKey } from "../model/types.js";
import { SysctlFiles } from "./sysctl_files.js";
import { memoForTurn } from "./turn_memo.js";

const sysctls = new SysctlFiles();
const sysctlInt = memoForTurn((path: string): number => sysctls.readInt(path) ?? 0);
const flagsOf = memoForTurn(interfaceFlags);

/** What the daemon holds that facts are read from. */
export interface FactSources {
  /** The engine's image: the VIFs and MIFs (vifi per vifKey) and the interfaces waiting for one. */
  image: Pick<Image, "vifs" | "waiting">;
  table: number | undefined;
  /** SIOCGETVIFCNT / SIOCGETMIFCNT_IN6 of the daemon's tables. */
  vifCounters(family: Family, vifi: number): VifCounters | undefined;
}

/**
 * Facts about the interfaces `ifnames` (plain names) and their VIFs and MIFs. `table`-wide facts
 * (flows arriving with no route) need a dump of the whole MFC table, so they are gathered only for
 * a full `mfc check`, never for the warnings of an `add`; the IPv6 table only when it has MIFs
 * (before that the daemon may not own it, and no flow can arrive on a MIF).
 */
export function gatherFacts(ifnames: Iterable<string>, vifsInUse: Record<Family, number>, tableWide: boolean, src: FactSources, withVifCounters: boolean): Facts {
  const all = sysctlInt("/proc/sys/net/ipv4/conf/all/rp_filter");
  const interfaces = new Map<string, InterfaceFacts>();
  const vifOut = new Map<string, number>();
  for (const name of ifnames) {
    const flags = flagsOf(name);
    if (flags === undefined) {
      interfaces.set(name, { exists: false, up: false, running: false, multicast: false, rpFilter: 0 });
      continue;
    }
    // /proc/sys/net is per network namespace of the reader: ours. Names are validated (no '/').
    const facts: InterfaceFacts = {
      exists: true, up: (flags & IFF_UP) !== 0, running: (flags & IFF_RUNNING) !== 0, multicast: (flags & IFF_MULTICAST) !== 0,
      rpFilter: Math.max(all, sysctlInt(`/proc/sys/net/ipv4/conf/${name}/rp_filter`)),
    };
    const mif = vifKey(6, name);
    // The interfaces of IPv6 routes (and pinned MIFs) are those with a MIF or waiting for one.
    if (src.image.vifs.has(mif) || src.image.waiting?.has(mif) === true) {
      facts.ipv6Disabled = sysctlInt(`/proc/sys/net/ipv6/conf/${name}/disable_ipv6`) === 1;
    }
    interfaces.set(name, facts);
    // What each VIF sent matters only beside the routes' packet counters (TTL_TOO_LOW, mfc check):
    // the warnings of an `add` skip these ioctls.
    if (!withVifCounters) continue;
    for (const key of [vifKey(4, name), mif]) {
      const v = src.image.vifs.get(key);
      const sent = v && src.vifCounters(v.family, v.vifi)?.pktsOut;
      if (sent !== undefined) vifOut.set(key, sent);
    }
  }
  const unrouted: string[] = [];
  if (tableWide) {
    for (const family of vifsInUse[6] > 0 ? [4, 6] as const : [4] as const) {
      try {
        unrouted.push(...dumpMfc(src.table, { family }).unresolved);
      } catch {
        // a diagnostic must not fail the check; the other findings still stand
      }
    }
  }
  return { interfaces, vifsInUse, unrouted, vifOut };
}
