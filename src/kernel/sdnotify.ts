/**
 * sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET (a path, or "@name" for the
 * abstract namespace). Sent from our own PID, which systemd requires. No-op without the variable.
 */
import { AF_UNIX, SOCK_CLOEXEC, SOCK_DGRAM } from "./abi.js";
import { sys } from "./libc.js";

export function sdNotify(state: string, socketPath = process.env.NOTIFY_SOCKET): boolean {
  if (!socketPath) return false;
  const addr = Buffer.alloc(110);
  addr.writeUInt16LE(AF_UNIX, 0);
  const path = Buffer.from(socketPath.startsWith("@") ? `\0${socketPath.slice(1)}` : socketPath, "utf8");
  if (path.length > 107) return false;
  path.copy(addr, 2);
  // Abstract addresses are not NUL-terminated: the length says where they end.
  const addrLen = 2 + path.length + (socketPath.startsWith("@") ? 0 : 1);
  const fd = sys.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  try {
    const msg = Buffer.from(state, "utf8");
    return sys.sendto(fd, msg, msg.length, 0, addr, addrLen) === msg.length;
  } finally {
    sys.close(fd);
  }
}
