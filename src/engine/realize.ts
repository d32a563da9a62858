/**
 * Pure: the kernel image a Config should produce, given which interfaces exist now and the image
 * currently installed (so VIF numbers stay stable across transactions).
 */
import { invalid } from "../errors/codes.js";
import type { LinkResolver } from "../kernel/port.js";
import { MAXVIFS } from "../kernel/port.js";
import { DEFAULT_THRESHOLD, neededInterfaces, type Config, type PinnedVif, type Route } from "../model/types.js";
import type { Image, MfcImage, VifImage } from "./image.js";

export function realize(config: Config, current: Image, links: LinkResolver): Image {
  const vifs = assignVifs(neededInterfaces(config), config.vifs, current, links);
  const mfcs = new Map<string, MfcImage>();
  for (const [key, route] of config.routes) {
    const m = realizeRoute(key, route, vifs);
    if (m) mfcs.set(key, m);
  }
  return { vifs, mfcs };
}

export function assignVifs(
  needed: Iterable<string>, pinned: ReadonlyMap<string, PinnedVif>, current: Image, links: LinkResolver,
): Map<string, VifImage> {
  const result = new Map<string, VifImage>();
  const used = new Set<number>();
  const wanted: { ifname: string; ifindex: number; threshold: number }[] = [];
  for (const ifname of [...needed].sort()) {
    const ifindex = links.indexOf(ifname);
    if (ifindex === undefined) continue; // missing interface: routes using it stay pending
    const threshold = pinned.get(ifname)?.threshold ?? DEFAULT_THRESHOLD;
    const cur = current.vifs.get(ifname);
    if (cur && cur.ifindex === ifindex) {
      // Keep the VIF number: MFC entries that do not change keep forwarding untouched.
      result.set(ifname, { ...cur, threshold });
      used.add(cur.vifi);
    } else {
      wanted.push({ ifname, ifindex, threshold });
    }
  }
  // Prefer numbers nobody held before this transaction: an MFC entry still naming an old VIF
  // number must never forward into a new interface that inherited it (STACK.md, stale indices).
  const previouslyHeld = new Set([...current.vifs.values()].map((v) => v.vifi).concat([...(current.staleVifis ?? [])]));
  for (const w of wanted) {
    const vifi = firstFree(used, previouslyHeld) ?? firstFree(used, new Set());
    if (vifi === undefined) {
      throw invalid("E_VIF_LIMIT", `the change needs more than ${MAXVIFS} VIFs (kernel limit); '${w.ifname}' has none left.`, {
        needed: result.size + wanted.length, limit: MAXVIFS,
      });
    }
    used.add(vifi);
    result.set(w.ifname, { vifi, ...w });
  }
  return result;
}

function firstFree(used: Set<number>, avoid: Set<number>): number | undefined {
  for (let i = 0; i < MAXVIFS; i++) if (!used.has(i) && !avoid.has(i)) return i;
  return undefined;
}

export function realizeRoute(key: string, route: Route, vifs: Map<string, VifImage>): MfcImage | undefined {
  const iif = vifs.get(route.iif);
  if (!iif) return undefined;
  // Exact-size arrays: at 100 000 routes, push()-grown spare capacity measured tens of MB.
  let present = 0;
  for (const o of route.oifs) if (vifs.has(o.ifname)) present++;
  if (present === 0) return undefined;
  const oifs: MfcImage["oifs"] = new Array<MfcImage["oifs"][number]>(present);
  let top = route.source === null ? iif.vifi : -1;
  let n = 0;
  for (const o of route.oifs) {
    const v = vifs.get(o.ifname);
    if (!v) continue;
    oifs[n++] = { ifname: o.ifname, ttl: o.ttl, vifi: v.vifi };
    if (v.vifi > top) top = v.vifi;
  }
  // Sized to the highest VIF used: no trailing zeros, so entries compare by value.
  const ttls: number[] = new Array<number>(top + 1).fill(0);
  for (const o of oifs) {
    // The kernel forwards on VIF v only if packet TTL > ttls[v]; it ignores the VIF threshold
    // itself, so the stricter of the two goes into the entry.
    ttls[o.vifi] = Math.max(o.ttl, (vifs.get(o.ifname) as VifImage).threshold);
  }
  // (*,G) matches only when ttls[parent] is set (kernel-native any-source entry, STACK.md).
  if (route.source === null) ttls[iif.vifi] = 1;
  return { key, source: route.source, group: route.group, iif: route.iif, parent: iif.vifi, oifs, ttls };
}

/** Why a route is not (fully) installed, for `show`. */
export function pendingReason(route: Route, image: Image): string | undefined {
  const missing = [route.iif, ...route.oifs.map((o) => o.ifname)].filter((n) => !image.vifs.has(n));
  if (missing.length === 0) return undefined;
  return `interface ${missing.map((n) => `'${n}'`).join(", ")} missing`;
}
