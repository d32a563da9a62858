/**
 * SIOCGIF* queries (struct ifreq) about interfaces: flags, name -> index, index -> name, answered
 * in the network namespace the socket was opened in (the daemon's: it never changes namespace;
 * struct fields read little-endian, as on x86_64 and aarch64). All on one datagram socket kept
 * open: libc's if_nametoindex and if_indextoname open and close a socket on every call (three
 * system calls, and a socket to allocate), and the engine asks for every interface of every
 * transaction group.
 */
import { AF_INET, SOCK_CLOEXEC, SOCK_DGRAM } from "./abi.js";
import { sys } from "./libc.js";

export { IFF_MULTICAST, IFF_RUNNING, IFF_UP } from "./abi.js";

const SIOCGIFNAME = 0x8910;
const SIOCGIFFLAGS = 0x8913;
const SIOCGIFINDEX = 0x8933;
/** IFNAMSIZ 16, with the terminating NUL: a name is at most 15 bytes (UTF-8, as the kernel stores it). */
const IFNAME_MAX_BYTES = 15;

/** CLOEXEC like every fd of ours; opened on first use. */
let querySocket = -1;
const ifr = Buffer.alloc(40); // struct ifreq: name[16], then the union (ifr_flags a short, ifr_ifindex an int)

/** ioctl `request` with `ifr` as filled by `fill`; false when the kernel refused (no such interface). */
function query(request: number, fill: () => void): boolean {
  if (querySocket < 0) querySocket = sys.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (querySocket < 0) return false;
  ifr.fill(0);
  fill();
  return sys.ioctl(querySocket, request, ifr) === 0;
}

/** ifr_name = `ifname`; false for a name no interface can have (empty, longer than 15 bytes). */
function byName(request: number, ifname: string): boolean {
  const bytes = Buffer.byteLength(ifname);
  // A NUL would end the name early for the kernel ("dn1\0x" is dn1); model/ifname.ts refuses it too.
  if (bytes === 0 || bytes > IFNAME_MAX_BYTES || ifname.includes("\0")) return false;
  return query(request, () => ifr.write(ifname, 0, "utf8"));
}

/** undefined when the interface does not exist. */
export function interfaceFlags(ifname: string): number | undefined {
  return byName(SIOCGIFFLAGS, ifname) ? ifr.readUInt16LE(16) : undefined;
}

/** if_nametoindex: undefined when the interface does not exist. */
export function interfaceIndex(ifname: string): number | undefined {
  return byName(SIOCGIFINDEX, ifname) ? ifr.readInt32LE(16) : undefined;
}

/** if_indextoname: undefined when no interface has that index. */
export function interfaceName(ifindex: number): string | undefined {
  if (!Number.isInteger(ifindex) || ifindex <= 0 || ifindex > 0x7fffffff) return undefined;
  if (!query(SIOCGIFNAME, () => ifr.writeInt32LE(ifindex, 16))) return undefined;
  const end = ifr.indexOf(0);
  return ifr.toString("utf8", 0, end < 0 || end > 16 ? 16 : end);
}
