import { constants } from "node:os";

const ERRNO_NAMES = new Map<number, string>(
  Object.entries(constants.errno).map(([name, num]) => [num, name] as const),
);

export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `E${errno}`;
}

export function errnoOf(name: keyof typeof constants.errno): number {
  return constants.errno[name];
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
