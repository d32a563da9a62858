/**
 * Linux dev_valid_name(): 1-15 bytes (IFNAMSIZ - 1), not "." or "..", no '/', ':' or whitespace;
 * and no NUL, at which the kernel would cut the name (SIOCGIFINDEX) ("dn1\u0000x" would resolve to dn1).
 */
export function ifNameProblem(s: string): string | undefined {
  if (s.length === 0) return "must not be empty";
  if (Buffer.byteLength(s) > 15) return "is longer than 15 bytes (IFNAMSIZ)";
  if (/[\s/:\0]/.test(s)) return "contains '/', ':', NUL or whitespace";
  if (s === "." || s === "..") return "is not a valid interface name";
  return undefined;
}

export function ttlProblem(n: unknown): string | undefined {
  return typeof n === "number" && Number.isInteger(n) && n >= 1 && n <= 255 ? undefined : "must be an integer 1-255";
}
