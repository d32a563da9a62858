/** One request, one response over the daemon's Unix socket (NDJSON). */
import { createConnection } from "node:net";
import type { Response } from "../protocol/messages.js";
import { ResultPassThrough, type AnswerHandling, type Output } from "./pass_result.js";
import { socketProblem } from "./socket_check.js";

export class UnreachableError extends Error {}

/**
 * A request line made while it is sent: `parts` writes its pieces in order; the newline that
 * makes them a request follows only if it ends without throwing. If it throws, the connection is
 * closed without one (the daemon drops a partial line: no request) and the call fails with its error.
 */
export interface StreamedLine {
  parts(write: (piece: Uint8Array) => void): Promise<void>;
}

/**
 * Sends one request line (JSON without a newline; for a big one, its pieces in order, or made as
 * it is sent) and resolves with the answer. With `handling`,
 * the answer is read by pass_result.ts: the result or the whole line printed to `out` as it
 * arrives, the changes skipped (the response resolved with has `result: {}`, `changes: []`
 * respectively); should the connection break after some of it was printed, a newline ends the
 * partial output before the error.
 */
export function call(socketPath: string, line: string | readonly Uint8Array[] | StreamedLine, handling?: AnswerHandling & { out?: Output }): Promise<Response> {
  // Not a byte to a socket that may not be the daemon's (socket_check.ts).
  const problem = socketProblem(socketPath);
  if (problem !== undefined) return Promise.reject(new UnreachableError(`not sending to ${socketPath}: ${problem}`));
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    const chunks: Buffer[] = [];
    const passing = handling && new ResultPassThrough(handling.out, handling);
    let settled = false;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      sock.destroy();
      fn();
    };
    // Whether the whole request reached the daemon: then a close without an answer leaves its outcome unknown.
    let sent = false;
    const end = (): void => { sock.write("\n", (err) => { sent = !err; }); };
    sock.on("connect", () => {
      if (typeof line === "string") sock.write(line);
      else if ("parts" in line) {
        line.parts((piece) => sock.write(piece)).then(end, (err: unknown) => finish(() => broken(reject, err as Error)));
        return;
      } else for (const piece of line) sock.write(piece);
      end();
    });
    sock.on("data", (chunk: Buffer) => {
      if (passing) {
        let res: Response | undefined;
        try {
          res = passing.push(chunk);
        } catch {
          finish(() => broken(reject, new Error(`daemon sent an unreadable response: ${passing.lineStart()}`)));
          return;
        }
        if (res) finish(() => resolve(res));
        else if (passing.backpressure) {
          sock.pause();
          passing.onDrain(() => sock.resume());
        }
        return;
      }
      const nl = chunk.indexOf(0x0a);
      if (nl < 0) { chunks.push(chunk); return; }
      chunks.push(chunk.subarray(0, nl));
      const text = Buffer.concat(chunks).toString("utf8");
      finish(() => {
        try {
          resolve(JSON.parse(text) as Response);
        } catch {
          reject(new Error(`daemon sent an unreadable response: ${text.slice(0, 200)}`));
        }
      });
    });
    sock.on("error", (err: NodeJS.ErrnoException) => {
      finish(() => broken(reject, new UnreachableError(`cannot reach mfc_daemon at ${socketPath}: ${err.code === "ENOENT" ? "no such socket (is the daemon running?)" : err.code === "EACCES" ? "permission denied (are you in the socket group?)" : err.code === "ECONNREFUSED" ? "connection refused (daemon not running?)" : err.message}`)));
    });
    const closed = (): void => finish(() => broken(reject, new UnreachableError(sent
      ? `mfc_daemon at ${socketPath} closed the connection before answering: a change may or may not have been made (see mfc show)`
      : `mfc_daemon at ${socketPath} closed the connection without answering`)));
    const broken = (fail: (err: Error) => void, err: Error): void => {
      passing?.abort();
      fail(err);
    };
    sock.on("end", closed);
    sock.on("close", closed);
  });
}
