/**
 * A raw NDJSON client for hostile-input tests: connects to a Unix socket, sends arbitrary bytes
 * (not necessarily JSON, not necessarily whole lines), collects the response lines as they come,
 * and records when and how the daemon closed the connection. Never throws on socket errors
 * (EPIPE, ECONNRESET, ...): they are recorded in `error` and count as a close.
 *
 *   const c = await RawClient.connect(sock);
 *   await c.send('{"action":"PING","id":1}\n');
 *   const [line] = await c.waitLines(1);
 *   c.destroy();
 */
import { createConnection, type Socket } from "node:net";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface ConnectError extends Error { code?: string }

export class RawClient {
  /** Every complete response line received, in order (without the newline). */
  readonly lines: string[] = [];
  /** Bytes received after the last newline (a response the daemon never finished). */
  partial = Buffer.alloc(0);
  /** The daemon sent FIN (socket.end) or the connection was reset/closed. */
  closed = false;
  /** The daemon half-closed (FIN seen) - set together with `closed` unless the close was an error. */
  ended = false;
  /** Socket error, if any (EPIPE/ECONNRESET when the daemon closed while we were writing). */
  error: NodeJS.ErrnoException | undefined;
  /** Date.now() when the close was observed. */
  closedAt: number | undefined;
  private readonly waiters = new Set<() => void>();

  private constructor(readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      let buf = this.partial.length ? Buffer.concat([this.partial, chunk]) : chunk;
      for (let nl = buf.indexOf(0x0a); nl >= 0; nl = buf.indexOf(0x0a)) {
        this.lines.push(buf.subarray(0, nl).toString("utf8"));
        buf = buf.subarray(nl + 1);
      }
      this.partial = Buffer.from(buf);
      this.wake();
    });
    socket.on("end", () => { this.ended = true; this.markClosed(); });
    socket.on("close", () => this.markClosed());
    socket.on("error", (err: NodeJS.ErrnoException) => { this.error ??= err; this.markClosed(); });
  }

  /** Connects; rejects with the connect error (err.code: EACCES, ECONNREFUSED, ENOENT, ...). */
  static connect(path: string, timeoutMs = 5_000): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = createConnection(path);
      const timer = setTimeout(() => { s.destroy(); reject(new Error(`connect to ${path} timed out`)); }, timeoutMs);
      const onError = (err: Error): void => { clearTimeout(timer); reject(err); };
      s.once("error", onError);
      s.once("connect", () => {
        clearTimeout(timer);
        s.off("error", onError);
        resolve(new RawClient(s));
      });
    });
  }

  private markClosed(): void {
    if (!this.closed) {
      this.closed = true;
      this.closedAt = Date.now();
    }
    this.wake();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Resolves when pred() holds (checked on every event) or after timeoutMs; returns pred(). */
  private waitUntil(pred: () => boolean, timeoutMs: number): Promise<boolean> {
    if (pred()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(pred());
      };
      const check = (): void => { if (pred()) done(); };
      const timer = setTimeout(done, timeoutMs);
      this.waiters.add(check);
    });
  }

  /**
   * Writes bytes; resolves once they are handed to the kernel, or once the connection is closed
   * (a write to a closed connection is not an error here - the test looks at `closed`).
   */
  send(data: string | Buffer | Uint8Array): Promise<void> {
    if (this.socket.destroyed || this.socket.writableEnded) return Promise.resolve();
    return new Promise((resolve) => {
      let settled = false;
      const onClose = (): void => { if (this.closed) finish(); };
      const finish = (): void => {
        if (settled) return;
        settled = true;
        this.waiters.delete(onClose);
        resolve();
      };
      this.waiters.add(onClose);
      this.socket.write(data, () => finish());
    });
  }

  /** Waits until at least `n` lines in total have arrived; returns all lines (maybe fewer on close/timeout). */
  async waitLines(n: number, timeoutMs = 5_000): Promise<string[]> {
    await this.waitUntil(() => this.lines.length >= n || this.closed, timeoutMs);
    // A close can race with data still queued in the same tick; give it one turn.
    if (this.lines.length < n && this.closed) await sleep(0);
    return this.lines.slice();
  }

  /** Response lines parsed as JSON objects (throws on a non-JSON line: the daemon must never send one). */
  async waitResponses(n: number, timeoutMs = 5_000): Promise<Record<string, unknown>[]> {
    const lines = await this.waitLines(n, timeoutMs);
    return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /** Resolves true once the daemon closed the connection, false on timeout. */
  waitClosed(timeoutMs = 5_000): Promise<boolean> {
    return this.waitUntil(() => this.closed, timeoutMs);
  }

  /** Half-closes our side (the daemon sees EOF). */
  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** One connection, write `data` (one or more lines), wait for `n` responses, close. */
export async function exchange(path: string, data: string | Buffer, n: number, timeoutMs = 5_000): Promise<Record<string, unknown>[]> {
  const c = await RawClient.connect(path);
  try {
    await c.send(data);
    const res = await c.waitResponses(n, timeoutMs);
    if (res.length < n) throw new Error(`expected ${n} response(s), got ${res.length}${c.closed ? " (connection closed)" : ""}: ${JSON.stringify(res)}`);
    return res;
  } finally {
    c.destroy();
  }
}
