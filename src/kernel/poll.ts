/** Readiness of a non-blocking fd on the Node event loop: koffi.node.poll (a libuv uv_poll). */
import koffi from "./koffi.js";

/** koffi 3.3.4's index.d.ts types the callback as `(ev) => void`, but uv.cc's OnPoll calls it
 *  with `(status, events)`; status < 0 means libuv has already stopped the watcher. */
type PollEvents = { readable: boolean; writable: boolean; disconnect: boolean };
type PollCallback = (status: number, events: PollEvents) => void;
type PollHandle = { start(opts: { readable: boolean }, cb: PollCallback): void; close(): void };
const poll = koffi.node.poll as unknown as (fd: number, opts: { readable: boolean }, cb: PollCallback) => PollHandle;

export interface Watch { close(): void }

/**
 * Calls `drain` whenever `fd` is readable; drain must read until EAGAIN. A socket error (sk_err,
 * e.g. a netlink overrun) makes libuv stop the watcher with a negative status after drain() has
 * consumed the error: it is started again. close() before closing the fd: libuv must forget it first.
 */
export function watchReadable(fd: number, drain: () => void): Watch {
  let closed = false;
  const onPoll: PollCallback = (status) => {
    drain();
    if (status < 0 && !closed) handle.start({ readable: true }, onPoll);
  };
  const handle = poll(fd, { readable: true }, onPoll);
  return {
    close(): void {
      if (closed) return;
      closed = true;
      handle.close();
    },
  };
}
