/** SIOCGIFFLAGS: an interface's flags (up, running, multicast), in the daemon's namespace. */
import { SOCK_CLOEXEC, sys } from "./libc.js";

const AF_INET = 2;
const SOCK_DGRAM = 2;
const SIOCGIFFLAGS = 0x8913;
export const IFF_UP = 0x1;
export const IFF_RUNNING = 0x40;
export const IFF_MULTICAST = 0x1000;

/** undefined when the interface does not exist. */
export function interfaceFlags(ifname: string): number | undefined {
  if (ifname.length === 0 || ifname.length > 15) return undefined;
  const fd = sys.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return undefined;
  try {
    const ifr = Buffer.alloc(40); // struct ifreq: name[16], then the union (ifr_flags is a short)
    ifr.write(ifname, 0, "latin1");
    if (sys.ioctl(fd, SIOCGIFFLAGS, ifr) !== 0) return undefined;
    return ifr.readUInt16LE(16);
  } finally {
    sys.close(fd);
  }
}
