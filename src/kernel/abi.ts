/**
 * Linux ABI numbers the kernel modules share (x86_64 and aarch64 agree on all of them), in one
 * place: address families, socket types and flags, socket option levels and options, interface
 * flags, flock operations, and errno values with their names. Pure: no platform import, so pure
 * logic (engine, diagnostics) can name an errno without reaching node:os. Protocol messages and
 * structures (MRT_*, RTM_*, NLMSG_*) stay with the module that speaks the protocol.
 */

// Address families and protocols (socket(2), <linux/socket.h>, <netinet/in.h>).
export const AF_UNSPEC = 0;
export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_NETLINK = 16;
export const IPPROTO_IP = 0;
export const IPPROTO_IGMP = 2;
export const IPPROTO_IPV6 = 41;
export const IPPROTO_ICMPV6 = 58;
export const NETLINK_ROUTE = 0;

// Socket types and their flags.
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;

// recv(2) flags.
/** recv returns the datagram's real length even when it was cut. */
export const MSG_TRUNC = 0x20;
export const MSG_DONTWAIT = 0x40;

// Socket option levels and options.
export const SOL_SOCKET = 1;
export const SO_PEERCRED = 17;
/** SO_RCVTIMEO_OLD: struct timeval with 64-bit fields on LP64. */
export const SO_RCVTIMEO = 20;
export const SO_PEERGROUPS = 59;
export const SOL_NETLINK = 270;
export const NETLINK_CAP_ACK = 10;
export const NETLINK_EXT_ACK = 11;
export const NETLINK_GET_STRICT_CHK = 12;

// Interface flags (<linux/if.h>).
export const IFF_UP = 0x1;
export const IFF_RUNNING = 0x40;
export const IFF_MULTICAST = 0x1000;

// flock(2).
export const LOCK_EX = 2;
export const LOCK_NB = 4;

/** errno values by name (<asm-generic/errno*.h>; the names Node's os.constants.errno has). */
export const ERRNO = {
  EPERM: 1, ENOENT: 2, ESRCH: 3, EINTR: 4, EIO: 5, ENXIO: 6, E2BIG: 7, ENOEXEC: 8, EBADF: 9,
  ECHILD: 10, EAGAIN: 11, EWOULDBLOCK: 11, ENOMEM: 12, EACCES: 13, EFAULT: 14, EBUSY: 16,
  EEXIST: 17, EXDEV: 18, ENODEV: 19, ENOTDIR: 20, EISDIR: 21, EINVAL: 22, ENFILE: 23, EMFILE: 24,
  ENOTTY: 25, ETXTBSY: 26, EFBIG: 27, ENOSPC: 28, ESPIPE: 29, EROFS: 30, EMLINK: 31, EPIPE: 32,
  EDOM: 33, ERANGE: 34, EDEADLK: 35, ENAMETOOLONG: 36, ENOLCK: 37, ENOSYS: 38, ENOTEMPTY: 39,
  ELOOP: 40, ENOMSG: 42, EIDRM: 43, ENOSTR: 60, ENODATA: 61, ETIME: 62, ENOSR: 63, ENOLINK: 67,
  EPROTO: 71, EMULTIHOP: 72, EBADMSG: 74, EOVERFLOW: 75, EILSEQ: 84, ENOTSOCK: 88,
  EDESTADDRREQ: 89, EMSGSIZE: 90, EPROTOTYPE: 91, ENOPROTOOPT: 92, EPROTONOSUPPORT: 93,
  EOPNOTSUPP: 95, ENOTSUP: 95, EAFNOSUPPORT: 97, EADDRINUSE: 98, EADDRNOTAVAIL: 99, ENETDOWN: 100,
  ENETUNREACH: 101, ENETRESET: 102, ECONNABORTED: 103, ECONNRESET: 104, ENOBUFS: 105, EISCONN: 106,
  ENOTCONN: 107, ETIMEDOUT: 110, ECONNREFUSED: 111, EHOSTUNREACH: 113, EALREADY: 114,
  EINPROGRESS: 115, ESTALE: 116, EDQUOT: 122, ECANCELED: 125,
} as const;

export type ErrnoName = keyof typeof ERRNO;

const NAMES = new Map<number, string>();
// The first name of a number wins: EAGAIN (not EWOULDBLOCK), EOPNOTSUPP (not ENOTSUP).
for (const [name, num] of Object.entries(ERRNO)) if (!NAMES.has(num)) NAMES.set(num, name);

/** The errno's name, e.g. "EADDRNOTAVAIL"; `E<n>` for a number not in the table. */
export function errnoName(errno: number): string {
  return NAMES.get(errno) ?? `E${errno}`;
}
