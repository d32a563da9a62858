/**
 * One authorised client connection, from accept to close (SPEC §6.5). It owns its socket and
 * closes it on error, hang-up, idle timeout, request deadline, an over-long line, and at stop.
 *
 * It reads at most one request ahead: once a line is taken, reading stops until its answer has
 * been handed to the kernel, so a connection holds at most `max_request_bytes` plus one read of
 * raw bytes and one answer - never a queue of parsed requests. A client that hangs up loses the
 * one request taken (it runs; its answer goes nowhere) and nothing else is executed for it.
 *
 * A streamed answer (a large SHOW or transaction answer, protocol/streamed.ts) is one line written piece by piece: the
 * next piece is made only once the previous one has been taken by the kernel ('drain'), and never
 * in the same event-loop turn, so other connections, timers and the watchdog run in between, and
 * a client that stops reading holds one piece, not the answer. A hang-up stops it at once.
 *
 * Timers: `client_timeout_s` runs only while the daemon waits on the client (for a request, or
 * for it to read an answer), never while its request is being served; `request_timeout_s` runs
 * from the first byte of a request to its newline, so a client trickling bytes cannot keep a slot.
 */
import type { Socket } from "node:net";
import { setImmediate as nextTurn } from "node:timers/promises";
import { allocLarge } from "../kernel/huge_pages.js";
import { LineSplitter } from "../protocol/framing.js";
import { StreamedOk, type Answer } from "../protocol/streamed.js";
import { LOG, log } from "./log.js";
import type { RunQueue } from "./run_queue.js";

export interface ConnectionLimits {
  maxRequestBytes: number;
  clientTimeoutMs: number;
  requestTimeoutMs: number;
}

/** How long a connection being closed may take to flush its last line before it is cut off. */
export const CLOSE_GRACE_MS = 1_000;

/**
 * Writes a last line (if any) and FIN, then closes the socket once that is flushed - or, with
 * `waitForPeer`, once the peer closes too - and after CLOSE_GRACE_MS in any case. Without
 * waitForPeer reading stops at once, and what the peer still writes fails (EPIPE) when the socket
 * closes. With it the peer's input is read and discarded, never interpreted: a peer that wrote
 * before reading would otherwise get EPIPE instead of the line (Node drops unread input when a
 * write fails).
 */
export function closeAfter(socket: Socket, line: string | undefined, waitForPeer = false): void {
  // Before the write: a peer that already hung up makes it fail with EPIPE, and an 'error'
  // without a listener would kill the daemon.
  socket.on("error", () => socket.destroy());
  const timer = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
  socket.once("close", () => clearTimeout(timer));
  const flushed = (): void => { if (!waitForPeer) socket.destroy(); };
  if (waitForPeer) {
    socket.on("data", () => undefined);
    socket.once("end", () => socket.destroy());
    socket.resume();
  } else {
    socket.pause();
  }
  if (line === undefined) socket.end(flushed);
  else socket.end(line, flushed);
}

/**
 * waiting: reading, for the next request or the rest of one. working: a request is queued or
 * being served. answering: its answer is written but not yet flushed. closing: a last line is
 * being flushed (closeAfter). closed: the socket is gone.
 */
type Phase = "waiting" | "working" | "answering" | "closing" | "closed";

export class Connection {
  private phase: Phase = "waiting";
  private readonly splitter: LineSplitter;
  private deadline: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  /** The client half-closed: it sends no more requests but may still read answers. */
  private eof = false;
  private stopping = false;
  /** Resolves once the socket is closed. */
  readonly closed: Promise<void>;

  constructor(
    private readonly socket: Socket,
    /** The peer, for the log ("uid 1000 pid 4242"). */
    private readonly who: string,
    private readonly limits: ConnectionLimits,
    private readonly queue: RunQueue,
    private readonly serve: (line: Buffer) => Promise<Answer>,
  ) {
    this.splitter = new LineSplitter(limits.maxRequestBytes, allocLarge);
    this.closed = new Promise((resolve) => socket.once("close", () => {
      this.phase = "closed";
      clearTimeout(this.deadline);
      clearTimeout(this.graceTimer);
      this.splitter.clear();
      resolve();
    }));
    socket.on("error", () => socket.destroy());
    socket.on("timeout", () => socket.destroy());
    socket.on("data", (chunk: Buffer) => {
      this.splitter.push(chunk);
      this.pump();
    });
    socket.on("end", () => {
      this.eof = true;
      this.pump();
    });
    this.pump();
  }

