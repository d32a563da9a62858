/**
 * Log lines on stderr. Under systemd, when stderr is the journal's stream, each line starts with
 * the syslog priority `<N>` (journald reads it as the line's priority). systemd says how to tell:
 * it sets JOURNAL_STREAM to the stream's `device:inode`, and stderr is that stream only if its own
 * device and inode match (a shell started from the unit inherits the variable, not the stream).
 * On a terminal, a pipe or a file the lines are plain.
 */
import { fstatSync } from "node:fs";

export const LOG = { crit: 2, err: 3, warning: 4, notice: 5, info: 6, debug: 7 } as const;

/** stderr is the journal stream named by `journalStream` (JOURNAL_STREAM's `dev:ino`, decimal). */
export function stderrIsJournal(journalStream: string | undefined = process.env.JOURNAL_STREAM, fd = 2): boolean {
  const m = /^(\d+):(\d+)$/.exec(journalStream ?? "");
  if (!m) return false;
  try {
    const st = fstatSync(fd, { bigint: true });
    return st.dev === BigInt(m[1] as string) && st.ino === BigInt(m[2] as string);
  } catch {
    return false;
  }
}

const prefixed = stderrIsJournal();

export function log(priority: number, message: string): void {
  process.stderr.write(prefixed ? `<${priority}>${message}\n` : `${message}\n`);
}
