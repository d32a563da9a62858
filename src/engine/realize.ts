/**
 * Pure: the kernel image a Config should produce, given which interfaces exist now and the image
 * currently installed (so VIF numbers stay stable across transactions). Best effort by design
 * (SPEC §6.3): an interface that is missing, finds no free VIF, or was refused by the kernel gets
 * no VIF and its routes stay pending with that reason; everything else is realized.
 */
import { invalid } from "../errors/codes.js";
import { isGroupRange } from "../model/ipv4.js";
import type { LinkResolver } from "../kernel/port.js";
import { MAXVIFS } from "../kernel/port.js";
import { familyOf, type Family } from "../model/family.js";
import { oifListKey } from "../model/oif_lists.js";
import {
  DEFAULT_THRESHOLD, neededInterfaces, routeInterfaces, vifKey, vifKeyFamily, vifKeyIfname, type Config, type Oif, type PinnedVif, type Route,
} from "../model/types.js";
import { vifSlot, type Image, type MfcImage, type VifImage } from "./image.js";

/** What the kernel refused while converging (engine/converge.ts): left out until the next retry. */
export interface Refusals {
  /** VIF key (vifKey) -> why it has no VIF (e.g. "kernel refused VIF: EADDRNOTAVAIL"). */
  vifs: ReadonlyMap<string, string>;
  /** Route key -> why it is not installed. */
  routes: ReadonlyMap<string, string>;
}

export const NO_REFUSALS: Refusals = { vifs: new Map(), routes: new Map() };

export function realize(config: Config, current: Image, links: LinkResolver, refused: Refusals = NO_REFUSALS): Image {
  const { vifs, waiting } = assignVifs(neededInterfaces(config), config.vifs, current, links, refused.vifs);
  const mfcs = new Map<string, MfcImage>();
  const shapes = new EntryShapes(vifs);
  for (const [key, route] of config.routes) {
    if (refused.routes.has(key)) continue;
    const m = realizeRoute(key, route, shapes);
    if (m) mfcs.set(key, m);
  }
  return { vifs, mfcs, waiting, refusedRoutes: refused.routes };
}

export interface VifAssignment {
  vifs: Map<string, VifImage>;
  /** Needed VIF keys that got no VIF, with the reason. */
  waiting: Map<string, string>;
}

export function assignVifs(
  needed: Iterable<string>, pinned: ReadonlyMap<string, PinnedVif>, current: Image, links: LinkResolver,
  refused: ReadonlyMap<string, string> = new Map(),
): VifAssignment {
  const vifs = new Map<string, VifImage>();
  const waiting = new Map<string, string>();
  // Per family: VIFs and MIFs are numbered in two kernel tables of MAXVIFS each.
  const used = new Set<number>();
  const wanted: { key: string; family: Family; ifname: string; ifindex: number; threshold: number }[] = [];
  for (const key of [...needed].sort()) {
    const ifname = vifKeyIfname(key);
    const ifindex = links.indexOf(ifname);
    if (ifindex === undefined) {
      waiting.set(key, "interface missing");
      continue;
    }
    const why = refused.get(key);
    if (why !== undefined) {
      waiting.set(key, why);
      continue;
    }
    const family = vifKeyFamily(key);
    const threshold = pinned.get(key)?.threshold ?? DEFAULT_THRESHOLD;
    const cur = current.vifs.get(key);
    if (cur && cur.ifindex === ifindex) {
      // Keep the VIF number: MFC entries that do not change keep forwarding untouched.
      vifs.set(key, { ...cur, threshold });
      used.add(vifSlot(family, cur.vifi));
    } else {
      wanted.push({ key, family, ifname, ifindex, threshold });
    }
  }
  // Prefer numbers nobody held before this transaction: an MFC entry still naming an old VIF
  // number must never forward into a new interface that inherited it (STACK.md, stale indices).
  const previouslyHeld = new Set([...current.vifs.values()].map((v) => vifSlot(v.family, v.vifi)).concat([...(current.staleVifis ?? [])]));
  for (const { key, ...w } of wanted) {
    const vifi = firstFree(w.family, used, previouslyHeld) ?? firstFree(w.family, used, new Set());
    if (vifi === undefined) {
      waiting.set(key, `${w.family === 6 ? "MIF" : "VIF"} limit: ${MAXVIFS} in use`);
      continue;
    }
    used.add(vifSlot(w.family, vifi));
    vifs.set(key, { vifi, ...w });
  }
  return { vifs, waiting };
}

/**
 * Admission of a change (never of a restore): a transaction may not bring the number of
 * interfaces the configuration names, present or missing, past the kernel's VIF limit (or MIF
 * limit, counted apart) — else a route accepted over a missing interface would not fit when it
 * returns. A configuration already past the limit (acknowledged before) blocks only changes that
 * name yet another interface of that family.
 */
export function admitInterfaces(nextNames: ReadonlySet<string> | ReadonlyMap<string, unknown>, currentNames: ReadonlyMap<string, unknown>): void {
  if (nextNames.size <= MAXVIFS) return;
  const count: Record<Family, number> = { 4: 0, 6: 0 };
  for (const key of nextNames.keys()) count[vifKeyFamily(key)]++;
  for (const key of nextNames.keys()) {
    const family = vifKeyFamily(key);
    if (count[family] > MAXVIFS && !currentNames.has(key)) {
      const what = family === 6 ? "MIFs" : "VIFs";
      throw invalid("E_VIF_LIMIT", `the change needs more than ${MAXVIFS} ${what} (kernel limit); '${vifKeyIfname(key)}' has none left (interfaces that are missing now count too).`, {
        needed: count[family], limit: MAXVIFS, ...(family === 6 ? { family } : {}),
      });
    }
  }
}

