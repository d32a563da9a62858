/** SO_PEERCRED / SO_PEERGROUPS: who is on the other end of a Unix socket (Node has no API). */
import { SOL_SOCKET, SO_PEERCRED, SO_PEERGROUPS } from "./abi.js";
import { KernelError, errnoOf } from "./errors.js";
import { lastErrno, sys } from "./libc.js";

export interface PeerCred { pid: number; uid: number; gid: number; groups: number[] }

export function peerCredentials(fd: number): PeerCred {
  const cred = Buffer.alloc(12);
  const len: [number] = [12];
  if (sys.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, len) !== 0) throw new KernelError("getsockopt(SO_PEERCRED)", lastErrno());
  return { pid: cred.readInt32LE(0), uid: cred.readUInt32LE(4), gid: cred.readUInt32LE(8), groups: peerGroups(fd) };
}

function peerGroups(fd: number): number[] {
  let size = 64 * 4;
  for (let attempt = 0; attempt < 4; attempt++) {
    const buf = Buffer.alloc(size);
    const len: [number] = [size];
    if (sys.getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, buf, len) === 0) {
      const out: number[] = [];
      for (let i = 0; i + 4 <= len[0]; i += 4) out.push(buf.readUInt32LE(i));
      return out;
    }
    const errno = lastErrno();
    // ERANGE: the kernel wrote the size it needs into len.
    if (errno !== errnoOf("ERANGE")) throw new KernelError("getsockopt(SO_PEERGROUPS)", errno);
    size = Math.max(len[0], size * 2);
  }
  throw new KernelError("getsockopt(SO_PEERGROUPS)", errnoOf("ERANGE"));
}

export function groupId(name: string): number | undefined {
  return sys.getgrnamGid(name);
}
