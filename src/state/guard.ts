/**
 * What makes a state file safe to own (SPEC §6.2): one daemon at a time (a lock file beside it,
 * flock'd for the daemon's lifetime), and a directory nobody else can write to — a root daemon
 * writing where others can plant symlinks or files could be made to overwrite anything.
 */
import { closeSync, constants, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { modeOf, writableBy } from "../fs/safe_path.js";
import { tryLockExclusive } from "../kernel/flock.js";

export class StateGuardError extends Error {}

/** Creates the state directory if missing (0750) and refuses one that others may write to. */
export function checkStateDir(stateFile: string): void {
  const dir = dirname(stateFile);
  mkdirSync(dir, { recursive: true, mode: 0o750 });
  const st = statSync(dir);
  if (!st.isDirectory()) throw new StateGuardError(`state directory ${dir} is not a directory`);
  const me = process.geteuid?.() ?? 0;
  if (st.uid !== 0 && st.uid !== me) {
    throw new StateGuardError(`state directory ${dir} belongs to uid ${st.uid}, not to root or this daemon's user (uid ${me}): chown it, or choose another state_file`);
  }
  const by = writableBy(st);
  if (by !== undefined) {
    throw new StateGuardError(`state directory ${dir} is writable by ${by} (mode ${modeOf(st)}): others could plant files or symlinks there; run chmod go-w ${dir}`);
  }
}

/** Holds `STATE_FILE.lock` until released or the process ends (the kernel drops a flock then). */
export class StateLock {
  private constructor(private fd: number | undefined, readonly path: string) {}

  static acquire(stateFile: string): StateLock {
    const path = `${stateFile}.lock`;
    // libuv opens with O_CLOEXEC: a child the daemon spawns cannot inherit (and keep) the lock.
    const { O_RDWR, O_CREAT, O_NOFOLLOW } = constants;
    const fd = openSync(path, O_RDWR | O_CREAT | O_NOFOLLOW, 0o640);
    try {
      if (!fstatSync(fd).isFile()) throw new StateGuardError(`${path} is not a regular file`);
      if (!tryLockExclusive(fd)) {
        const holder = readFileSync(path, "utf8").trim();
        throw new StateGuardError(`state file ${stateFile} is in use by another mfc_daemon${/^\d+$/.test(holder) ? ` (pid ${holder})` : ""}: each daemon needs its own state_file`);
      }
      // The pid is for the message above only; the lock itself is the flock.
      ftruncateSync(fd, 0);
      writeSync(fd, `${process.pid}\n`, 0);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    return new StateLock(fd, path);
  }

  release(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}
