import { invalid } from "../errors/codes.js";
import { parseIpv4 } from "./ipv4.js";

/**
 * IPv6 text (RFC 4291 §2.2, with a trailing dotted quad) to its 16 bytes; undefined when `text` is
 * no address. No zone ("%eth0"): a zone names a link, and a routed address has none. Pure, so the
 * model and the kernel encoders share it.
 */
export function parseIpv6(text: string): Uint8Array | undefined {
  if (text.length < 2 || text.length > 45) return undefined;
  const gap = text.indexOf("::");
  if (gap >= 0 && text.indexOf("::", gap + 1) >= 0) return undefined;
  const head = gap < 0 ? text : text.slice(0, gap);
  const tail = gap < 0 ? "" : text.slice(gap + 2);
  const left = head === "" ? [] : head.split(":");
  const right = tail === "" ? [] : tail.split(":");
  const groups: number[] = [];
  const all = [...left, ...right];
  for (let i = 0; i < all.length; i++) {
    const part = all[i] as string;
    // A dotted quad ends the text: "ff3e:1.2.3.4::" is not an address (RFC 4291 §2.2, form 3).
    if (i === all.length - 1 && part.includes(".") && (gap < 0 || right.length > 0)) {
      const v4 = parseIpv4(part);
      if (v4 === undefined) return undefined;
      groups.push(Math.floor(v4 / 65536), v4 % 65536);
    } else {
      if (!/^[0-9a-fA-F]{1,4}$/.test(part)) return undefined;
      groups.push(parseInt(part, 16));
    }
  }
  const leftGroups = gap < 0 ? groups.length : groups.length - countGroups(right);
  if (gap < 0 ? groups.length !== 8 : groups.length > 7) return undefined;
  const bytes = new Uint8Array(16);
  const put = (g: number, at: number): void => {
    bytes[2 * at] = g >> 8;
    bytes[2 * at + 1] = g & 255;
  };
  for (let i = 0; i < leftGroups; i++) put(groups[i] as number, i);
  const rightGroups = groups.length - leftGroups;
  for (let i = 0; i < rightGroups; i++) put(groups[leftGroups + i] as number, 8 - rightGroups + i);
  return bytes;
}

function countGroups(parts: string[]): number {
  const last = parts[parts.length - 1];
  return parts.length + (last !== undefined && last.includes(".") ? 1 : 0);
}

/** RFC 5952 text: lower case, no leading zeros, the longest run of two or more zero groups as "::". */
export function formatIpv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(((bytes[2 * i] as number) << 8) | (bytes[2 * i + 1] as number));
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { bestAt = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestAt < 0) return hex.join(":");
  return `${hex.slice(0, bestAt).join(":")}::${hex.slice(bestAt + bestLen).join(":")}`;
}

/** The canonical text of an address, so that `FF3E:0::1` and `ff3e::1` are one route. */
export function canonicalIpv6(text: string): string | undefined {
  const b = parseIpv6(text);
  return b === undefined ? undefined : formatIpv6(b);
}

function shown(text: string): string {
  return text.length > 45 ? `${text.slice(0, 45)}...` : text;
}

/** Multicast scope (RFC 4291 §2.7): the low nibble of the second byte. 0-2 never leave the link. */
const scopeOf = (b: Uint8Array): number => (b[1] as number) & 15;

/** ff00::/8 minus scopes 0-2 (reserved, interface-local, link-local), which are never routed. Returns the canonical text. */
export function checkGroup6(text: string, field = "group"): string {
  const b = parseIpv6(text);
  if (b === undefined) throw invalid("E_INVALID_ADDRESS", `${field} '${shown(text)}' is not an IPv6 address.`);
  if (b[0] !== 0xff) throw invalid("E_INVALID_ADDRESS", `${field} '${shown(text)}' is not a multicast address (ff00::/8).`);
  if (scopeOf(b) <= 2) {
    throw invalid("E_INVALID_ADDRESS", `${field} '${shown(text)}' has scope ${scopeOf(b)} (ff0${scopeOf(b)}::/16 and below: interface- or link-local) and is never forwarded.`);
  }
  return formatIpv6(b);
}

