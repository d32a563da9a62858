/**
 * Who can change what a path leads to. Used by the daemon before it creates its socket
 * (server.ts) and by the CLI before it sends anything (cli/socket_check.ts), so it uses nothing
 * but node:fs (the CLI bundle stays free of koffi).
 *
 * A path is resolved one component at a time, as the kernel does, symlinks included. Every
 * directory looked into must be one that nobody outside `trusted` can change the entry in:
 * not writable by group or others, or sticky (1777, like /tmp) with the entry owned by a trusted
 * uid — the sticky bit stops others from renaming or removing it. The directory holding the
 * final entry is checked strictly by the callers: even a sticky world-writable directory lets
 * others create names there (a socket can be renamed away and another put in its place).
 */
import { lstatSync, readlinkSync, type Stats } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";

export class UnsafePathError extends Error {
  constructor(message: string, readonly code?: string) {
    super(message);
  }
}

export interface Walked {
  /** The real directory that holds the final entry (no symlink in it). */
  dir: string;
  dirStat: Stats;
  /** The final entry's real path (`dir` + its name). */
  real: string;
  /** lstat of the final entry; undefined when it does not exist. */
  entry: Stats | undefined;
}

const MAX_LINKS = 40; // the kernel's limit (ELOOP)

/** "everyone" / "its group" when group or others may write to `st`, else undefined. */
export function writableBy(st: Stats): string | undefined {
  if (st.mode & 0o002) return "everyone";
  if (st.mode & 0o020) return "its group";
  return undefined;
}

export const modeOf = (st: Stats): string => (st.mode & 0o7777).toString(8).padStart(4, "0");

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new UnsafePathError(`cannot inspect ${p}: ${(err as Error).message}`, (err as NodeJS.ErrnoException).code);
  }
}

/**
 * Resolves `path` (relative: against the working directory), checking each directory it looks
 * into as described above. `followFinal`: a symlink as the last component is followed (as
 * connect(2) does) instead of being returned as the entry (as bind(2) would refuse it).
 */
export function walkPath(path: string, trusted: (uid: number) => boolean, followFinal: boolean): Walked {
  const parts = (isAbsolute(path) ? path : `${process.cwd()}/${path}`).split("/").filter((p) => p !== "" && p !== ".");
  let cur = "/";
  let curStat = lstatSync("/");
  let links = 0;
  for (;;) {
    const name = parts.shift();
    if (name === undefined) throw new UnsafePathError(`${path} names a directory, not a socket`);
    if (name === "..") {
      // `cur` never contains a symlink, so its parent is the real "..".
      cur = dirname(cur);
      curStat = lstatSync(cur);
      continue;
    }
    const next = join(cur, name);
    const st = lstatOrUndefined(next);
    const last = parts.length === 0;
    const follow = st !== undefined && st.isSymbolicLink() && (!last || followFinal);
    // The final entry's own directory is for the caller to judge; every other one is checked here.
    const by = writableBy(curStat);
    if ((!last || follow) && by !== undefined && !(curStat.mode & 0o1000 && st && trusted(st.uid))) {
      throw new UnsafePathError(`${cur} (on the way to ${path}) is writable by ${by} (mode ${modeOf(curStat)}): others could replace ${next}; run chmod go-w ${cur}, or choose another path`);
    }
    if (!st) {
      if (last) return { dir: cur, dirStat: curStat, real: next, entry: undefined };
      throw new UnsafePathError(`${next} does not exist`, "ENOENT");
    }
    if (follow) {
      if (++links > MAX_LINKS) throw new UnsafePathError(`too many symbolic links in ${path}`, "ELOOP");
      const target = readlinkSync(next);
      parts.unshift(...target.split("/").filter((p) => p !== "" && p !== "."));
      if (isAbsolute(target)) {
        cur = "/";
        curStat = lstatSync("/");
      }
      continue;
    }
    if (last) return { dir: cur, dirStat: curStat, real: next, entry: st };
    if (!st.isDirectory()) throw new UnsafePathError(`${next} (on the way to ${path}) is not a directory`, "ENOTDIR");
    cur = next;
    curStat = st;
  }
}
