/**
 * Link change notifications from rtnetlink (RTNLGRP_LINK), read on the Node event loop (poll.ts).
 */
import { AF_NETLINK, AF_UNSPEC, MSG_TRUNC, NETLINK_ROUTE, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_RAW } from "./abi.js";
import { KernelError, errnoOf } from "./errors.js";
import { NLMSG_HDRLEN, NLMSG_OVERRUN, align4, findStringAttr } from "./netlink.js";
import { lastErrno, sys } from "./libc.js";
import { watchReadable } from "./poll.js";

/** What changed. The daemon reconciles on any event (it does not look inside); tests check it. */
export type LinkEvent = { kind: "new" | "del"; ifname: string };
export interface LinkMonitor { close(): void }

const RTMGRP_LINK = 1;
const EINTR = errnoOf("EINTR");
const EAGAIN = errnoOf("EAGAIN");
const ENOBUFS = errnoOf("ENOBUFS");
const IFINFOMSG_LEN = 16;
const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const IFLA_IFNAME = 3;

const { socket, bind, recv, close: closeFd } = sys;

/** Parses one recv() datagram; returns true when the kernel says it dropped messages. */
function parseLinkMessages(buf: Buffer, n: number, onEvent: (e: LinkEvent) => void): boolean {
  let overrun = false;
  for (let off = 0; off + NLMSG_HDRLEN <= n; ) {
    const len = buf.readUInt32LE(off);
    const type = buf.readUInt16LE(off + 4);
    if (len < NLMSG_HDRLEN || off + len > n) break; // malformed: drop the rest of the datagram
    // NLM_F_MULTI parts are parsed like any other; NLMSG_DONE / NOOP / ERROR (an ack to a
    // request we never send) carry no link state, so they are skipped.
    if (type === NLMSG_OVERRUN) overrun = true;
    else if ((type === RTM_NEWLINK || type === RTM_DELLINK) && len >= NLMSG_HDRLEN + IFINFOMSG_LEN) {
      const ifi = off + NLMSG_HDRLEN;
      // br_netlink.c also multicasts AF_BRIDGE RTM_NEWLINK/DELLINK to RTNLGRP_LINK for bridge
      // port changes; only AF_UNSPEC messages describe the link itself.
      if (buf.readUInt8(ifi) === AF_UNSPEC) {
        onEvent({
          kind: type === RTM_NEWLINK ? "new" : "del",
          ifname: findStringAttr(buf, ifi + IFINFOMSG_LEN, off + len, IFLA_IFNAME), // rtnl_fill_ifinfo always adds it
        });
      }
    }
    off += align4(len);
  }
  return overrun;
}

/** Opens socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC|SOCK_NONBLOCK, NETLINK_ROUTE) bound to
 *  RTMGRP_LINK and reports every RTM_NEWLINK / RTM_DELLINK. onOverrun means events were lost
 *  (ENOBUFS): the caller must resync its view of the links. */
export function openLinkMonitor(onEvent: (e: LinkEvent) => void, onOverrun: () => void): LinkMonitor {
  const fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
  if (fd < 0) throw new KernelError("socket", lastErrno());
  // struct sockaddr_nl: nl_family u16, nl_pad u16, nl_pid u32 (0 = kernel assigns), nl_groups u32.
  const addr = Buffer.alloc(12);
  addr.writeUInt16LE(AF_NETLINK, 0);
  addr.writeUInt32LE(RTMGRP_LINK, 8);
  if (bind(fd, addr, addr.length) < 0) {
    const errno = lastErrno();
    closeFd(fd);
    throw new KernelError("bind", errno);
  }

  const buf = Buffer.alloc(64 * 1024);
  let closed = false;

  const drain = (): void => {
    while (!closed) {
      // MSG_TRUNC makes netlink_recvmsg return the full datagram length even if it was cut.
      const n = recv(fd, buf, buf.length, MSG_TRUNC);
      if (n < 0) {
        const errno = lastErrno();
        if (errno === EAGAIN) return;
        if (errno === EINTR) continue;
        // netlink_overrun() sets sk_err = ENOBUFS when the receive queue was full; recv reports
        // it once and the socket keeps working.
        if (errno === ENOBUFS) { onOverrun(); continue; }
        throw new KernelError("recv", errno);
      }
      if (n > buf.length || parseLinkMessages(buf, n, onEvent)) onOverrun();
    }
  };

  // The overrun's sk_err makes datagram_poll() report EPOLLERR, and libuv answers POLLERR by
  // stopping the watcher; watchReadable starts it again once drain() has consumed the error.
  const watch = watchReadable(fd, drain);

  return {
    close(): void {
      if (closed) return;
      closed = true;
      watch.close(); // uv_poll_stop + uv_close: libuv must forget the fd before we close it
      closeFd(fd);
    },
  };
}