/** A routable unicast source: not ::, not loopback, not multicast, not link-local, not IPv4-mapped. Returns the canonical text. */
export function checkSource6(text: string, field = "source"): string {
  const b = parseIpv6(text);
  if (b === undefined) throw invalid("E_INVALID_ADDRESS", `${field} '${shown(text)}' is not an IPv6 address.`);
  const canonical = formatIpv6(b);
  if (canonical === "::" || canonical === "::1" || b[0] === 0xff) {
    throw invalid("E_INVALID_ADDRESS", `${field} '${shown(text)}' is not a unicast host address.`);
  }
  if (b[0] === 0xfe && ((b[1] as number) & 0xc0) === 0x80) {
    throw invalid("E_INVALID_ADDRESS", `${field} '${shown(text)}' is link-local (fe80::/10): routers never forward its packets to another link (RFC 4291).`);
  }
  if (canonical.startsWith("::ffff:")) throw invalid("E_INVALID_ADDRESS", `${field} '${shown(text)}' is an IPv4-mapped address: write the IPv4 address.`);
  return canonical;
}

/** A group range of IPv6: the first `len` bits of `base` (a 128-bit number). */
export interface GroupRange6 { base: bigint; len: number }

export function toBigInt(b: Uint8Array): bigint {
  let n = 0n;
  for (const x of b) n = (n << 8n) | BigInt(x);
  return n;
}

export function parseGroupRange6(text: string): GroupRange6 | undefined {
  const slash = text.indexOf("/");
  if (slash < 0) return undefined;
  const b = parseIpv6(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  if (b === undefined || !/^[1-9]\d{0,2}$/.test(lenText)) return undefined;
  const len = Number(lenText);
  return len <= 128 ? { base: toBigInt(b), len } : undefined;
}

export function rangeContains6(r: GroupRange6, group: Uint8Array): boolean {
  const hostBits = BigInt(128 - r.len);
  return toBigInt(group) >> hostBits === r.base >> hostBits;
}

function rangeText(base: bigint, len: number): string {
  const b = new Uint8Array(16);
  for (let i = 15, n = base; i >= 0; i--, n >>= 8n) b[i] = Number(n & 255n);
  return `${formatIpv6(b)}/${len}`;
}

/**
 * A route's IPv6 group: an address (checkGroup6), or a range inside ff00::/8 written with its
 * network address, /8 to /127, not wholly of scope 0-2. Returns the canonical text.
 */
export function checkRouteGroup6(text: string, field = "group"): string {
  if (!text.includes("/")) return checkGroup6(text, field);
  const r = parseGroupRange6(text);
  if (r === undefined) throw invalid("E_INVALID_ADDRESS", `${field} '${shown(text)}' is not an IPv6 address or range (ADDR/LEN).`);
  if (r.len < 8 || r.base >> 120n !== 0xffn) throw invalid("E_INVALID_ADDRESS", `${field} '${shown(text)}' is not a multicast range (inside ff00::/8).`);
  if (r.len === 128) throw invalid("E_INVALID_ADDRESS", `${field} '${shown(text)}' is one group: write it without /128.`);
  const hostMask = (1n << BigInt(128 - r.len)) - 1n;
  if ((r.base & hostMask) !== 0n) {
    throw invalid("E_INVALID_ADDRESS", `${field} '${shown(text)}' has host bits set: the range starts at ${rangeText(r.base & ~hostMask, r.len)}.`);
  }
  const scope = Number((r.base >> 112n) & 15n);
  if (r.len >= 16 && scope <= 2) throw invalid("E_INVALID_ADDRESS", `${field} '${shown(text)}' has scope ${scope} (interface- or link-local) and is never forwarded.`);
  return rangeText(r.base, r.len);
}
