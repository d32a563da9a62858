import { invalid } from "../errors/codes.js";

/**
 * Strict dotted-quad: four decimal octets 0-255, no leading zeros, nothing else. A hand-rolled scan
 * (no regex, no allocation): it runs for every address of a 100 000-route restore or show.
 */
export function parseIpv4(text: string): number | undefined {
  if (text.length < 7 || text.length > 15) return undefined;
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0 || dots === 3) return undefined;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return undefined; // leading zero ("01")
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return undefined;
    } else {
      return undefined;
    }
  }
  if (dots !== 3 || digits === 0) return undefined;
  return value * 256 + octet;
}

/** Echoed values are cut short: an error message must not carry a client's megabytes back. */
function shown(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}

/** 224.0.0.0/4 minus 224.0.0.0/24, which the kernel never forwards (link-local). */
export function checkGroup(text: string, field = "group"): string {
  const n = parseIpv4(text);
  if (n === undefined) throw invalid("E_INVALID_ADDRESS", `${field} '${shown(text)}' is not an IPv4 address.`);
  if (n >>> 28 !== 0xe) throw invalid("E_INVALID_ADDRESS", `${field} '${shown(text)}' is not a multicast address (224.0.0.0/4).`);
  if (n >>> 8 === 0xe00000) {
    throw invalid("E_INVALID_ADDRESS", `${field} '${shown(text)}' is link-local (224.0.0.0/24) and is never forwarded.`);
  }
  return text;
}

/** A unicast host address: not 0.0.0.0, not multicast, not class E or broadcast, not loopback. */
export function checkSource(text: string, field = "source"): string {
  const n = parseIpv4(text);
  if (n === undefined) throw invalid("E_INVALID_ADDRESS", `${field} '${shown(text)}' is not an IPv4 address.`);
  const first = n >>> 24;
  if (n === 0 || first >= 224 || first === 127) {
    throw invalid("E_INVALID_ADDRESS", `${field} '${shown(text)}' is not a unicast host address.`);
  }
  return text;
}

/** A group range (SPEC §7 templates): `239.1.0.0/16`. undefined when `text` is no range. */
export interface GroupRange { base: number; len: number }

export function parseGroupRange(text: string): GroupRange | undefined {
  const slash = text.indexOf("/");
  if (slash < 0) return undefined;
  const base = parseIpv4(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  if (base === undefined || !/^[1-9]\d?$/.test(lenText)) return undefined;
  const len = Number(lenText);
  return len <= 32 ? { base, len } : undefined;
}

export function isGroupRange(group: string): boolean {
  return group.includes("/");
}

/** Whether the group address `n` lies in `r`. */
export function rangeContains(r: GroupRange, n: number): boolean {
  const hostBits = 32 - r.len;
  return Math.floor(n / 2 ** hostBits) === Math.floor(r.base / 2 ** hostBits);
}

/**
 * A route's group: an address (checkGroup), or a range inside 224.0.0.0/4 written with its network
 * address (host bits zero, as `ip route` insists), /4 to /31, not wholly link-local.
 */
export function checkRouteGroup(text: string, field = "group"): string {
  if (!isGroupRange(text)) return checkGroup(text, field);
  const r = parseGroupRange(text);
  if (r === undefined) throw invalid("E_INVALID_ADDRESS", `${field} '${shown(text)}' is not an IPv4 address or range (A.B.C.D/LEN).`);
  if (r.len < 4 || r.base >>> 28 !== 0xe) throw invalid("E_INVALID_ADDRESS", `${field} '${shown(text)}' is not a multicast range (inside 224.0.0.0/4).`);
  if (r.len === 32) throw invalid("E_INVALID_ADDRESS", `${field} '${shown(text)}' is one group: write it without /32.`);
  if (r.base % 2 ** (32 - r.len) !== 0) {
    throw invalid("E_INVALID_ADDRESS", `${field} '${shown(text)}' has host bits set: the range starts at ${formatIpv4(r.base - (r.base % 2 ** (32 - r.len)))}/${r.len}.`);
  }
  if (r.len >= 24 && r.base >>> 8 === 0xe00000) throw invalid("E_INVALID_ADDRESS", `${field} '${shown(text)}' is link-local (224.0.0.0/24) and is never forwarded.`);
  return text;
}

export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}
