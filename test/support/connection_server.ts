/**
 * The daemon's own Connection and RunQueue behind a Unix socket in a temp directory, with a
 * request function of the test's: for tests of how answers travel, without a daemon.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Connection } from "../../src/daemon/connection.js";
import { RunQueue } from "../../src/daemon/run_queue.js";
import type { Answer } from "../../src/protocol/streamed.js";

export interface ConnectionServer {
  path: string;
  /** The daemon side of every connection, in accept order. */
  accepted: { socket: Socket; conn: Connection }[];
  close(): Promise<void>;
}

export async function startConnectionServer(serve: (line: Buffer) => Promise<Answer>, maxRequestBytes: number): Promise<ConnectionServer> {
  const dir = mkdtempSync(join(tmpdir(), "mfct-conn-"));
  const path = join(dir, "s.sock");
  const queue = new RunQueue();
  const accepted: ConnectionServer["accepted"] = [];
  const server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (socket) => {
    const limits = { maxRequestBytes, clientTimeoutMs: 60_000, requestTimeoutMs: 60_000 };
    accepted.push({ socket, conn: new Connection(socket, "test", limits, queue, serve) });
  });
  await new Promise<void>((r) => server.listen(path, r));
  return {
    path, accepted,
    async close() {
      for (const a of accepted) a.socket.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
