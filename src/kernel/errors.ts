/** KernelError: a failed system call. Pure (the errno table is abi.ts), so the engine may use it. */
import { ERRNO, errnoName, type ErrnoName } from "./abi.js";

export { errnoName } from "./abi.js";

export function errnoOf(name: ErrnoName): number {
  return ERRNO[name];
}

/**
 * A failed system call: which call, and the errno the kernel gave; `detail` says more where the
 * errno alone would mislead (e.g. which table another process owns).
 */
export class KernelError extends Error {
  readonly errnoName: string;
  /** The errno's name, with the detail if there is one: "EADDRINUSE (IPv6 multicast routing table ...)". */
  readonly reason: string;
  constructor(
    readonly call: string,
    readonly errno: number,
    readonly detail?: string,
  ) {
    const name = errnoName(errno);
    const reason = detail === undefined ? name : `${name} (${detail})`;
    super(`${call} failed: ${reason}`);
    this.name = "KernelError";
    this.errnoName = name;
    this.reason = reason;
  }
}

/** Thrown when another process (smcroute, pimd, a second mfc_daemon) already owns the table. */
export class TableBusyError extends Error {}
