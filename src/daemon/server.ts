/**
 * The Unix socket: created 0660 with no window in which it is more open, group `socket_group`,
 * and every peer checked with SO_PEERCRED/SO_PEERGROUPS before a byte it sent is read. A refused
 * peer gets one line and is closed; an allowed one is served by a Connection (connection.ts),
 * with requests of all connections started fairly through one RunQueue.
 */
import { lchown, unlink } from "node:fs/promises";
import { lstatSync, mkdirSync, type Stats } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import { socketPathProblem } from "../config/config.js";
import { modeOf, UnsafePathError, walkPath, writableBy } from "../fs/safe_path.js";
import { peerCredentials, type PeerCred } from "../kernel/peercred.js";
import type { Answer } from "../protocol/streamed.js";
import { closeAfter, Connection } from "./connection.js";
import { LOG, log } from "./log.js";
import { RunQueue } from "./run_queue.js";

export interface ServerOptions {
  path: string;
  groupId: number | undefined;
  maxRequestBytes: number;
  maxConnections: number;
  clientTimeoutMs: number;
  requestTimeoutMs: number;
}

export type LineHandler = (line: Buffer, peer: PeerCred) => Promise<Answer>;

export class ControlServer {
  private server: Server | undefined;
  /** The socket file bind() created (socket_path with its symlinks resolved). */
  private socketFile: string | undefined;
  /** Every open socket: its Connection once authorised, undefined while a refused one closes. */
  private readonly sockets = new Map<Socket, Connection | undefined>();
  /** Authorised connections open (at most max_connections), and refused ones still closing. */
  private served = 0;
  private refusing = 0;
  private readonly queue = new RunQueue();

  constructor(private readonly opts: ServerOptions, private readonly handle: LineHandler) {}

