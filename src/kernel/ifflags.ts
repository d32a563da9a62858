/** SIOCGIFFLAGS: an interface's flags (up, running, multicast), in the daemon's namespace. */
import { AF_INET, SOCK_CLOEXEC, SOCK_DGRAM } from "./abi.js";
import { sys } from "./libc.js";

export { IFF_MULTICAST, IFF_RUNNING, IFF_UP } from "./abi.js";

const SIOCGIFFLAGS = 0x8913;
/** IFNAMSIZ 16, with the terminating NUL: a name is at most 15 bytes. */
const IFNAME_MAX_BYTES = 15;

/** One datagram socket for every query (the daemon asks on each `add`); CLOEXEC like every fd of ours. */
let querySocket = -1;
const ifr = Buffer.alloc(40); // struct ifreq: name[16], then the union (ifr_flags is a short)

/** undefined when the interface does not exist. */
export function interfaceFlags(ifname: string): number | undefined {
  const name = Buffer.from(ifname, "utf8");
  if (name.length === 0 || name.length > IFNAME_MAX_BYTES) return undefined;
  if (querySocket < 0) querySocket = sys.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (querySocket < 0) return undefined;
  ifr.fill(0);
  name.copy(ifr, 0);
  if (sys.ioctl(querySocket, SIOCGIFFLAGS, ifr) !== 0) return undefined;
  return ifr.readUInt16LE(16);
}
