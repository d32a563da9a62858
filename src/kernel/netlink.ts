/** rtnetlink framing shared by the link monitor, the MFC dump and the batched adds (linux/netlink.h, rtnetlink.h). */
export const NLMSG_HDRLEN = 16;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;
/** Strips NLA_F_NESTED / NLA_F_NET_BYTEORDER from an attribute type. */
export const NLA_TYPE_MASK = 0x3fff;
export const NLM_F_REQUEST = 0x1;

// Multicast routes (rtnetlink.h): what the MFC dump reads and the batched adds write.
export const RTM_NEWROUTE = 24;
export const RTMSG_LEN = 12;
export const RTNL_FAMILY_IPMR = 128;
export const RTNL_FAMILY_IP6MR = 129;
export const RTA_DST = 1;
export const RTA_SRC = 2;
export const RTA_TABLE = 15;
const RT_TABLE_DEFAULT = 253;
/** ip6mr's default table (include/net/ip6_fib.h): MRT6_INIT without MRT6_TABLE, or with 0, takes it. */
const RT6_TABLE_DFLT = 254;

/** The id rtnetlink names a multicast table by: as MRT_TABLE / MRT6_TABLE take it, undefined or 0 being the family's default. */
export function mrTableId(table: number | undefined, family: 4 | 6): number {
  return table === undefined || table === 0 ? (family === 6 ? RT6_TABLE_DFLT : RT_TABLE_DEFAULT) : table;
}

/** NLMSG_ALIGN / RTA_ALIGN. */
export function align4(n: number): number {
  return (n + 3) & ~3;
}

/**
 * Calls `fn(type, at, end)` for each attribute (struct rtattr / nlattr) in [off, end), with the
 * payload in [at, end). Stops at a malformed attribute, or when `fn` returns true.
 */
export function forEachAttr(buf: Buffer, off: number, end: number, fn: (type: number, at: number, end: number) => boolean | void): void {
  while (off + 4 <= end) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > end) return;
    if (fn(buf.readUInt16LE(off + 2) & NLA_TYPE_MASK, off + 4, off + len) === true) return;
    off += align4(len);
  }
}

/** The string in an attribute payload, up to its NUL (or the payload's end). */
export function attrString(buf: Buffer, at: number, end: number): string {
  const nul = buf.indexOf(0, at);
  return buf.toString("utf8", at, nul >= 0 && nul < end ? nul : end);
}

/** The first string attribute of `type` in [off, end); "" when absent. */
export function findStringAttr(buf: Buffer, off: number, end: number, type: number): string {
  let found = "";
  forEachAttr(buf, off, end, (t, at, stop) => {
    if (t !== type) return false;
    found = attrString(buf, at, stop);
    return true;
  });
  return found;
}
