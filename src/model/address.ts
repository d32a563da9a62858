/**
 * Addresses of either family (SPEC §7): the family follows from the text (a colon means IPv6), and
 * a route's or join's source and group must be of one family. Every checker returns the canonical
 * text, so one route has one key however it was written.
 */
import { invalid } from "../errors/codes.js";
import { familyOf, type Family } from "./family.js";
import { checkGroup as checkGroup4, checkRouteGroup as checkRouteGroup4, checkSource as checkSource4, parseGroupRange, parseIpv4, rangeContains } from "./ipv4.js";
import { checkGroup6, checkRouteGroup6, checkSource6, parseGroupRange6, parseIpv6, rangeContains6 } from "./ipv6.js";

export function checkGroup(text: string, field = "group"): string {
  return familyOf(text) === 6 ? checkGroup6(text, field) : checkGroup4(text, field);
}

export function checkRouteGroup(text: string, field = "group"): string {
  return familyOf(text) === 6 ? checkRouteGroup6(text, field) : checkRouteGroup4(text, field);
}

export function checkSource(text: string, field = "source"): string {
  return familyOf(text) === 6 ? checkSource6(text, field) : checkSource4(text, field);
}

/** A source and a group of one family: the kernel keeps the two families in separate tables. */
export function checkSourceGroup(source: string | null, group: string): { source: string | null; group: string } {
  if (source !== null && familyOf(source) !== familyOf(group)) {
    throw invalid("E_INVALID_ADDRESS", `source '${source}' and group '${group}' are of different address families.`);
  }
  return { source, group };
}


/** A group range of either family, as a matcher of group addresses (templates, SPEC §7). */
export interface GroupMatcher { family: Family; len: number; contains(group: string): boolean }

export function groupMatcher(range: string): GroupMatcher | undefined {
  if (familyOf(range) === 6) {
    const r = parseGroupRange6(range);
    return r && { family: 6, len: r.len, contains: (g) => { const b = parseIpv6(g); return b !== undefined && rangeContains6(r, b); } };
  }
  const r = parseGroupRange(range);
  return r && { family: 4, len: r.len, contains: (g) => { const n = parseIpv4(g); return n !== undefined && rangeContains(r, n); } };
}
