/**
 * Many IPv4 MFC entries added at once through rtnetlink: one RTM_NEWROUTE (family
 * RTNL_FAMILY_IPMR) per entry, CHUNK of them per send(2). The kernel runs each message through the
 * same ipmr_mfc_add() as MRT_ADD_MFC (net/ipv4/ipmr.c ipmr_rtm_route, rtm_to_ipmr_mfcc), in the
 * sender's context, before send returns; a refused message leaves an NLMSG_ERROR naming its
 * sequence number in our receive queue and does not stop the others. What this saves is one
 * system call and one koffi call per entry: 100 000 entries took 75-100 ms this way in a bare loop,
 * against 280-320 ms for the MRT_ADD_MFC loop through koffi and ~215 ms for it in C
 * (docs/performance.md, which also has the bench's floor rows for KernelTables.addMfcs).
 *
 * The message says exactly what an mfcctl says:
 *   rtmsg { family 128, dst_len 32, src_len 32, table (u8, the real id in RTA_TABLE), protocol
 *     RTPROT_MROUTED: the entry counts as the routing socket's own (mrtsock = 1: not MFC_STATIC, so
 *     MRT_DONE and exit drop it like the others), type RTN_MULTICAST }
 *   RTA_SRC origin, RTA_DST group, RTA_TABLE id,
 *   RTA_IIF: the parent VIF's device; the kernel takes the VIF on that device as the parent
 *     (ipmr_find_vif), which is `parent` whenever the caller's picture of the VIFs is right,
 *   RTA_MULTIPATH: one rtnexthop per VIF index, hops = its TTL (ipmr_nla_get_ttls), as mfcc_ttls.
 * No RTA_PREFSRC, so the parent is not part of the lookup key (-1, as for MRT_ADD_MFC).
 *
 * The caller treats this as a fast path only: whatever the kernel refused here, or whatever could
 * not be sent, it adds again with MRT_ADD_MFC, whose answer is the one that counts (tables.ts).
 * An add is idempotent (ipmr_mfc_add replaces an entry with the same key), so trying twice is safe.
 * Where rtnetlink refuses RTM_NEWROUTE itself (EPERM: no CAP_NET_ADMIN, which MRT_ADD_MFC on our
 * own socket does not need; EOPNOTSUPP: a kernel before 4.5), the fast path is not tried again.
 */
import { AF_NETLINK, MSG_DONTWAIT, NETLINK_CAP_ACK, NETLINK_ROUTE, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_RAW, SOL_NETLINK } from "./abi.js";
import { KernelError, errnoOf } from "./errors.js";
import { lastErrno, sys } from "./libc.js";
import {
  NLMSG_ERROR, NLMSG_HDRLEN, NLM_F_REQUEST, RTA_DST, RTA_SRC, RTA_TABLE, RTMSG_LEN, RTM_NEWROUTE, RTNL_FAMILY_IPMR, align4, mrTableId,
} from "./netlink.js";
import type { MfcEntry } from "./port.js";
import { ipv4Value } from "./structs.js";

const EINTR = errnoOf("EINTR");
const EAGAIN = errnoOf("EAGAIN");
const ENOBUFS = errnoOf("ENOBUFS");
const EPERM = errnoOf("EPERM");
const EOPNOTSUPP = errnoOf("EOPNOTSUPP");
const NLM_F_CREATE = 0x400;
const RTPROT_MROUTED = 17;
const RTN_MULTICAST = 5;
const RTA_IIF = 3;
const RTA_MULTIPATH = 9;
/** rtmsg, RTA_SRC, RTA_DST, RTA_IIF, RTA_TABLE and the RTA_MULTIPATH header; + 8 per rtnexthop. */
const FIXED = NLMSG_HDRLEN + RTMSG_LEN + 4 * 8 + 4;
/** Where a message holds its sequence number, origin and group (the values of RTA_SRC, RTA_DST). */
const SEQ_AT = 8;
const SRC_AT = NLMSG_HDRLEN + RTMSG_LEN + 4;
const DST_AT = SRC_AT + 8;
const MAX_MESSAGE = FIXED + 32 * 8;
/**
 * Messages per send. Each refused one queues an error of ~1 KiB of receive buffer (one skb, only
 * the header echoed with NETLINK_CAP_ACK): 64 stay well inside the default 208 KiB, so no error is
 * lost even when every message of a send is refused. (Should errors be lost anyway, the whole
 * send counts as unconfirmed: `refusals`.)
 */
