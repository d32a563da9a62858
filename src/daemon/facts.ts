/** Effects: gathers the facts diagnostics need, in the daemon's own network namespace. */
import { readFileSync } from "node:fs";
import { IFF_MULTICAST, IFF_RUNNING, IFF_UP, interfaceFlags } from "../kernel/ifflags.js";
import type { Facts, InterfaceFacts } from "../diagnostics/checks.js";
import { dumpMfc } from "../kernel/mfc_dump.js";

function sysctlInt(path: string): number {
  try {
    return Number(readFileSync(path, "utf8").trim()) || 0;
  } catch {
    return 0;
  }
}

/**
 * `table`-wide facts (flows arriving with no route) need a dump of the whole MFC table, so they are
 * gathered only for a full `mfc check`, never for the warnings of an `add`.
 */
export function gatherFacts(ifnames: Iterable<string>, vifsInUse: number, table: number | undefined, tableWide: boolean): Facts {
  const all = sysctlInt("/proc/sys/net/ipv4/conf/all/rp_filter");
  const interfaces = new Map<string, InterfaceFacts>();
  for (const name of ifnames) {
    const flags = interfaceFlags(name);
    if (flags === undefined) {
      interfaces.set(name, { exists: false, up: false, running: false, multicast: false, rpFilter: 0 });
      continue;
    }
    interfaces.set(name, {
      exists: true, up: (flags & IFF_UP) !== 0, running: (flags & IFF_RUNNING) !== 0, multicast: (flags & IFF_MULTICAST) !== 0,
      // /proc/sys/net is per network namespace of the reader: ours. Names are validated (no '/').
      rpFilter: Math.max(all, sysctlInt(`/proc/sys/net/ipv4/conf/${name}/rp_filter`)),
    });
  }
  let unrouted: string[] = [];
  if (tableWide) {
    try {
      unrouted = dumpMfc(table).unresolved;
    } catch {
      unrouted = []; // a diagnostic must not fail the check; the other findings still stand
    }
  }
  return { interfaces, vifsInUse, unrouted };
}
