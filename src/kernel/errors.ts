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
  constructor(
    readonly call: string,
    readonly errno: number,
    readonly detail?: string,
  ) {
    const name = errnoName(errno);
    super(detail === undefined ? `${call} failed: ${name}` : `${call} failed: ${name} (${detail})`);
    this.name = "KernelError";
    this.errnoName = name;
  }
}

/** Thrown when another process (smcroute, pimd, a second mfc_daemon) already owns the table. */
export class TableBusyError extends Error {}
