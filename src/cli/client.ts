/** One request, one response over the daemon's Unix socket (NDJSON). */
import { createConnection } from "node:net";
import type { Response } from "../protocol/messages.js";

export class UnreachableError extends Error {}

/** Sends one request line (JSON without a newline) and resolves with the answer. */
export function call(socketPath: string, line: string): Promise<Response> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      sock.destroy();
      fn();
    };
    sock.on("connect", () => sock.write(line + "\n"));
    sock.on("data", (chunk: Buffer) => {
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
      finish(() => reject(new UnreachableError(`cannot reach mfc_daemon at ${socketPath}: ${err.code === "ENOENT" ? "no such socket (is the daemon running?)" : err.code === "EACCES" ? "permission denied (are you in the socket group?)" : err.code === "ECONNREFUSED" ? "connection refused (daemon not running?)" : err.message}`)));
    });
    sock.on("end", () => finish(() => reject(new UnreachableError(`mfc_daemon at ${socketPath} closed the connection without answering`))));
  });
}
