/** The two address families (SPEC §7): the family of an address follows from its text. */
export type Family = 4 | 6;

/** IPv6 text always holds a colon; dotted quads never do. */
export function familyOf(address: string): Family {
  return address.includes(":") ? 6 : 4;
}

/** The kernel's any-source origin of a (*,G) entry. */
export function anySource(family: Family): string {
  return family === 6 ? "::" : "0.0.0.0";
}

export const familyName = (f: Family): string => (f === 6 ? "IPv6" : "IPv4");
