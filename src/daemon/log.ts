/**
 * Log lines on stderr. Under systemd, when stderr is the journal's stream, each line starts with
 * the syslog priority `<N>` (journald reads it as the line's priority). systemd says how to tell:
 * it sets JOURNAL_STREAM to the stream's `device:inode`, and stderr is that stream only if its own
 * device and inode match (a shell started from the unit inherits the variable, not the stream).
 * On a terminal, a pipe or a file the lines are plain.
 */
import { fstatSync, writeSync } from "node:fs";

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

const line = (priority: number, message: string): string => (prefixed ? `<${priority}>${message}\n` : `${message}\n`);

export function log(priority: number, message: string): void {
  // After the batched lines before it, so the log keeps its order.
  process.stderr.write(pending === "" ? line(priority, message) : takePending() + line(priority, message));
}

/**
 * Audit lines, one per answered request: those of one event-loop turn (the answers of one commit
 * group) go out in one write. Node writes stderr synchronously on Linux (pipes, files, journald's
 * socket), and with 20 clients one write per line cost the daemon about as much as planning the
 * request. Any other line, and the exit, write them first; only a SIGKILL loses them, and a
 * transaction's outcome never waits for them.
 */
export function logBatched(priority: number, message: string): void {
  if (pending === "") setImmediate(flushPending);
  pending += line(priority, message);
}

let pending = "";

function takePending(): string {
  const text = pending;
  pending = "";
  return text;
}

function flushPending(): void {
  if (pending !== "") process.stderr.write(takePending());
}

process.on("exit", () => {
  if (pending === "") return;
  try {
    writeSync(2, takePending());
  } catch {
    // stderr is gone: nothing left to tell
  }
});
