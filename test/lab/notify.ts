/**
 * Plays systemd's side of sd_notify: a Unix datagram socket at $NOTIFY_SOCKET that records every
 * message the daemon sends (READY=1, STATUS=..., WATCHDOG=1, STOPPING=1) with its arrival time.
 */
import assert from "node:assert/strict";
import { AF_UNIX, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK } from "../../src/kernel/abi.js";
import { sys } from "../../src/kernel/libc.js";

export interface NotifyListener {
  /** Every datagram received so far, in order. */
  messages: string[];
  /** performance.now() at which each message was drained (same index as messages). */
  times: number[];
  /** Arrival times of the messages equal to text (e.g. "WATCHDOG=1"). */
  arrivals(text: string): number[];
  /** Stops polling after a last drain, and closes the socket. */
  close(): void;
}

/** A datagram listener bound at `path`, drained every 5 ms by polling a non-blocking socket. */
export function listenNotify(path: string): NotifyListener {
  const fd = sys.socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  assert.ok(fd >= 0, "socket(AF_UNIX, SOCK_DGRAM)");
  const addr = Buffer.alloc(110);
  addr.writeUInt16LE(1, 0);
  addr.write(path, 2);
  assert.equal(sys.bind(fd, addr, 2 + Buffer.byteLength(path) + 1), 0, "bind");
  const messages: string[] = [];
  const times: number[] = [];
  const buf = Buffer.alloc(4096);
  const drain = (): void => {
    for (let n = sys.recv(fd, buf, buf.length, 0); n > 0; n = sys.recv(fd, buf, buf.length, 0)) {
      messages.push(buf.toString("utf8", 0, n));
      times.push(performance.now());
    }
  };
  const timer = setInterval(drain, 5);
  return {
    messages,
    times,
    arrivals: (text) => times.filter((_, i) => messages[i] === text),
    close: () => { clearInterval(timer); drain(); sys.close(fd); },
  };
}
