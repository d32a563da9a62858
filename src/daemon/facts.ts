/** Effects: gathers the facts diagnostics need, in the daemon's own network namespace. */
import { readFileSync } from "node:fs";
import { IFF_MULTICAST, IFF_RUNNING, IFF_UP, interfaceFlags } from "../kernel/ifflags.js";
import type { Facts, InterfaceFacts } from "../diagnostics/checks.js";

function sysctlInt(path: string): number {
  try {
    return Number(readFileSync(path, "utf8").trim()) || 0;
  } catch {
    return 0;
  }
}

export function gatherFacts(ifnames: Iterable<string>, vifsInUse: number): Facts {
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
  return { interfaces, vifsInUse };
}
