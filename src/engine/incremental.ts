/**
 * Pure: the kernel steps of a transaction that only adds, replaces or deletes routes, computed
 * from the touched routes alone — O(change), not O(table) (a single `mfc add` must cost the same
 * at 100 000 routes as at 100). Returns undefined when the shortcut does not apply (a VIF other
 * than those the change itself brings or frees would move), and the caller does the full realize.
 */
import type { LinkResolver } from "../kernel/port.js";
import { addRefs, routeInterfaces, type Config } from "../model/types.js";
import type { Image, MfcImage, VifImage } from "./image.js";
import { sameVif } from "./image.js";
import { planSteps, type Step } from "./plan.js";
import { admitInterfaces, assignVifs, EntryShapes, realizeRoute, type Refusals } from "./realize.js";

export interface DeltaPlan {
  steps: Step[];
  vifs: Map<string, VifImage>;
  /** New image entry per touched route key; undefined = not installed. */
  mfcs: Map<string, MfcImage | undefined>;
  refs: Map<string, number>;
  waiting: Map<string, string>;
}

export function planTouched(
  base: Config, next: Config, touched: Iterable<string>, current: Image, refs: ReadonlyMap<string, number>, links: LinkResolver,
  refused: Refusals,
): DeltaPlan | undefined {
  const keys = [...touched];
  const nextRefs = new Map(refs);
  for (const key of keys) {
    const before = base.routes.get(key);
    const after = next.routes.get(key);
    if (before) addRefs(nextRefs, routeInterfaces(before), -1);
    if (after) addRefs(nextRefs, routeInterfaces(after), 1);
  }
  // Interfaces whose VIF may legitimately appear or disappear: referenced now xor before.
  const crossed = new Set<string>();
  for (const name of new Set([...refs.keys(), ...nextRefs.keys()])) {
    if (refs.has(name) !== nextRefs.has(name)) crossed.add(name);
  }
  admitInterfaces(nextRefs, refs);
  const { vifs, waiting } = assignVifs(nextRefs.keys(), next.vifs, current, links, refused.vifs);
  for (const name of new Set([...current.vifs.keys(), ...vifs.keys()])) {
    if (crossed.has(name)) continue;
    const a = current.vifs.get(name);
    const b = vifs.get(name);
    if (!a || !b || !sameVif(a, b)) return undefined; // untouched routes would need rewriting
  }
  const from: Image = { vifs: current.vifs, mfcs: new Map() };
  const to: Image = { vifs, mfcs: new Map() };
  const mfcs = new Map<string, MfcImage | undefined>();
  const shapes = new EntryShapes(vifs);
  for (const key of keys) {
    const old = current.mfcs.get(key);
    if (old) from.mfcs.set(key, old);
    const route = next.routes.get(key);
    const entry = route && !refused.routes.has(key) ? realizeRoute(key, route, shapes) : undefined;
    if (entry) to.mfcs.set(key, entry);
    mfcs.set(key, entry);
  }
  return { steps: planSteps(from, to), vifs, mfcs, refs: nextRefs, waiting };
}
