/** Why the daemon could not take its multicast routing table, as the start-up error says it. Pure. */
import { KernelError } from "../kernel/errors.js";

/**
 * The kernel's error, plus the capabilities only where the kernel refused permission: an
 * ENOPROTOOPT already names the kernel option it lacks (mroute_socket.ts), and blaming
 * CAP_NET_RAW there sent operators after the wrong fix.
 */
export function tableFailureMessage(err: unknown, withTable: boolean): string {
  const denied = err instanceof KernelError && (err.errnoName === "EPERM" || err.errnoName === "EACCES");
  const needs = denied ? ` (needs CAP_NET_RAW${withTable ? " and CAP_NET_ADMIN" : ""})` : "";
  return `cannot take the multicast routing table: ${err instanceof Error ? err.message : String(err)}${needs}`;
}
