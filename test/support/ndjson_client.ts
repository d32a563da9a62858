/** An NDJSON client for the daemon's Unix socket: one connection, requests answered in order (tests and bench). */
import { createConnection, type Socket } from "node:net";

export type Reply = Record<string, unknown> & { status?: unknown };

export class NdjsonClient {
  private chunks: Buffer[] = [];
  private readonly waiting: { resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];
  private failure: Error | undefined;

  private constructor(private readonly sock: Socket) {
    sock.on("data", (chunk: Buffer) => this.onData(chunk));
    const fail = (err: Error): void => {
      this.failure ??= err;
      for (const w of this.waiting.splice(0)) w.reject(err);
    };
    sock.on("error", fail);
    sock.on("close", () => fail(new Error("daemon closed the connection")));
  }

  static connect(path: string): Promise<NdjsonClient> {
    return new Promise((resolve, reject) => {
      const sock = createConnection(path);
      sock.once("connect", () => {
        sock.off("error", reject);
        resolve(new NdjsonClient(sock));
      });
      sock.once("error", reject);
    });
  }

  private onData(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      this.chunks.push(chunk.subarray(start, nl));
      const text = Buffer.concat(this.chunks).toString("utf8");
      this.chunks = [];
      start = nl + 1;
      const w = this.waiting.shift();
      if (!w) continue;
      try {
        w.resolve(JSON.parse(text) as Reply);
      } catch (err) {
        w.reject(err as Error);
      }
    }
    if (start < chunk.length) this.chunks.push(chunk.subarray(start));
  }

  request(req: Record<string, unknown>): Promise<Reply> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.sock.write(JSON.stringify(req) + "\n");
    });
  }

  /** request() that throws unless the daemon answered status "ok". */
  async ok(req: Record<string, unknown>): Promise<Reply> {
    const r = await this.request(req);
    if (r.status !== "ok") throw new Error(`${String(req.action)} failed: ${JSON.stringify(r).slice(0, 300)}`);
    return r;
  }

  close(): void {
    this.failure ??= new Error("closed");
    this.sock.destroy();
  }
}

/** One request on a fresh connection. */
export async function once(path: string, req: Record<string, unknown>): Promise<Reply> {
  const c = await NdjsonClient.connect(path);
  try {
    return await c.ok(req);
  } finally {
    c.close();
  }
}
