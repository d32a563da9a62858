/** The kernel's multicast tables (/proc in the router netns) compared with what the daemon shows. */
import assert from "node:assert/strict";
import { kernelTables } from "./daemon.js";
import type { Lab } from "./lab.js";

/** "239.1.2.3" -> "030201EF", the way /proc/net/ip_mr_cache prints addresses. */
export function procHex(ip: string): string {
  return ip.split(".").reverse().map((o) => Number(o).toString(16).toUpperCase().padStart(2, "0")).join("");
}

/**
 * The groups `dev` is a member of in the router's netns, from /proc/net/igmp, as procHex() prints
 * them; the all-hosts group 224.0.0.1 (every multicast device has it) is left out.
 */
export async function igmpMemberships(lab: Lab, dev: string): Promise<string[]> {
  const text = (await lab.exec(lab.ns.router, ["cat", "/proc/net/igmp"])).stdout;
  const section = text.split(/\n(?=\d+\s)/).find((b) => new RegExp(`^\\d+\\s+${dev}\\s*:`).test(b)) ?? "";
  return section.split("\n").flatMap((l) => /^\s+([0-9A-F]{8})\s/.exec(l)?.[1] ?? []).filter((g) => g !== procHex("224.0.0.1"));
}

/** The part of `mfc -j show` the comparison reads. */
export interface ShownTables {
  vifs: { vifi: number | null; ifname: string }[];
  routes: { source: string | null; group: string; iif: string; oifs: { ifname: string }[]; state: string }[];
}

/**
 * The kernel's default table (/proc/net/ip_mr_vif, ip_mr_cache) equals `show -j`: the same VIFs
 * (number -> name), and one resolved MFC entry per installed route with its iif and exactly the
 * oifs that have a VIF, compared by interface name. `where`, if given, prefixes the messages.
 */
export async function assertKernelEqualsShow(lab: Lab, s: ShownTables, where?: string): Promise<void> {
  const at = where === undefined ? "" : `${where}: `;
  const k = await kernelTables(lab);
  const kvifs = new Map(k.vif.map((row) => { const [idx = "", name = ""] = row.split(/\s+/); return [Number(idx), name] as const; }));
  const svifs = new Map(s.vifs.filter((v) => v.vifi !== null).map((v) => [v.vifi as number, v.ifname] as const));
  assert.deepEqual([...kvifs].sort((a, b) => a[0] - b[0]), [...svifs].sort((a, b) => a[0] - b[0]), `${at}/proc/net/ip_mr_vif = show -j vifs`);
  const kernel = k.cache.map((row) => {
    const [group = "", origin = "", iif = "", , , , ...oifs] = row.split(/\s+/);
    return { group, origin, iif: Number(iif), oifs: oifs.map((o) => Number(o.split(":")[0])) };
  }).filter((m) => kvifs.has(m.iif)) // unresolved entries (iif -1) are the kernel's own
    .map((m) => {
      const iif = kvifs.get(m.iif) as string;
      // A (*,G) entry carries ttls[iif] = 1 (kernel-native any-source): not an output.
      const oifs = m.oifs.map((v) => kvifs.get(v) ?? `?${v}`).filter((n) => !(m.origin === "00000000" && n === iif)).sort();
      return `${m.group} ${m.origin} ${iif} ${oifs.join(",")}`;
    }).sort();
  const named = new Set(svifs.values());
  const shown = s.routes.filter((r) => r.state === "installed").map((r) => {
    const oifs = r.oifs.map((o) => o.ifname).filter((n) => named.has(n)).sort();
    return `${procHex(r.group)} ${r.source === null ? "00000000" : procHex(r.source)} ${r.iif} ${oifs.join(",")}`;
  }).sort();
  assert.deepEqual(kernel, shown, `${at}/proc/net/ip_mr_cache = installed routes of show -j`);
}
