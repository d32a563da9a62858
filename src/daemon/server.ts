/**
 * The Unix socket: created 0660 with no window in which it is more open, group `socket_group`,
 * and every peer checked with SO_PEERCRED/SO_PEERGROUPS before a byte it sent is read.
 */
import { chown, unlink } from "node:fs/promises";
import { mkdirSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import { peerCredentials, type PeerCred } from "../kernel/peercred.js";
import { LineSplitter } from "../protocol/framing.js";
import type { Response } from "../protocol/messages.js";
import { LOG, log } from "./log.js";

export interface ServerOptions {
  path: string;
  groupId: number | undefined;
  maxRequestBytes: number;
  maxConnections: number;
  clientTimeoutMs: number;
}

export type LineHandler = (line: Buffer, peer: PeerCred) => Promise<Response>;

/**
 * Backpressure: a connection with this many requests read but not yet answered (its client is not
 * reading the answers) is not read further until answers drain; else one client that writes
 * without reading makes the daemon queue answers until it runs out of memory.
 */
const MAX_UNANSWERED = 32;

export class ControlServer {
  private server: Server | undefined;
  /** Open connections, each with the promise of its last queued answer. */
  private readonly clients = new Map<Socket, { answered: () => Promise<void>; stopReading: () => void }>();

  constructor(private readonly opts: ServerOptions, private readonly handle: LineHandler) {}

  async listen(): Promise<void> {
    mkdirSync(dirname(this.opts.path), { recursive: true, mode: 0o755 });
    await this.removeStaleSocket();
    const server = createServer({ pauseOnConnect: true }, (s) => this.accept(s));
    server.maxConnections = this.opts.maxConnections;
    // bind() creates the socket file with mode 0777 & ~umask: 0660 from the first instant.
    const old = process.umask(0o117);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(this.opts.path, () => { server.off("error", reject); resolve(); });
      });
    } finally {
      process.umask(old);
    }
    if (this.opts.groupId !== undefined) await chown(this.opts.path, -1, this.opts.groupId);
    this.server = server;
  }

  /** A socket file left by a crash is removed; one a live daemon answers on is not. */
  private async removeStaleSocket(): Promise<void> {
    const alive = await new Promise<boolean>((resolve) => {
      const c = createConnection(this.opts.path);
      c.once("connect", () => { c.destroy(); resolve(true); });
      c.once("error", () => resolve(false));
    });
    if (alive) throw new Error(`another daemon is listening on ${this.opts.path}`);
    await unlink(this.opts.path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "ENOENT") throw err;
    });
  }

  private accept(socket: Socket): void {
    const peer = this.authorise(socket);
    if (!peer) return;
    socket.on("close", () => this.clients.delete(socket));
    socket.on("error", () => socket.destroy());
    socket.setTimeout(this.opts.clientTimeoutMs, () => socket.destroy());
    const splitter = new LineSplitter(this.opts.maxRequestBytes);
    // Requests of one connection are answered in order; others proceed independently.
    let chain = Promise.resolve();
    let unanswered = 0;
    let closing = false;
    socket.on("data", (chunk: Buffer) => {
      for (const ev of splitter.push(chunk)) {
        if (ev.kind === "too_large") {
          closing = true;
          socket.pause();
          chain = chain.then(() => this.send(socket, {
            status: "error", error_code: "E_TOO_LARGE", message: `Request line exceeds max_request_bytes (${this.opts.maxRequestBytes} bytes); closing.`,
          })).then(() => { socket.end(); });
          return;
        }
        const line = ev.line;
        if (line.length === 0 || (line.length === 1 && line[0] === 0x0d)) continue;
        unanswered++;
        chain = chain.then(async () => this.send(socket, await this.handle(line, peer))).then(() => {
          unanswered--;
          if (!closing && unanswered < MAX_UNANSWERED && socket.isPaused()) socket.resume();
        });
      }
      if (unanswered >= MAX_UNANSWERED) socket.pause();
    });
    this.clients.set(socket, {
      answered: () => chain,
      stopReading: () => { closing = true; socket.pause(); },
    });
    socket.resume();
  }

  private authorise(socket: Socket): PeerCred | undefined {
    const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
    let peer: PeerCred | undefined;
    try {
      // Node has no peer-credential API; the private fd is the only way. Fail closed without it.
      if (typeof fd === "number" && fd >= 0) peer = peerCredentials(fd);
    } catch (err) {
      log(LOG.err, `peer credentials unavailable: ${(err as Error).message}`);
    }
    if (peer && this.allowed(peer)) return peer;
    log(LOG.warning, `refused connection from ${peer ? `uid ${peer.uid} pid ${peer.pid}` : "unknown peer"}: not root, the daemon's user, or in socket_group`);
    socket.end(JSON.stringify({ status: "error", error_code: "E_PERMISSION_DENIED", message: "Permission denied: not root, the daemon's user, or a member of the socket group." }) + "\n");
    return undefined;
  }

  private allowed(p: PeerCred): boolean {
    if (p.uid === 0 || p.uid === process.getuid?.()) return true;
    const gid = this.opts.groupId;
    return gid !== undefined && (p.gid === gid || p.groups.includes(gid));
  }

  private send(socket: Socket, response: Response): Promise<void> {
    if (socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => socket.write(JSON.stringify(response) + "\n", () => resolve()));
  }

  /**
   * Stops accepting and reading, answers what was already received (the transaction in flight
   * finishes and its client learns the outcome), then closes every connection and removes the
   * socket file. A client that does not read its answer gets `drainMs`, then is cut off.
   */
  async close(drainMs = 5_000): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.all([...this.clients].map(async ([socket, conn]) => {
      conn.stopReading();
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => { timer = setTimeout(resolve, drainMs); });
      await Promise.race([conn.answered(), late]);
      clearTimeout(timer);
      socket.destroySoon();
      setTimeout(() => socket.destroy(), drainMs).unref();
    }));
    await closed;
    await unlink(this.opts.path).catch(() => undefined);
  }
}
