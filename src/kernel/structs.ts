/**
 * Encoders for the kernel's mroute structs (x86_64/aarch64 layouts from linux/mroute.h, verified in
 * STACK.md). Buffers are reused: object-to-struct conversion would be ~3x slower on the hot path.
 */
import { AF_INET } from "./abi.js";
import { formatIpv4, parseIpv4 } from "../model/ipv4.js";
import { familyOf, type MfcEntry, type NoCache, type SgCounters, type VifCounters, type VifSpec } from "./port.js";
import { writeSockaddrIn6 } from "./structs6.js";

export const VIFF_USE_IFINDEX = 0x8;
export const VIFCTL_SIZE = 16;
export const MFCCTL_SIZE = 60;
export const SIOC_SG_REQ_SIZE = 32;
export const SIOC_VIF_REQ_SIZE = 40;
/**
 * struct group_req { u32 gr_interface; struct sockaddr_storage gr_group; }: sockaddr_storage is
 * 8-byte aligned on 64-bit Linux, so the group starts at 8; group_source_req adds gsr_source at 136.
 */
export const GROUP_REQ_SIZE = 136;
export const GROUP_SOURCE_REQ_SIZE = 264;
const SOCKADDR_STORAGE_SIZE = 128;

/** A dotted quad as the u32 the kernel's structs and attributes hold (in network byte order). */
export function ipv4Value(dotted: string): number {
  const n = parseIpv4(dotted);
  if (n === undefined) throw new Error(`not an IPv4 address: ${dotted}`);
  return n;
}

function writeAddr(buf: Buffer, offset: number, dotted: string): void {
  buf.writeUInt32BE(ipv4Value(dotted), offset); // network byte order
}

export function encodeVifctl(buf: Buffer, vif: Pick<VifSpec, "vifi" | "ifindex" | "threshold">): Buffer {
  buf.fill(0, 0, VIFCTL_SIZE);
  buf.writeUInt16LE(vif.vifi, 0);
  buf.writeUInt8(VIFF_USE_IFINDEX, 2); // no IP address needed on the interface
  buf.writeUInt8(vif.threshold, 3);
  buf.writeInt32LE(vif.ifindex, 8); // union lcl_addr / lcl_ifindex
  return buf;
}

export function encodeMfcctl(buf: Buffer, e: Pick<MfcEntry, "origin" | "group" | "parent"> & { ttls?: readonly number[] }): Buffer {
  buf.fill(0, 0, MFCCTL_SIZE);
  writeAddr(buf, 0, e.origin);
  writeAddr(buf, 4, e.group);
  buf.writeUInt16LE(e.parent, 8);
  e.ttls?.forEach((ttl, vifi) => buf.writeUInt8(ttl, 10 + vifi));
  return buf;
}

export function encodeSgReq(buf: Buffer, origin: string, group: string): Buffer {
  buf.fill(0, 0, SIOC_SG_REQ_SIZE);
  writeAddr(buf, 0, origin);
  writeAddr(buf, 4, group);
  return buf;
}

export function encodeVifReq(buf: Buffer, vifi: number): Buffer {
  buf.fill(0, 0, SIOC_VIF_REQ_SIZE);
  buf.writeUInt16LE(vifi, 0);
  return buf;
}

/** The three u64 counters (pktcnt, bytecnt, wrong_if) both families' sg requests end with, from `at`. */
export function decodeSgCounters(b: Buffer, at: number): SgCounters {
  return { packets: Number(b.readBigUInt64LE(at)), bytes: Number(b.readBigUInt64LE(at + 8)), wrongIf: Number(b.readBigUInt64LE(at + 16)) };
}

/** The counters SIOCGETSGCNT wrote into sioc_sg_req (u64 pktcnt @8, bytecnt @16, wrong_if @24). */
export const decodeSgReq = (b: Buffer): SgCounters => decodeSgCounters(b, 8);

/** The counters SIOCGETVIFCNT wrote into sioc_vif_req (u64 icount @8, ocount @16, ibytes @24, obytes @32). */
export function decodeVifReq(b: Buffer): VifCounters {
  return {
    pktsIn: Number(b.readBigUInt64LE(8)), pktsOut: Number(b.readBigUInt64LE(16)),
    bytesIn: Number(b.readBigUInt64LE(24)), bytesOut: Number(b.readBigUInt64LE(32)),
  };
}

const IGMPMSG_NOCACHE = 1;
export const IGMPMSG_SIZE = 20;

/**
 * An IGMPMSG_NOCACHE upcall in the `n` bytes read (struct igmpmsg: msgtype @8, mbz @9, vif @10,
 * vif_hi @11, src @12, dst @16), or undefined. Real IGMP packets arrive on the same socket with an
 * IP header, whose byte 9 is the protocol (2), never the 0 of im_mbz.
 */
export function decodeIgmpmsg(b: Buffer, n: number): NoCache | undefined {
  if (n < IGMPMSG_SIZE || b[9] !== 0 || b[8] !== IGMPMSG_NOCACHE) return undefined;
  return { vifi: (b[10] as number) | ((b[11] as number) << 8), source: formatIpv4(b.readUInt32BE(12)), group: formatIpv4(b.readUInt32BE(16)) };
}

/** struct sockaddr_in at `offset`: family (host order), port 0, address (network order). */
function writeSockaddrIn(buf: Buffer, offset: number, dotted: string): void {
  buf.writeUInt16LE(AF_INET, offset);
  writeAddr(buf, offset + 4, dotted);
}

/**
 * group_req, or group_source_req when `source` is given (MCAST_JOIN_SOURCE_GROUP and friends): a
 * sockaddr_in for an IPv4 group, a sockaddr_in6 for an IPv6 one (the source is of the same family).
 */
export function encodeGroupReq(buf: Buffer, ifindex: number, group: string, source: string | null): number {
  const size = source === null ? GROUP_REQ_SIZE : GROUP_SOURCE_REQ_SIZE;
  const write = familyOf(group) === 6 ? writeSockaddrIn6 : writeSockaddrIn;
  buf.fill(0, 0, size);
  buf.writeUInt32LE(ifindex, 0);
  write(buf, 8, group);
  if (source !== null) write(buf, 8 + SOCKADDR_STORAGE_SIZE, source);
  return size;
}
