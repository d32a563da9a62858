/**
 * The only view of the kernel that the engine and the daemon have. Implemented by the real
 * koffi binding (`mroute.ts`) and by `FakeKernel` (fault injection in tests). Addresses are
 * dotted-quad strings; `origin` "0.0.0.0" is the any-source (*,G) entry.
 */
export interface MfcEntry {
  origin: string;
  group: string;
  /** Input VIF index. */
  parent: number;
  /** Per-VIF TTL thresholds, index = vifi; 0 = not an output interface. Length <= MAXVIFS. */
  ttls: readonly number[];
}

export interface VifSpec {
  vifi: number;
  ifindex: number;
  threshold: number;
}

/** A group membership on one interface (by index: works on an interface without an address). */
export interface Membership { ifindex: number; group: string; source: string | null }

export interface SgCounters { packets: number; bytes: number; wrongIf: number }
export interface VifCounters { pktsIn: number; bytesIn: number; pktsOut: number; bytesOut: number }

export interface KernelPort {
  addVif(vif: VifSpec): void;
  delVif(vif: VifSpec): void;
  /** MRT_ADD_MFC: silently replaces an existing (origin, group) entry (kernel behaviour). */
  addMfc(entry: MfcEntry): void;
  /** MRT_DEL_MFC: ENOENT when the (origin, group) entry does not exist. */
  delMfc(entry: Pick<MfcEntry, "origin" | "group" | "parent">): void;
  /**
   * MCAST_JOIN_GROUP / MCAST_JOIN_SOURCE_GROUP. The kernel caps memberships per socket
   * (net.ipv4.igmp_max_memberships, igmp_max_msf): the implementation spreads them over sockets.
   */
  join(m: Membership): void;
  /** MCAST_LEAVE_GROUP / MCAST_LEAVE_SOURCE_GROUP; also when the interface has gone since. */
  leave(m: Membership): void;
  /** MRT_FLUSH of every VIF and MFC entry of our table (used only to resynchronise). */
  flushAll(): void;
  /** SIOCGETSGCNT; undefined when the kernel has no such entry. */
  sgCounters(origin: string, group: string): SgCounters | undefined;
  /** SIOCGETVIFCNT; undefined when the VIF does not exist. */
  vifCounters(vifi: number): VifCounters | undefined;
  /** MRT_DONE and close: the kernel drops every VIF and MFC entry we added. Throws KernelError if MRT_DONE failed (the close still releases the table). */
  close(): void;
}

/** Interface name <-> index lookups, in the daemon's network namespace. */
export interface LinkResolver {
  indexOf(ifname: string): number | undefined;
  nameOf(ifindex: number): string | undefined;
}

export const MAXVIFS = 32;
