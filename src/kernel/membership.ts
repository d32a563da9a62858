/**
 * Group memberships (joins, SPEC §7) on plain UDP sockets of their own, by interface index
 * (MCAST_JOIN_GROUP and friends, RFC 3678): that works on an interface that is down or has no
 * address. The sockets are never bound, so no packet is ever queued on them. Closing them (stop,
 * exit, SIGKILL) makes the kernel leave every group they joined.
 *
 * The kernel caps memberships per socket (net.ipv4.igmp_max_memberships, default 20; sources per
 * group: net.ipv4.igmp_max_msf, default 10) and answers ENOBUFS past the cap, so a join that does
 * not fit goes to the next socket, and a new one is opened when all are full. One socket also
 * cannot hold an any-source and a source-specific join of the same group on one interface (EINVAL),
 * nor the same any-source join twice (EADDRINUSE): those go to another socket too.
 */
import { AF_INET, IPPROTO_IP, SOCK_CLOEXEC, SOCK_DGRAM } from "./abi.js";
import { KernelError, errnoOf } from "./errors.js";
import { lastErrno, sys } from "./libc.js";
import type { Membership } from "./port.js";
import { GROUP_SOURCE_REQ_SIZE, encodeGroupReq } from "./structs.js";

const MCAST_JOIN_GROUP = 42;
const MCAST_LEAVE_GROUP = 45;
const MCAST_JOIN_SOURCE_GROUP = 46;
const MCAST_LEAVE_SOURCE_GROUP = 47;
/** Named in errors, so an operator who raises the cap knows which one. */
const LIMITS = "net.ipv4.igmp_max_memberships / net.ipv4.igmp_max_msf";

interface Holder {
  fd: number;
  /** "ifindex/group" -> "any", or how many source-specific joins of that group it holds. */
  groups: Map<string, "any" | number>;
  /** The kernel said ENOBUFS: try others first until one of its memberships is left. */
  full: boolean;
}

const groupOf = (m: Membership): string => `${m.ifindex}/${m.group}`;
const keyOf = (m: Membership): string => `${groupOf(m)}/${m.source ?? "*"}`;

export class MembershipSockets {
  private readonly holders: Holder[] = [];
  private readonly where = new Map<string, Holder>();
  private readonly buf = Buffer.alloc(GROUP_SOURCE_REQ_SIZE);

  join(m: Membership): void {
    const call = m.source === null ? "MCAST_JOIN_GROUP" : "MCAST_JOIN_SOURCE_GROUP";
    if (this.where.has(keyOf(m))) throw new KernelError(call, errnoOf("EADDRINUSE"));
    for (const h of this.holders) {
      if (h.full || !fits(h, m)) continue;
      const errno = this.request(h.fd, m, true);
      if (errno === 0) return this.record(h, m);
      if (errno !== errnoOf("ENOBUFS")) throw new KernelError(call, errno);
      h.full = true;
    }
    const fd = sys.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new KernelError("socket(AF_INET, SOCK_DGRAM) for joins", lastErrno());
    const errno = this.request(fd, m, true);
    if (errno !== 0) {
      sys.close(fd);
      // A fresh socket holds nothing: ENOBUFS here means the cap itself is 0 (or memory is short).
      throw new KernelError(errno === errnoOf("ENOBUFS") ? `${call} (${LIMITS})` : call, errno);
    }
    const h: Holder = { fd, groups: new Map(), full: false };
    this.holders.push(h);
    this.record(h, m);
  }

  /** Leaving a membership that is not held (any more) is done already. */
  leave(m: Membership): void {
    const h = this.where.get(keyOf(m));
    if (!h) return;
    let whole = m.source === null;
    let errno = this.request(h.fd, m, false);
    // The interface is gone: the kernel dropped the membership from the device but the socket still
    // lists it, and a source-specific leave needs the device (ENODEV). Leaving the whole group on
    // that index frees the socket's entry (ip_mc_leave_group matches the index alone).
    if (errno === errnoOf("ENODEV") && !whole) {
      errno = this.request(h.fd, { ...m, source: null }, false);
      whole = true;
    }
    if (errno !== 0 && errno !== errnoOf("EADDRNOTAVAIL")) {
      throw new KernelError(m.source === null ? "MCAST_LEAVE_GROUP" : "MCAST_LEAVE_SOURCE_GROUP", errno);
    }
    this.forget(h, m, whole);
  }

  close(): void {
    for (const h of this.holders.splice(0)) sys.close(h.fd);
    this.where.clear();
  }

  private request(fd: number, m: Membership, join: boolean): number {
    const size = encodeGroupReq(this.buf, m.ifindex, m.group, m.source);
    const opt = m.source === null ? (join ? MCAST_JOIN_GROUP : MCAST_LEAVE_GROUP) : (join ? MCAST_JOIN_SOURCE_GROUP : MCAST_LEAVE_SOURCE_GROUP);
    return sys.setsockopt(fd, IPPROTO_IP, opt, this.buf, size) === 0 ? 0 : lastErrno();
  }

  private record(h: Holder, m: Membership): void {
    const g = groupOf(m);
    const held = h.groups.get(g);
    h.groups.set(g, m.source === null ? "any" : (typeof held === "number" ? held : 0) + 1);
    this.where.set(keyOf(m), h);
  }

  /** `whole`: the socket left the group on that interface altogether (every source of it). */
  private forget(h: Holder, m: Membership, whole: boolean): void {
    const g = groupOf(m);
    const held = h.groups.get(g);
    if (whole || held === "any" || held === undefined || held <= 1) {
      h.groups.delete(g);
      for (const [key, holder] of this.where) if (holder === h && key.startsWith(`${g}/`)) this.where.delete(key);
    } else {
      h.groups.set(g, held - 1);
      this.where.delete(keyOf(m));
    }
    h.full = false;
  }
}

/** Whether `m` may go on this socket at all (see the module comment). */
function fits(h: Holder, m: Membership): boolean {
  const held = h.groups.get(groupOf(m));
  if (held === undefined) return true;
  return m.source !== null && held !== "any";
}
