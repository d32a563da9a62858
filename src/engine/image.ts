/**
 * The kernel image: exactly what the daemon believes is programmed in its IPMR table. It is derived
 * from the operator's Config plus which interfaces exist (`realize`), and diffed into kernel steps.
 */
import type { Oif } from "../model/types.js";

export interface VifImage { vifi: number; ifname: string; ifindex: number; threshold: number }

export interface MfcImage {
  key: string;
  source: string | null;
  group: string;
  iif: string;
  parent: number;
  /** The oifs actually installed (those whose interface has a VIF), with their effective TTLs. */
  oifs: (Oif & { vifi: number })[];
  ttls: number[];
  /** Names a VIF whose device vanished: must be rewritten by the next plan, whatever it says. */
  stale?: true;
}

/** A membership the daemon holds: a join of the Config, on its interface's current index. */
export interface JoinImage { key: string; ifname: string; ifindex: number; group: string; source: string | null }

export interface Image {
  vifs: Map<string, VifImage>;
  mfcs: Map<string, MfcImage>;
  /** VIF numbers that stale entries still name: not handed out again until they are rewritten. */
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
  return a.vifi === b.vifi && a.ifindex === b.ifindex && a.threshold === b.threshold && a.ifname === b.ifname;
}

export function sameMfc(a: MfcImage, b: MfcImage): boolean {
  if (a.stale || b.stale) return false;
  return a.parent === b.parent && a.iif === b.iif && a.ttls.length === b.ttls.length &&
    a.ttls.every((t, i) => t === b.ttls[i]) && a.oifs.length === b.oifs.length &&
    a.oifs.every((o, i) => o.ifname === b.oifs[i]?.ifname);
}

export function originOf(m: { source: string | null }): string {
  return m.source ?? "0.0.0.0";
}