const CHUNK = 64;

/** An entry with the ifindex of its parent VIF's device (rtnetlink names the input interface by device). */
export type DeviceMfc = MfcEntry & { iifIndex: number };

export class MfcNetlinkAdds {
  private fd = -1;
  /** rtnetlink refused RTM_NEWROUTE as such (EPERM, EOPNOTSUPP): every add goes the usual way. */
  private unavailable = false;
  private readonly buf = Buffer.alloc(CHUNK * MAX_MESSAGE);
  private readonly recvBuf = Buffer.alloc(64 * 1024);
  private seq = 0;
  private readonly table: number;
  /**
   * The last message of this send whose input interface and TTLs were written out: entries of one
   * shape share their frozen `ttls` (engine/realize.ts), so the next one copies it and writes only
   * its sequence number, origin and group.
   */
  private template: { at: number; length: number; ttls: readonly number[]; iifIndex: number } | undefined;

  /** table: the IPMR table id (undefined or 0: the kernel's default table, 253). */
  constructor(table: number | undefined) {
    this.table = mrTableId(table, 4);
  }

  /**
   * Adds `entries`; returns the indices of those the kernel did not confirm: refused, or in a send
   * that failed. Throws only a KernelError for the socket itself (the caller then uses MRT_ADD_MFC).
   */
  add(entries: readonly DeviceMfc[]): number[] {
    if (this.unavailable) return entries.map((_, i) => i);
    const fd = this.open();
    const unconfirmed: number[] = [];
    for (let first = 0; first < entries.length; first += CHUNK) {
      if (this.unavailable) {
        for (let k = first; k < entries.length; k++) unconfirmed.push(k);
        break;
      }
      const count = Math.min(CHUNK, entries.length - first);
      const seq0 = this.seq;
      this.seq = (this.seq + count) >>> 0;
      let length = 0;
      this.template = undefined;
      for (let k = 0; k < count; k++) length = this.encode(entries[first + k] as DeviceMfc, (seq0 + k) >>> 0, length);
      if (!this.send(fd, length)) {
        for (let k = 0; k < count; k++) unconfirmed.push(first + k);
        continue;
      }
      for (const k of this.refusals(fd, seq0, count)) unconfirmed.push(first + k);
    }
    return unconfirmed;
  }

  close(): void {
    if (this.fd >= 0) sys.close(this.fd);
    this.fd = -1;
  }