  async listen(): Promise<void> {
    const lengthProblem = socketPathProblem(this.opts.path);
    if (lengthProblem) throw new Error(lengthProblem);
    mkdirSync(dirname(this.opts.path), { recursive: true, mode: 0o755 });
    const { real, entry } = this.checkSocketPath();
    await this.removeStaleSocket(real, entry);
    // allowHalfOpen: a client may send its requests, shut down its side, and still read the answers.
    const server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (s) => this.accept(s));
    // Refused peers are counted apart (refuse()); this is only the bound on sockets of both kinds.
    server.maxConnections = 2 * this.opts.maxConnections;
    // bind() creates the socket file with mode 0777 & ~umask: 0660 from the first instant.
    const old = process.umask(0o117);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(real, () => { server.off("error", reject); resolve(); });
      });
    } finally {
      process.umask(old);
    }
    this.socketFile = real;
    this.server = server;
    // The group is set by name, after bind. fchown(2) on the fd would be the race-free way, but on
    // a listening Unix socket it changes the socket inode, not the file bind() created, and Node
    // has no fchownat. lchown is sound here: checkSocketPath() made sure that only root and this
    // daemon's user can write to the socket's directory (and that nobody else can swap any
    // directory on the way to it), so nobody can replace the name between bind and lchown; and
    // lchown never follows a symlink, so even a replaced name could not redirect the chown.
    if (this.opts.groupId !== undefined) await lchown(real, -1, this.opts.groupId);
  }

  /**
   * socket_path must lead, through directories nobody else can change, to a directory that only
   * root and this daemon's user can write to: anyone else who could write there could rename the
   * socket away and put their own in its place (capturing every CLI request), or plant a symlink
   * for the daemon to act on. A sticky world-writable directory (/tmp) is refused too: it still
   * lets others create names. Returns the real path (no symlinks) and what is there now.
   */
  private checkSocketPath(): { real: string; entry: Stats | undefined } {
    const path = this.opts.path;
    const me = process.geteuid?.() ?? 0;
    const trusted = (uid: number): boolean => uid === 0 || uid === me;
    let walked;
    try {
      walked = walkPath(path, trusted, false);
    } catch (err) {
      if (err instanceof UnsafePathError) throw new Error(`socket_path ${path}: ${err.message}`, { cause: err });
      throw err;
    }
    const { dir, dirStat, real, entry } = walked;
    if (!trusted(dirStat.uid)) {
      throw new Error(`socket directory ${dir} belongs to uid ${dirStat.uid}, not to root or this daemon's user (uid ${me}): chown it, or choose another socket_path`);
    }
    const by = writableBy(dirStat);
    if (by !== undefined) {
      throw new Error(`socket directory ${dir} is writable by ${by} (mode ${modeOf(dirStat)}): others could replace the socket or plant files there; run chmod go-w ${dir}, or choose another socket_path`);
    }
    // The real path is what bind() gets: it must fit sun_path too.
    const realProblem = socketPathProblem(real);
    if (realProblem) throw new Error(`${realProblem} (${path} resolves to ${real})`);
    return { real, entry };
  }

  /**
   * A socket file left by a crash is removed; one a live daemon answers on is not; anything else
   * (a regular file such as a mistyped config path, a symlink, a directory) is left alone and
   * the start refused.
   */
  private async removeStaleSocket(real: string, entry: Stats | undefined): Promise<void> {
    if (!entry) return;
    if (!entry.isSocket()) {
      const kind = entry.isFile() ? "a regular file" : entry.isSymbolicLink() ? "a symbolic link" : entry.isDirectory() ? "a directory" : "not a socket";
      throw new Error(`socket_path ${this.opts.path} exists and is ${kind}, not a socket: refusing to remove it (remove it yourself if it is not needed, or choose another socket_path)`);
    }
    const alive = await new Promise<boolean>((resolve) => {
      const c = createConnection(real);
      c.once("connect", () => { c.destroy(); resolve(true); });
      c.once("error", () => resolve(false));
    });
    if (alive) throw new Error(`another daemon is listening on ${this.opts.path}`);
    await unlink(real).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "ENOENT") throw err;
    });
  }

  private accept(socket: Socket): void {
    this.sockets.set(socket, undefined);
    socket.once("close", () => this.sockets.delete(socket));
    const peer = this.authorise(socket);
    if (!peer) {
      this.refuse(socket);
      return;
    }
    if (this.served >= this.opts.maxConnections) {
      socket.destroy(); // over the limit: closed unanswered, as the kernel backlog would
      return;
    }
    this.served++;
    socket.once("close", () => { this.served--; });
    const { maxRequestBytes, clientTimeoutMs, requestTimeoutMs } = this.opts;
    this.sockets.set(socket, new Connection(socket, `uid ${peer.uid} pid ${peer.pid}`, { maxRequestBytes, clientTimeoutMs, requestTimeoutMs }, this.queue, (line) => this.handle(line, peer)));
  }

  /**
   * One E_PERMISSION_DENIED line, then closed as soon as the peer closes, or after
   * CLOSE_GRACE_MS. Refused peers never take an allowed client's slot: they are counted apart,
   * and beyond max_connections of them closing at once, one is closed as soon as the line is out.
   */
  private refuse(socket: Socket): void {
    const line = JSON.stringify({ status: "error", error_code: "E_PERMISSION_DENIED", message: "Permission denied: not root, the daemon's user, or a member of the socket group." }) + "\n";
    const linger = this.refusing < this.opts.maxConnections;
    if (linger) {
      this.refusing++;
      socket.once("close", () => { this.refusing--; });
    }
    closeAfter(socket, line, linger);
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
    return undefined;
  }

  private allowed(p: PeerCred): boolean {
    if (p.uid === 0 || p.uid === process.getuid?.()) return true;
    const gid = this.opts.groupId;
    return gid !== undefined && (p.gid === gid || p.groups.includes(gid));
  }

  /**
   * Stops accepting and reading, answers the requests already taken (the transaction in flight
   * finishes and its client learns the outcome), then closes every connection and removes the
   * socket file. Idle, slow and refused clients are cut off at once; one that does not read its
   * last answer gets CLOSE_GRACE_MS.
   */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.all([...this.sockets].map(async ([socket, conn]) => {
      if (conn) await conn.stop();
      else socket.destroy();
    }));
    await closed;
    // Only our socket: if something else took the name meanwhile, it is not ours to remove.
    const file = this.socketFile;
    let isSocket = false;
    try { isSocket = file !== undefined && lstatSync(file).isSocket(); } catch { /* already gone */ }
    if (file && isSocket) await unlink(file).catch(() => undefined);
  }
}
