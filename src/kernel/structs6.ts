/**
 * Encoders for the kernel's IPv6 multicast routing structs (linux/mroute6.h, x86_64/aarch64
 * layouts; test/kernel/structs.test.ts compares them with the C compiler's). Buffers are reused,
 * as in structs.ts: these run once per route.
 */
import { AF_INET6 } from "./abi.js";
import { formatIpv6, parseIpv6 } from "../model/ipv6.js";
import type { MfcEntry, NoCache, SgCounters, VifSpec } from "./port.js";
import { decodeSgCounters, decodeVifReq, encodeVifReq } from "./structs.js";

/** mif6ctl: mifi u16 @0, flags u8 @2, threshold u8 @3, pifi u16 @4, rate_limit u32 @8. */
export const MIF6CTL_SIZE = 12;
/** mf6cctl: origin sockaddr_in6 @0, group @28, parent u16 @56, ifset u32[8] @60. */
export const MF6CCTL_SIZE = 92;
/** sioc_sg_req6: src @0, grp @28, then u64 pktcnt @56, bytecnt @64, wrong_if @72. */
export const SIOC_SG_REQ6_SIZE = 80;
/** sioc_mif_req6: mifi u16 @0, u64 icount @8, ocount @16, ibytes @24, obytes @32 (sioc_vif_req's layout). */
export const SIOC_MIF_REQ6_SIZE = 40;
/** mrt6msg: mbz u8 @0, msgtype u8 @1, mif u16 @2, pad u32 @4, src @8, dst @24. */
export const MRT6MSG_SIZE = 40;
/** sockaddr_in6: family u16 @0, port @2, flowinfo u32 @4, addr @8, scope_id u32 @24. */
export const SOCKADDR_IN6_SIZE = 28;
const MF6CC_PARENT = 56;
const MF6CC_IFSET = 60;

/** The 16 bytes of `text` at `offset`. */
function writeIpv6(buf: Buffer, offset: number, text: string): void {
  const bytes = parseIpv6(text);
  if (bytes === undefined) throw new Error(`not an IPv6 address: ${text}`);
  buf.set(bytes, offset);
}

/** struct sockaddr_in6 at `offset` (the caller zeroed it): family (host order), port 0, address. */
export function writeSockaddrIn6(buf: Buffer, offset: number, text: string): void {
  buf.writeUInt16LE(AF_INET6, offset);
  writeIpv6(buf, offset + 8, text);
}

/** mif6c_pifi is 16 bits: a larger ifindex cannot be named (the caller refuses it). */
export const MAX_PIFI = 0xffff;

export function encodeMif6ctl(buf: Buffer, mif: Pick<VifSpec, "vifi" | "ifindex" | "threshold">): Buffer {
  buf.fill(0, 0, MIF6CTL_SIZE);
  buf.writeUInt16LE(mif.vifi, 0);
  // flags 0: a plain interface (the only other flag, MIFF_REGISTER, makes a PIM register MIF).
  buf.writeUInt8(mif.threshold, 3);
  buf.writeUInt16LE(mif.ifindex, 4);
  return buf;
}

/** Every MIF with a non-zero ttl goes in mf6cc_ifset (ip6mr_mfc_add gives each member threshold 1). */
export function encodeMf6cctl(buf: Buffer, e: Pick<MfcEntry, "origin" | "group" | "parent"> & { ttls?: readonly number[] }): Buffer {
  buf.fill(0, 0, MF6CCTL_SIZE);
  writeSockaddrIn6(buf, 0, e.origin);
  writeSockaddrIn6(buf, SOCKADDR_IN6_SIZE, e.group);
  buf.writeUInt16LE(e.parent, MF6CC_PARENT);
  e.ttls?.forEach((ttl, mifi) => {
    if (ttl === 0) return;
    // IF_SET: bit (n % 32) of 32-bit word n / 32, words in host (little-endian) order.
    const at = MF6CC_IFSET + 4 * (mifi >>> 5);
    buf.writeUInt32LE((buf.readUInt32LE(at) | (1 << (mifi & 31))) >>> 0, at);
  });
  return buf;
}

export function encodeSgReq6(buf: Buffer, origin: string, group: string): Buffer {
  buf.fill(0, 0, SIOC_SG_REQ6_SIZE);
  writeSockaddrIn6(buf, 0, origin);
  writeSockaddrIn6(buf, SOCKADDR_IN6_SIZE, group);
  return buf;
}

/** sioc_mif_req6 is laid out as IPv4's sioc_vif_req (mifi_t and vifi_t are both u16; the layout test compares both). */
export const encodeMifReq6 = encodeVifReq;

/** The counters SIOCGETSGCNT_IN6 wrote into sioc_sg_req6 (after the two sockaddr_in6). */
export const decodeSgReq6 = (b: Buffer): SgCounters => decodeSgCounters(b, 56);

/** The counters SIOCGETMIFCNT_IN6 wrote into sioc_mif_req6: the layout of sioc_vif_req. */
export const decodeMifReq6 = decodeVifReq;

const MRT6MSG_NOCACHE = 1;

/**
 * An MRT6MSG_NOCACHE upcall in the `n` bytes read, or undefined. The read starts with struct mrt6msg
 * (6.18 returns 80 bytes); im6_mbz is 0 where an ICMPv6 message has its type (never 0).
 */
export function decodeMrt6msg(b: Buffer, n: number): NoCache | undefined {
  if (n < MRT6MSG_SIZE || b[0] !== 0 || b[1] !== MRT6MSG_NOCACHE) return undefined;
  return { vifi: b.readUInt16LE(2), source: formatIpv6(b.subarray(8, 24)), group: formatIpv6(b.subarray(24, 40)) };
}
