/**
 * The only view of the kernel that the engine and the daemon have. Implemented by the real
 * koffi binding (`tables.ts`: the IPv4 table of `mroute.ts` and the IPv6 one of `mroute6.ts`) and
 * by `FakeKernel` (fault injection in tests). Addresses are strings, dotted quads or IPv6 text; the
 * family of an entry, a membership or a counter request follows from its group. `origin`
 * "0.0.0.0" / "::" is the any-source (*,G) entry.
 */
import type { Family } from "../model/family.js";
import type { KernelError } from "./errors.js";

export { anySource, familyOf, type Family } from "../model/family.js";

export interface MfcEntry {
  origin: string;
  group: string;
  /** Input VIF index. */
  parent: number;
  /**
   * Per-VIF TTL thresholds, index = vifi; 0 = not an output interface. Length <= MAXVIFS. IPv6
   * (mf6cctl) has only a set of MIFs: every non-zero entry is a member, and the kernel forwards a
   * packet whose hop limit is > 1 (ip6mr_mfc_add sets each member's threshold to 1).
   */
  ttls: readonly number[];
}

/** A VIF (IPv4) or a MIF (IPv6): separate tables, 32 of each. */
export interface VifSpec {
  family: Family;
  vifi: number;
  ifindex: number;
  threshold: number;
}

/** A group membership on one interface (by index: works on an interface without an address). */
export interface Membership { ifindex: number; group: string; source: string | null }

export interface SgCounters { packets: number; bytes: number; wrongIf: number }
export interface VifCounters { pktsIn: number; bytesIn: number; pktsOut: number; bytesOut: number }

/** A kernel upcall: a packet of (source, group) arrived on VIF/MIF `vifi` and no MFC entry matched. */
export interface NoCache { vifi: number; source: string; group: string }

export interface KernelPort {
  /** MRT_ADD_VIF / MRT6_ADD_MIF. The IPv6 table is opened on first use (EADDRINUSE: owned by another process). */
  addVif(vif: VifSpec): void;
  delVif(vif: VifSpec): void;
  /** MRT_ADD_MFC: silently replaces an existing (origin, group) entry (kernel behaviour). */
  addMfc(entry: MfcEntry): void;
  /**
   * addMfc of each entry, all at once (a restore, a large apply): each is independent of the
   * others, so one refused does not stop the rest. Returns, per entry, undefined when it is in
   * the table, else the KernelError addMfc would have thrown for it. The (origin, group) pairs
   * must be distinct. `iifIndex`: the device of the parent VIF, or 0 when it is not known
   * (tables.ts sends IPv4 entries through rtnetlink, where the kernel takes the VIF on that device
   * as the parent; without one it refuses, and MRT_ADD_MFC decides).
   */
  addMfcs(entries: readonly (MfcEntry & { iifIndex: number })[]): (KernelError | undefined)[];
  /** MRT_DEL_MFC: ENOENT when the (origin, group) entry does not exist. */
  delMfc(entry: Pick<MfcEntry, "origin" | "group" | "parent">): void;
  /**
   * MCAST_JOIN_GROUP / MCAST_JOIN_SOURCE_GROUP. The kernel caps memberships per socket
   * (IPv4: net.ipv4.igmp_max_memberships, igmp_max_msf; IPv6: net.core.optmem_max,
   * net.ipv6.mld_max_msf): the implementation spreads them over sockets.
   */
  join(m: Membership): void;
  /** MCAST_LEAVE_GROUP / MCAST_LEAVE_SOURCE_GROUP; also when the interface has gone since. */
  leave(m: Membership): void;
  /** MRT_FLUSH / MRT6_FLUSH of every VIF, MIF and MFC entry of our tables (used only to resynchronise). */
  flushAll(): void;
  /** SIOCGETSGCNT; undefined when the kernel has no such entry. */
  sgCounters(origin: string, group: string): SgCounters | undefined;
  /** SIOCGETVIFCNT / SIOCGETMIFCNT_IN6; undefined when the VIF does not exist. */
  vifCounters(family: Family, vifi: number): VifCounters | undefined;
  /** MRT_DONE / MRT6_DONE and close: the kernel drops every VIF and MFC entry we added. Throws KernelError if MRT_DONE failed (the close still releases the table). */
  close(): void;
}

/** Interface name <-> index lookups, in the daemon's network namespace. */
export interface LinkResolver {
  indexOf(ifname: string): number | undefined;
  nameOf(ifindex: number): string | undefined;
}

/** MAXVIFS (linux/mroute.h) and MAXMIFS (linux/mroute6.h): 32 each, counted per family. */
export const MAXVIFS = 32;
