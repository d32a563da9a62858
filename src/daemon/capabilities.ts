/**
 * Least privilege: the daemon needs CAP_NET_RAW for the raw IGMP socket that owns the table, and
 * CAP_NET_ADMIN for MRT_TABLE (STACK.md). Checked up front so a missing capability is named
 * instead of surfacing as a bare EPERM.
 */
import { readFileSync } from "node:fs";

export const CAP_NET_ADMIN = 12;
export const CAP_NET_RAW = 13;

/** Effective capability set of this process, from the kernel's own view of it. */
export function effectiveCaps(statusText = readFileSync("/proc/self/status", "utf8")): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(statusText);
  return m?.[1] ? BigInt(`0x${m[1]}`) : 0n;
}

export function missingCaps(needTable: boolean, caps = effectiveCaps()): string[] {
  const missing: string[] = [];
  const has = (bit: number): boolean => (caps & (1n << BigInt(bit))) !== 0n;
  if (!has(CAP_NET_RAW)) missing.push("CAP_NET_RAW");
  if (needTable && !has(CAP_NET_ADMIN)) missing.push("CAP_NET_ADMIN");
  return missing;
}
