/** flock(2), which Node does not offer: an advisory lock the kernel drops when the process dies. */
import { LOCK_EX, LOCK_NB } from "./abi.js";
import { KernelError, errnoOf } from "./errors.js";
import { lastErrno, sys } from "./libc.js";

/** Takes an exclusive lock on `fd` without waiting: false when another open file holds it. */
export function tryLockExclusive(fd: number): boolean {
  if (sys.flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
  const errno = lastErrno();
  if (errno === errnoOf("EAGAIN")) return false;
  throw new KernelError("flock", errno);
}
