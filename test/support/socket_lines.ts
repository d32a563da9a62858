/** A raw client of a Unix socket for tests that watch an answer arrive: connect, read one line. */
import { createConnection, type Socket } from "node:net";

export function connect(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

/** Reads one answer line to its end (it may come in many pieces); `onFirst` on the first piece. */
export function readLine(s: Socket, onFirst?: () => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on("data", (c: Buffer) => {
      if (chunks.length === 0) onFirst?.();
      chunks.push(c);
      if (c.includes(0x0a)) resolve(Buffer.concat(chunks).toString("utf8"));
    });
    s.once("error", reject);
    s.once("close", () => reject(new Error("closed before the end of the line")));
  });
}

/** Waits until `count()` stops moving (a stream waits on its client, or is over); returns it. */
export async function settledCount(count: () => number): Promise<number> {
  let last = -1;
  let still = 0;
  for (let i = 0; i < 500 && still < 10; i++) {
    await new Promise((r) => setTimeout(r, 20));
    still = count() === last ? still + 1 : 0;
    last = count();
  }
  return count();
}

/** Hangs up once `bytes` of an answer have arrived; resolves with how many had arrived then. */
export function hangUpAfter(s: Socket, bytes: number): Promise<number> {
  let got = 0;
  return new Promise((resolve) => {
    s.on("data", (c: Buffer) => {
      got += c.length;
      if (got >= bytes && !s.destroyed) {
        s.destroy();
        resolve(got);
      }
    });
  });
}