  private open(): number {
    if (this.fd >= 0) return this.fd;
    const fd = sys.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
    if (fd < 0) throw new KernelError("socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)", lastErrno());
    const one = Buffer.alloc(4);
    one.writeInt32LE(1, 0);
    // Best effort: errors that echo only the request's header (see CHUNK).
    sys.setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, one, 4);
    this.fd = fd;
    return fd;
  }

  /** Writes the message for `e` at `at`; returns where the next one starts. */
  private encode(e: DeviceMfc, seq: number, at: number): number {
    const b = this.buf;
    const t = this.template;
    let length: number;
    if (t !== undefined && t.ttls === e.ttls && t.iifIndex === e.iifIndex) {
      length = t.length;
      b.copyWithin(at, t.at, t.at + length);
    } else {
      length = this.encodeShape(e, at);
      this.template = { at, length, ttls: e.ttls, iifIndex: e.iifIndex };
    }
    b.writeUInt32LE(seq, at + SEQ_AT);
    b.writeUInt32BE(ipv4Value(e.origin), at + SRC_AT);
    b.writeUInt32BE(ipv4Value(e.group), at + DST_AT);
    return at + align4(length);
  }

  /** Everything of the message but its sequence number, origin and group; returns its length. */
  private encodeShape(e: DeviceMfc, at: number): number {
    const b = this.buf;
    const hops = e.ttls.length;
    const len = FIXED + hops * 8;
    b.writeUInt32LE(len, at);
    b.writeUInt16LE(RTM_NEWROUTE, at + 4);
    b.writeUInt16LE(NLM_F_REQUEST | NLM_F_CREATE, at + 6);
    b.writeUInt32LE(0, at + 12);
    let o = at + NLMSG_HDRLEN;
    // struct rtmsg: family, dst_len, src_len, tos, table (u8), protocol, scope, type, flags (u32).
    b.writeUInt8(RTNL_FAMILY_IPMR, o);
    b.writeUInt8(32, o + 1);
    b.writeUInt8(32, o + 2);
    b.writeUInt8(0, o + 3);
    b.writeUInt8(this.table <= 255 ? this.table : 0, o + 4);
    b.writeUInt8(RTPROT_MROUTED, o + 5);
    b.writeUInt8(0, o + 6);
    b.writeUInt8(RTN_MULTICAST, o + 7);
    b.writeUInt32LE(0, o + 8);
    o += RTMSG_LEN;
    o = attrHeader(b, o, RTA_SRC); // the values of these two: encode()
    o = attrHeader(b, o, RTA_DST);
    o = attrHeader(b, o, RTA_IIF);
    b.writeUInt32LE(e.iifIndex, o - 4);
    o = attrHeader(b, o, RTA_TABLE);
    b.writeUInt32LE(this.table, o - 4);
    b.writeUInt16LE(4 + hops * 8, o);
    b.writeUInt16LE(RTA_MULTIPATH, o + 2);
    o += 4;
    for (let vifi = 0; vifi < hops; vifi++) {
      // struct rtnexthop: len u16, flags u8, hops u8 (the TTL), ifindex s32 (unused by ipmr).
      b.writeUInt16LE(8, o);
      b.writeUInt8(0, o + 2);
      b.writeUInt8(e.ttls[vifi] ?? 0, o + 3);
      b.writeInt32LE(0, o + 4);
      o += 8;
    }
    return len;
  }

  /** One send of the chunk; false when it did not go (the kernel then processed none of it). */
  private send(fd: number, length: number): boolean {
    for (;;) {
      const n = sys.send(fd, this.buf, length, 0);
      if (n === length) return true;
      if (n >= 0 || lastErrno() !== EINTR) return false;
    }
  }

  /**
   * Chunk positions of the messages [seq0, seq0 + count) the kernel refused, from its queued
   * errors. The queue is always read until empty: after an overrun (ENOBUFS) the kernel drops
   * every further error until a read finds it empty (af_netlink.c: NETLINK_S_CONGESTED, cleared by
   * netlink_rcv_wake), and errors were lost, so the whole chunk counts as unconfirmed.
   */
  private refusals(fd: number, seq0: number, count: number): number[] {
    const refused: number[] = [];
    let lost = false;
    const b = this.recvBuf;
    for (;;) {
      const n = sys.recv(fd, b, b.length, MSG_DONTWAIT);
      if (n < 0) {
        const errno = lastErrno();
        if (errno === EINTR) continue;
        if (errno === ENOBUFS) {
          lost = true;
          continue;
        }
        if (errno !== EAGAIN) lost = true;
        return lost ? Array.from({ length: count }, (_, k) => k) : refused;
      }
      for (let off = 0; off + NLMSG_HDRLEN + 4 <= n;) {
        const len = b.readUInt32LE(off);
        if (len < NLMSG_HDRLEN) break;
        const err = b.readUInt16LE(off + 4) === NLMSG_ERROR ? -b.readInt32LE(off + NLMSG_HDRLEN) : 0;
        if (err !== 0) {
          if (err === EPERM || err === EOPNOTSUPP) this.unavailable = true;
          const k = (b.readUInt32LE(off + 8) - seq0) >>> 0;
          if (k < count) refused.push(k);
        }
        off += align4(len);
      }
    }
  }
}

/** The header of a 4-byte attribute at `o`; returns where the next one starts (its value is the 4 bytes before). */
function attrHeader(b: Buffer, o: number, type: number): number {
  b.writeUInt16LE(8, o);
  b.writeUInt16LE(type, o + 2);
  return o + 8;
}