function firstFree(family: Family, used: Set<number>, avoid: Set<number>): number | undefined {
  for (let i = 0; i < MAXVIFS; i++) if (!used.has(vifSlot(family, i)) && !avoid.has(vifSlot(family, i))) return i;
  return undefined;
}

export function realizeRoute(key: string, route: Route, shapes: EntryShapes): MfcImage | undefined {
  // A template (group range) has no entry of its own: its VIFs catch the flows (daemon/flows.ts).
  if (isGroupRange(route.group)) return undefined;
  return realizeEntry(key, route, route.source, route.group, shapes);
}

/**
 * The kernel entry of `route`'s interfaces for one (source, group): the route's own, or one flow of
 * a template (source and group of the flow, always an (S,G) entry).
 */
export function realizeEntry(key: string, route: Route, source: string | null, group: string, shapes: EntryShapes): MfcImage | undefined {
  const shape = shapes.of(familyOf(group), route, source === null);
  if (!shape) return undefined;
  return { key, source, group, iif: route.iif, parent: shape.parent, oifs: shape.oifs, ttls: shape.ttls };
}

/** What an entry takes from its route's interfaces and their VIFs: the same for every route alike. */
interface Shape { parent: number; oifs: MfcImage["oifs"]; ttls: MfcImage["ttls"] }

/**
 * The shapes of one realize pass over one VIF assignment, each computed once and shared (frozen)
 * by every entry of the same family, iif, any-source flag and oif list: fan-outs repeat a few
 * shapes over many groups, and at 100 000 routes one oifs and one ttls array per entry cost ~14 MB
 * and most of the pass's time in allocation.
 */
export class EntryShapes {
  private readonly memo = new Map<string, Shape | null>();
  /**
   * The last shape asked for, by the route's own oif list: routes alike share that list
   * (model/oif_lists.ts) and usually come in a row, so most lookups build no key at all.
   */
  private last: { family: Family; anySource: boolean; iif: string; oifs: Route["oifs"]; shape: Shape | null } | undefined;

  constructor(readonly vifs: ReadonlyMap<string, VifImage>) {}

  of(family: Family, route: Pick<Route, "iif" | "oifs">, anySource: boolean): Shape | undefined {
    const last = this.last;
    if (last?.oifs === route.oifs && last.iif === route.iif && last.family === family && last.anySource === anySource) return last.shape ?? undefined;
    // No whitespace in an interface name (oifListKey): the spaces cannot be forged.
    const id = `${family} ${anySource ? "*" : "S"} ${route.iif} ${oifListKey(route.oifs)}`;
    let shape = this.memo.get(id);
    if (shape === undefined) {
      shape = computeShape(family, route, anySource, this.vifs) ?? null;
      this.memo.set(id, shape);
    }
    this.last = { family, anySource, iif: route.iif, oifs: route.oifs, shape };
    return shape ?? undefined;
  }
}

function computeShape(family: Family, route: Pick<Route, "iif" | "oifs">, anySource: boolean, vifs: ReadonlyMap<string, VifImage>): Shape | undefined {
  const iif = vifs.get(vifKey(family, route.iif));
  if (!iif) return undefined;
  const present: { o: Oif; v: VifImage }[] = [];
  for (const o of route.oifs) {
    const v = vifs.get(vifKey(family, o.ifname));
    if (v) present.push({ o, v });
  }
  if (present.length === 0) return undefined;
  // Sized to the highest VIF used: no trailing zeros, so entries compare by value.
  const top = Math.max(anySource ? iif.vifi : -1, ...present.map((p) => p.v.vifi));
  const ttls: number[] = new Array<number>(top + 1).fill(0);
  // The kernel forwards on VIF v only if packet TTL > ttls[v]; it ignores the VIF threshold
  // itself, so the stricter of the two goes into the entry. (IPv6: both are 1, schema.ts.)
  for (const { o, v } of present) ttls[v.vifi] = Math.max(o.ttl, v.threshold);
  // (*,G) matches only when ttls[parent] is set (kernel-native any-source entry, STACK.md).
  if (anySource) ttls[iif.vifi] = 1;
  const oifs = present.map(({ o, v }) => Object.freeze({ ifname: o.ifname, ttl: o.ttl, vifi: v.vifi }));
  return { parent: iif.vifi, oifs: Object.freeze(oifs), ttls: Object.freeze(ttls) };
}

/** Why a route is not (fully) installed, for `show`, `status` and `mfc check`. */
export function pendingReason(key: string, route: Route, image: Image): string | undefined {
  const refused = image.refusedRoutes?.get(key);
  if (refused !== undefined) return refused;
  const missing = routeInterfaces(route).filter((k) => !image.vifs.has(k));
  if (missing.length === 0) return undefined;
  // Grouped by reason: "interface 'eth1', 'eth2' missing; interface 'eth9': VIF limit: 32 in use".
  const byReason = new Map<string, string[]>();
  for (const k of missing) {
    const reason = image.waiting?.get(k) ?? "interface missing";
    byReason.set(reason, [...(byReason.get(reason) ?? []), `'${vifKeyIfname(k)}'`]);
  }
  return [...byReason].map(([reason, names]) => reason === "interface missing"
    ? `interface ${names.join(", ")} missing`
    : `interface ${names.join(", ")}: ${reason}`).join("; ");
}
