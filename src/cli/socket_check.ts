/**
 * Before the CLI sends a byte: is the socket at this path really the daemon's? Without it, anyone
 * who can write to the socket's directory can rename the daemon's socket away, listen in its
 * place, capture every request and answer "ok" to `mfc add`.
 *
 * SO_PEERCRED would name the listening process, but Node has no API for it and the CLI stays free
 * of FFI. What the file system says is as good here: a socket file belongs to the process that
 * bound it (or was given away by root), and only those who can write to its directory can put a
 * socket at that name. So the CLI goes on only when
 *  - every directory on the way (symlinks followed) is one that nobody else can change the entry
 *    in (safe_path.ts), and the socket's own directory is writable by its owner only;
 *  - the socket is owned by an expected owner: root, the user running the CLI, or the owner of
 *    the socket's directory when that directory sits in one owned by root (or by the user running
 *    the CLI) that only its owner can write to. Then root put the directory there and handed it
 *    to its owner — as systemd's RuntimeDirectory does with /run/mfc_daemon for the packages'
 *    `mfc_daemon` user — so that owner is the daemon's user. No user name is looked up.
 * A path that does not exist or cannot be searched is left to connect(), which reports it.
 */
import { lstatSync, type Stats } from "node:fs";
import { dirname } from "node:path";
import { modeOf, UnsafePathError, walkPath, writableBy } from "../fs/safe_path.js";

/** Why the socket at `path` cannot be trusted to be the daemon's, or undefined. */
export function socketProblem(path: string): string | undefined {
  const me = process.geteuid?.() ?? 0;
  const mine = (uid: number): boolean => uid === 0 || uid === me;
  let walked;
  try {
    walked = walkPath(path, mine, true);
  } catch (err) {
    if (!(err instanceof UnsafePathError)) throw err;
    // Missing or unsearchable: connect() fails the same way and says so in the usual words.
    if (err.code === "ENOENT" || err.code === "EACCES" || err.code === "ENOTDIR") return undefined;
    return err.message;
  }
  const { dir, dirStat, entry } = walked;
  const by = writableBy(dirStat);
  if (by !== undefined) {
    return `its directory ${dir} is writable by ${by} (mode ${modeOf(dirStat)}), so anyone could have replaced the socket; refusing to send (the daemon's socket belongs in a directory only root or the daemon's user can write to)`;
  }
  let parent: Stats | undefined;
  try {
    parent = lstatSync(dirname(dir));
  } catch { /* unsearchable: no delegation */ }
  const delegated = parent !== undefined && mine(parent.uid) && writableBy(parent) === undefined;
  const expected = (uid: number): boolean => mine(uid) || (delegated && uid === dirStat.uid);
  if (!expected(dirStat.uid)) {
    return `its directory ${dir} belongs to uid ${dirStat.uid}, which is neither root, you, nor a user that root gave that directory to; refusing to send`;
  }
  if (!entry) return undefined;
  if (!entry.isSocket()) return `${walked.real} is ${entry.isFile() ? "a regular file" : entry.isDirectory() ? "a directory" : "not a socket"}, not a socket`;
  if (!expected(entry.uid)) {
    return `the socket belongs to uid ${entry.uid}, not to root, you, or the owner of ${dir} (uid ${dirStat.uid}): it may not be mfc_daemon's; refusing to send`;
  }
  return undefined;
}