  /**
   * Server stop: nothing more is read; a request already taken is answered (its transaction
   * finishes and its client learns the outcome), then the connection closes.
   */
  stop(): Promise<void> {
    this.stopping = true;
    if (this.phase === "waiting") this.socket.destroy();
    else if (this.phase === "answering") this.cutOffLater();
    return this.closed;
  }

  /** Serves the next complete request, or waits on the client for one. */
  private pump(): void {
    if (this.phase !== "waiting") return;
    if (this.stopping) {
      this.socket.destroy();
      return;
    }
    let ev = this.splitter.next();
    // Blank lines (and a lone CR) are not requests.
    while (ev?.kind === "line" && (ev.line.length === 0 || (ev.line.length === 1 && ev.line[0] === 0x0d))) ev = this.splitter.next();
    if (ev === undefined) {
      this.waitOnClient();
      return;
    }
    clearTimeout(this.deadline);
    this.deadline = undefined;
    if (ev.kind === "too_large") {
      log(LOG.info, `closing connection from ${this.who}: request longer than max_request_bytes (${this.limits.maxRequestBytes})`);
      this.phase = "closing";
      // The rest of the line is read and dropped (the splitter keeps nothing once overflowed) for
      // at most CLOSE_GRACE_MS: a client still writing it then reads its answer instead of EPIPE.
      closeAfter(this.socket, JSON.stringify({
        status: "error", error_code: "E_TOO_LARGE", message: `Request line exceeds max_request_bytes (${this.limits.maxRequestBytes} bytes); closing.`,
      }) + "\n", true);
      return;
    }
    const line = ev.line;
    this.phase = "working";
    this.socket.pause();
    this.socket.setTimeout(0); // the daemon is busy for this client: it is not idle
    this.queue.push(() => {
      this.run(line).catch((err: unknown) => {
        log(LOG.err, `connection from ${this.who}: ${(err as Error).message}`);
        this.socket.destroy();
      });
    });
  }

  private waitOnClient(): void {
    if (this.eof) {
      // The client has sent its last request and had every answer: a partial line is no request.
      this.phase = "closing";
      closeAfter(this.socket, undefined);
      return;
    }
    this.socket.setTimeout(this.limits.clientTimeoutMs);
    if (this.splitter.buffered === 0) {
      clearTimeout(this.deadline);
      this.deadline = undefined;
    } else {
      this.deadline ??= setTimeout(() => {
        log(LOG.info, `closing connection from ${this.who}: request not complete after request_timeout_s (${this.limits.requestTimeoutMs / 1000} s)`);
        this.socket.destroy();
      }, this.limits.requestTimeoutMs);
    }
    this.socket.resume();
  }

  private async run(line: Buffer): Promise<void> {
    // Hung up while queued: an answer nobody can read acknowledges nothing, so do not run it.
    if (this.socket.destroyed) return;
    const answer = await this.serve(line);
    if (this.socket.destroyed) return;
    this.phase = "answering";
    this.socket.setTimeout(this.limits.clientTimeoutMs); // now the client must read
    if (this.stopping) this.cutOffLater();
    if (answer instanceof StreamedOk) await this.stream(answer);
    else this.writeLast(JSON.stringify(answer) + "\n");
  }

  /** The answer's last (or only) bytes: once the kernel has them, the next request may be read. */
  private writeLast(text: string): void {
    // A failed write (EPIPE: the client hung up) emits 'error', which closes the connection.
    this.socket.write(text, (err) => {
      if (err || this.phase !== "answering") return;
      this.phase = "waiting";
      this.pump();
    });
  }

  /**
   * Writes a streamed answer piece by piece. Each write resets the client_timeout_s timer, so a
   * client that stops reading is cut off that long after it stopped; that, a hang-up or the
   * grace at stop destroys the socket, and no further piece is made.
   */
  private async stream(answer: StreamedOk): Promise<void> {
    for (;;) {
      if (this.socket.destroyed) return;
      const piece = answer.next();
      if (answer.done) {
        this.writeLast(piece);
        return;
      }
      if (!this.socket.write(piece)) await this.drained();
      await nextTurn();
    }
  }

  /** Resolves once what was written is taken by the kernel, or the socket is gone. */
  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off("drain", done);
        this.socket.off("close", done);
        resolve();
      };
      this.socket.on("drain", done);
      this.socket.on("close", done);
    });
  }

  /** At stop, a client that does not read its last answer is not waited for long. */
  private cutOffLater(): void {
    this.graceTimer ??= setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS);
  }
}
