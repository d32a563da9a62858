import { invalid } from "../errors/codes.js";

/** Strict dotted-quad: four decimal octets 0-255, no leading zeros, nothing else. */
const DOTTED_QUAD = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function parseIpv4(text: string): number | undefined {
  if (!DOTTED_QUAD.test(text)) return undefined;
  return text.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
}

/** Echoed values are cut short: an error message must not carry a client's megabytes back. */
function shown(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}

export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
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
