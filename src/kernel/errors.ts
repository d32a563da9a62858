/** KernelError: a failed system call. Pure (the errno table is abi.ts), so the engine may use it. */
import { ERRNO, errnoName, type ErrnoName } from "./abi.js";

export { errnoName } from "./abi.js";

export function errnoOf(name: ErrnoName): number {
  return ERRNO[name];
}

/** A failed system call: which call, and the errno the kernel gave. */
export class KernelError extends Error {
  readonly errnoName: string;
  constructor(
    readonly call: string,
    readonly errno: number,
  ) {
    const name = errnoName(errno);
    super(`${call} failed: ${name}`);
    this.name = "KernelError";
    this.errnoName = name;
  }
}
