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
const line = (priority: number, message: string): string => (prefixed ? `<${priority}>${message}\n` : `${message}\n`);

/** Lines of the current event-loop turn that logInTurn() holds back, in order. */
let held = "";

/** Writes the lines held back by logInTurn(), before anything else reaches stderr. */
export function flushLog(): void {
  if (held === "") return;
  const text = held;
  held = "";
  process.stderr.write(text);
}

export function log(priority: number, message: string): void {
  flushLog();
  process.stderr.write(line(priority, message));
}

/**
 * For lines that come many to a turn (the audit line of each transaction: a commit group answers
 * all of its transactions in one turn): they go out together in one write(2) before the first of
 * those answers leaves (afterLogged), or once the turn's microtasks have run (process.nextTick),
 * or with the next log() line, or at exit. One write per line cost the daemon ~20 % of its rate
 * with 20 clients: each wakes the reader (journald, a pipe). Never for a line that a long
 * synchronous job follows: it would appear only after that job.
 */
export function logInTurn(priority: number, message: string): void {
  if (held === "") process.nextTick(flushLog);
  held += line(priority, message);
}

/**
 * `answer`, once the lines held so far are written: an answer that acknowledges a change leaves
 * only after its audit line, so a daemon killed right after it (the watchdog's SIGABRT) never
 * leaves an acknowledged change without its record. The group's answers resolve together, each
 * logging its line one promise step before this, so the first flush writes them all in one go.
 */
export async function afterLogged<T>(answer: Promise<T>): Promise<T> {
  const value = await answer;
  flushLog();
  return value;
}

// process.exit() runs no further ticks: what the last turn held goes out on the way.
process.on("exit", flushLog);
