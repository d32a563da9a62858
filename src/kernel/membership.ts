/**
 * Group memberships (joins, SPEC §7) on plain UDP sockets of their own, by interface index
 * (MCAST_JOIN_GROUP and friends, RFC 3678): that works on an interface that is down or has no
 * address. The sockets are never bound, so no packet is ever queued on them. Closing them (stop,
 * exit, SIGKILL) makes the kernel leave every group they joined. IPv4 joins go on AF_INET sockets
 * (level IPPROTO_IP), IPv6 joins on AF_INET6 ones (level IPPROTO_IPV6, the same option numbers);
 * a socket holds one family only.
 *
 * The kernel caps memberships per socket and answers past the cap with an errno that means "this
 * socket is full", so a join that does not fit goes to the next socket, and a new one is opened
 * when all are full:
 * - IPv4 (net/ipv4/igmp.c): ENOBUFS past net.ipv4.igmp_max_memberships (default 20) groups, or
 *   net.ipv4.igmp_max_msf (default 10) sources of one group.
 * - IPv6 (net/ipv6/mcast.c): no count of groups; each membership is sock_kmalloc'ed against
 *   net.core.optmem_max, and __ipv6_sock_mc_join answers ENOMEM when that is spent; sources answer
 *   ENOBUFS past net.ipv6.mld_max_msf (default 64, init namespace only) or when their list cannot
 *   grow within optmem_max.
 * One socket also never holds an any-source and a source-specific join of the same group on one
 * interface, nor the same any-source join twice: those go to another socket. (Measured on 6.18, both
 * families: a source-specific join after an any-source one silently turns the membership into
 * INCLUDE {source} — ip_mc_source/ip6_mc_source switch an empty filter's mode; the other order is
 * EADDRINUSE.)
 */
import { AF_INET, AF_INET6, IPPROTO_IP, IPPROTO_IPV6, SOCK_CLOEXEC, SOCK_DGRAM } from "./abi.js";
import { KernelError, errnoOf } from "./errors.js";
import { lastErrno, sys } from "./libc.js";
import { familyOf, type Family, type Membership } from "./port.js";
import { GROUP_SOURCE_REQ_SIZE, encodeGroupReq } from "./structs.js";

// linux/in.h: the same numbers at level IPPROTO_IP and IPPROTO_IPV6.
const MCAST_JOIN_GROUP = 42;
const MCAST_LEAVE_GROUP = 45;
const MCAST_JOIN_SOURCE_GROUP = 46;
const MCAST_LEAVE_SOURCE_GROUP = 47;

interface FamilyAbi { domain: number; level: number; full: readonly number[]; limits: string }

const ABI: Record<Family, FamilyAbi> = {
  // Named in errors, so an operator who raises the cap knows which one.
  4: { domain: AF_INET, level: IPPROTO_IP, full: [errnoOf("ENOBUFS")], limits: "net.ipv4.igmp_max_memberships / net.ipv4.igmp_max_msf" },
  6: { domain: AF_INET6, level: IPPROTO_IPV6, full: [errnoOf("ENOBUFS"), errnoOf("ENOMEM")], limits: "net.core.optmem_max / net.ipv6.mld_max_msf" },
};

interface Holder {
  fd: number;
  family: Family;
  /** "ifindex/group" -> "any", or how many source-specific joins of that group it holds. */
  groups: Map<string, "any" | number>;
  /** The kernel said the socket is full: try others first until one of its memberships is left. */
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
    const family = familyOf(m.group);
    const abi = ABI[family];
    for (const h of this.holders) {
      if (h.family !== family || h.full || !fits(h, m)) continue;
      const errno = this.tryJoin(h, m);
      if (errno === 0) return this.record(h, m);
      if (!abi.full.includes(errno)) throw new KernelError(call, errno);
      h.full = true;
    }
    const fd = sys.socket(abi.domain, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new KernelError(`socket(${family === 6 ? "AF_INET6" : "AF_INET"}, SOCK_DGRAM) for joins`, lastErrno());
    const h: Holder = { fd, family, groups: new Map(), full: false };
    const errno = this.tryJoin(h, m);
    if (errno !== 0) {
      sys.close(fd);
      // A fresh socket holds nothing: "full" here means the cap itself is too small (or memory is short).
      throw new KernelError(abi.full.includes(errno) ? `${call} (${abi.limits})` : call, errno);
    }
    this.holders.push(h);
    this.record(h, m);
  }

  /** Leaving a membership that is not held (any more) is done already. */
  leave(m: Membership): void {
    const h = this.where.get(keyOf(m));
    if (!h) return;
    let whole = m.source === null;
    let errno = this.request(h, m, false);
    // The interface is gone: the kernel dropped the membership from the device but the socket still
    // lists it, and a source-specific leave needs the device (ENODEV). Leaving the whole group on
    // that index frees the socket's entry (ip_mc_leave_group matches the index alone).
    if (errno === errnoOf("ENODEV") && !whole) {
      errno = this.request(h, { ...m, source: null }, false);
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

  /**
   * A source-specific join first joins the group (INCLUDE, no source) and then adds the source; when
   * the second step fails the kernel keeps the first (do_ipv6_mcast_group_source, and IPv4's
   * do_mcast_group_source, undo nothing), which would make a later any-source join of that group on
   * this socket EADDRINUSE. So a group the socket did not hold before is left again.
   */
  private tryJoin(h: Holder, m: Membership): number {
    const errno = this.request(h, m, true);
    if (errno !== 0 && m.source !== null && !h.groups.has(groupOf(m))) this.request(h, { ...m, source: null }, false);
    return errno;
  }

  private request(h: Holder, m: Membership, join: boolean): number {
    const size = encodeGroupReq(this.buf, m.ifindex, m.group, m.source);
    const opt = m.source === null ? (join ? MCAST_JOIN_GROUP : MCAST_LEAVE_GROUP) : (join ? MCAST_JOIN_SOURCE_GROUP : MCAST_LEAVE_SOURCE_GROUP);
    return sys.setsockopt(h.fd, ABI[h.family].level, opt, this.buf, size) === 0 ? 0 : lastErrno();
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
