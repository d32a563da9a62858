/**
 * The kernel image: exactly what the daemon believes is programmed in its IPMR table. It is derived
 * from the operator's Config plus which interfaces exist (`realize`), and diffed into kernel steps.
 */
import { anySource, familyOf, type Family } from "../model/family.js";
import { vifKey, type Oif } from "../model/types.js";

/** A VIF (family 4) or MIF (family 6), keyed by vifKey() in Image.vifs. */
export interface VifImage { family: Family; vifi: number; ifname: string; ifindex: number; threshold: number }

export interface MfcImage {
  key: string;
  source: string | null;
  group: string;
  iif: string;
  parent: number;
  /**
   * The oifs actually installed (those whose interface has a VIF), with their effective TTLs.
   * Shared, frozen, by the entries of one shape (realize.ts: EntryShapes).
   */
  oifs: readonly Readonly<Oif & { vifi: number }>[];
  ttls: readonly number[];
  /** Names a VIF whose device vanished: must be rewritten by the next plan, whatever it says. */
  stale?: true;
}

/** A membership the daemon holds: a join of the Config, on its interface's current index. */
export interface JoinImage { key: string; ifname: string; ifindex: number; group: string; source: string | null }

export interface Image {
  /** By vifKey(): an interface's VIF and its MIF are two entries. */
  vifs: Map<string, VifImage>;
  mfcs: Map<string, MfcImage>;
  /** VIF slots (vifSlot) that stale entries still name: not handed out again until they are rewritten. */
  staleVifis?: ReadonlySet<number>;
  /** Interfaces the config needs that have no VIF, with the reason (missing, VIF limit, refused). */
  waiting?: ReadonlyMap<string, string>;
  /** Routes the kernel refused to install (route key -> reason); retried by the next reconcile. */
  refusedRoutes?: ReadonlyMap<string, string>;
  /** Memberships held (join key -> membership); absent = none. */
  joins?: ReadonlyMap<string, JoinImage>;
  /** Joins of the Config not held now, with the reason (interface missing, kernel refused). */
  joinsWaiting?: ReadonlyMap<string, string>;
}

export function emptyImage(): Image {
  return { vifs: new Map(), mfcs: new Map() };
}

export function sameVif(a: VifImage, b: VifImage): boolean {
  return a.family === b.family && a.vifi === b.vifi && a.ifindex === b.ifindex && a.threshold === b.threshold && a.ifname === b.ifname;
}

export function sameMfc(a: MfcImage, b: MfcImage): boolean {
  if (a.stale || b.stale) return false;
  if (a.parent !== b.parent || a.iif !== b.iif) return false;
  // Entries of one shape share their arrays (realize.ts): equal without a look inside.
  return (a.ttls === b.ttls || (a.ttls.length === b.ttls.length && a.ttls.every((t, i) => t === b.ttls[i]))) &&
    (a.oifs === b.oifs || (a.oifs.length === b.oifs.length && a.oifs.every((o, i) => o.ifname === b.oifs[i]?.ifname)));
}

export function originOf(m: { source: string | null; group: string }): string {
  return m.source ?? anySource(familyOf(m.group));
}

/** One number per VIF or MIF: VIFs are 0-31, MIF n is 32 + n (two kernel tables of 32). */
export function vifSlot(family: Family, vifi: number): number {
  return family === 6 ? 32 + vifi : vifi;
}

/** The slots an MFC entry names: its parent and its oifs, in its family's table. */
export function entrySlots(m: MfcImage): number[] {
  const f = familyOf(m.group);
  return [vifSlot(f, m.parent), ...m.oifs.map((o) => vifSlot(f, o.vifi))];
}

/** How many VIFs (4) and MIFs (6) an image holds, each against its own kernel limit of 32. */
export function vifCounts(image: Pick<Image, "vifs">): Record<Family, number> {
  const n = { 4: 0, 6: 0 };
  for (const v of image.vifs.values()) n[v.family]++;
  return n;
}

/** A VIF's key in Image.vifs (and Config.vifs): vifKey of its family and interface. */
export const keyOfVif = (v: Pick<VifImage, "family" | "ifname">): string => vifKey(v.family, v.ifname);
