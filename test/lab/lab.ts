/**
 * Network-namespace lab for end-to-end tests of the multicast router daemon.
 *
 *   sender eth0 10.X.1.2 <-> up0 10.X.1.1 [router] dn1 10.X.2.1 <-> eth0 10.X.2.2 recv1
 *                                                  dn2 10.X.3.1 <-> eth0 10.X.3.2 recv2
 *
 * Usage pattern for test authors (needs root):
 *
 *   const lab = await createLab();
 *   after(() => lab.destroy());          // or: try { ... } finally { await lab.destroy(); }
 *
 * destroy() is idempotent. As a safety net every live lab is also torn down
 * synchronously on process 'exit', SIGINT and SIGTERM; removeStaleLabs() removes
 * namespaces left behind by processes that died with SIGKILL.
 *
 * Start long-running programs (e.g. the daemon) with lab.spawn() so they are
 * killed by destroy(); any other process found inside the lab's namespaces is
 * killed too.
 */
import { spawn as spawnChild, execFileSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}
export interface ExecOptions {
  input?: string;
  timeoutMs?: number;
  allowFail?: boolean;
}
export interface SendOptions {
  ttl?: number;
  intervalMs?: number;
  payload?: string;
  /** Namespace to send from (default: the sender namespace). */
  fromNs?: string;
  /** Local address selecting source IP and egress interface (default: the sender's eth0 address of the group's family). */
  localAddr?: string;
  /** IPv6: the egress interface (default eth0, the peer side of every lab link). */
  dev?: string;
}
export interface Receiver {
  /** pid of the receiver process (inside its namespace). */
  pid: number;
  count(): number;
  payloads(): string[];
  /** Resolves true once at least n datagrams arrived, false on timeout. */
  waitFor(n: number, timeoutMs?: number): Promise<boolean>;
  stop(): Promise<void>;
}
export type LabRole = "sender" | "router" | "recv1" | "recv2";
export interface Lab {
  id: string;
  ns: Record<LabRole, string>;
  routerIf: { up: string; dn1: string; dn2: string };
  addr: { sender: string; routerUp: string; recv1: string; routerDn1: string; recv2: string; routerDn2: string };
  /** The same hosts' IPv6 addresses (fd00:X:N::H, added with nodad: usable at once). */
  addr6: { sender: string; routerUp: string; recv1: string; routerDn1: string; recv2: string; routerDn2: string };
  /** The per-lab second octet X of every 10.X.N.M address. */
  x: number;
  exec(ns: string, cmd: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Start a long-running process in ns; it is killed by destroy(). */
  /** `outputFd`: the child's stdout and stderr go to this fd (a log file) instead of pipes to us. */
  spawn(ns: string, cmd: string[], outputFd?: number): ChildProcess;
  send(group: string, port: number, count: number, opts?: SendOptions): Promise<void>;
  /** Receiver in any lab namespace (normally recv1/recv2); joins on that namespace's lab address unless localAddr is given. */
  listen(which: LabRole, group: string, port: number, opts?: { localAddr?: string }): Promise<Receiver>;
  addDummy(name: string): Promise<void>;
  delLink(name: string): Promise<void>;
  destroy(): Promise<void>;
}

const SEND_JS = fileURLToPath(new URL("./mcast_send.mjs", import.meta.url));
const RECV_JS = fileURLToPath(new URL("./mcast_recv.mjs", import.meta.url));
const PREFIX = "mfct-";
// ns name = mfct-<role>-<pid>-<counter>-<rand>; the pid lets removeStaleLabs spare live owners.
const NAME_RE = /^mfct-[a-z0-9]+-(\d+)(?:-|$)/;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Run a command in the root namespace (only used for `ip` itself). */
function run(cmd: string[], opts: ExecOptions = {}, track?: Set<ChildProcess>): Promise<ExecResult> {
  const [file, ...args] = cmd;
  if (!file) return Promise.reject(new Error("empty command"));
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const child = spawnChild(file, args, { stdio: ["pipe", "pipe", "pipe"] });
    track?.add(child);
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdin.on("error", () => {}); // EPIPE if the child exits before reading input
    child.stdin.end(opts.input ?? "");
    child.on("error", (err) => {
      clearTimeout(timer);
      track?.delete(child);
      reject(err);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      track?.delete(child);
      if (timedOut) stderr += `\n[lab] timed out after ${timeoutMs}ms`;
      const res: ExecResult = { code: code ?? (signal ? 128 : -1), stdout, stderr };
      if (res.code !== 0 && !opts.allowFail) {
        reject(new Error(`command failed (${res.code}): ${cmd.join(" ")}\n${stderr.trim()}`));
      } else resolve(res);
    });
  });
}

/** True if pid exists and is not a zombie (orphans may never be reaped inside containers). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

function killQuiet(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

/** Synchronous teardown of one namespace: SIGKILL everything inside, then delete it. */
function removeNsSync(name: string): void {
  try {
    const pids = execFileSync("ip", ["netns", "pids", name], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    for (const p of pids.split(/\s+/).filter(Boolean)) killQuiet(Number(p), "SIGKILL");
  } catch {
    /* namespace may not exist */
  }
  try {
    execFileSync("ip", ["netns", "del", name], { stdio: "ignore" });
  } catch {
    /* already gone */
  }
}

function listNsSync(): string[] {
  const out = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
  return out
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .filter((n) => n.startsWith(PREFIX));
}

// ---- process-wide safety net -------------------------------------------------

const liveLabs = new Set<LabImpl>();
const usedX = new Set<number>();
let counter = 0;
let hooksInstalled = false;

function cleanupAllSync(): void {
  for (const lab of liveLabs) lab.destroySync();
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", cleanupAllSync);
  for (const [sig, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    const handler = (): void => {
      cleanupAllSync();
      // Adding a listener disables Node's default "exit on signal"; restore it unless
      // someone else also listens (they then decide when to exit).
      if (process.listenerCount(sig) <= 1) process.exit(code);
    };
    process.on(sig, handler);
  }
}

function pickX(): number {
  // Spread concurrent processes over 1..250 by pid, and avoid our own live labs.
  const start = (process.pid * 31 + counter * 7) % 250;
  for (let i = 0; i < 250; i++) {
    const x = ((start + i) % 250) + 1;
    if (!usedX.has(x)) return x;
  }
  throw new Error("no free lab subnet (250 labs alive in this process?)");
}

// ---- the lab -----------------------------------------------------------------

class LabImpl implements Lab {
  readonly id: string;
  readonly x: number;
  readonly ns: Lab["ns"];
  readonly routerIf = { up: "up0", dn1: "dn1", dn2: "dn2" };
  readonly addr: Lab["addr"];
  readonly addr6: Lab["addr6"];
  private readonly children = new Set<ChildProcess>();
  private destroying: Promise<void> | undefined;

  constructor() {
    counter++;
    this.id = `${process.pid}-${counter}-${randomBytes(2).toString("hex")}`;
    this.x = pickX();
    usedX.add(this.x);
    const n = (role: string): string => `${PREFIX}${role}-${this.id}`;
    this.ns = { sender: n("snd"), router: n("rtr"), recv1: n("rx1"), recv2: n("rx2") };
    const a = (net: number, host: number): string => `10.${this.x}.${net}.${host}`;
    this.addr = {
      sender: a(1, 2),
      routerUp: a(1, 1),
      recv1: a(2, 2),
      routerDn1: a(2, 1),
      recv2: a(3, 2),
      routerDn2: a(3, 1),
    };
    const a6 = (net: number, host: number): string => `fd00:${this.x}:${net}::${host}`;
    this.addr6 = { sender: a6(1, 2), routerUp: a6(1, 1), recv1: a6(2, 2), routerDn1: a6(2, 1), recv2: a6(3, 2), routerDn2: a6(3, 1) };
  }

  private ip(ns: string, ...args: string[]): Promise<ExecResult> {
    return run(["ip", "-n", ns, ...args], {}, this.children);
  }

  async setup(): Promise<void> {
    const { sender, router, recv1, recv2 } = this.ns;
    for (const name of [sender, router, recv1, recv2]) {
      // Concurrent first-time `ip netns add` can race on mounting /run/netns; retry.
      for (let attempt = 0; ; attempt++) {
        const r = await run(["ip", "netns", "add", name], { allowFail: true });
        if (r.code === 0) break;
        if (attempt >= 4) throw new Error(`ip netns add ${name} failed: ${r.stderr.trim()}`);
        await run(["ip", "netns", "del", name], { allowFail: true });
        await sleep(50 * (attempt + 1));
      }
    }
    // Veths are created directly inside the namespaces: nothing touches the root ns.
    const links: [string, string, string, number][] = [
      ["up0", sender, this.addr.sender, 1],
      ["dn1", recv1, this.addr.recv1, 2],
      ["dn2", recv2, this.addr.recv2, 3],
    ];
    for (const [rIf, peerNs] of links) {
      await run(["ip", "link", "add", rIf, "netns", router, "type", "veth", "peer", "name", "eth0", "netns", peerNs]);
    }
    for (const ns of [sender, router, recv1, recv2]) await this.ip(ns, "link", "set", "lo", "up");
    for (const [rIf, peerNs, peerAddr, net] of links) {
      await this.ip(router, "addr", "add", `10.${this.x}.${net}.1/24`, "dev", rIf);
      await this.ip(router, "link", "set", rIf, "multicast", "on", "up");
      await this.ip(peerNs, "addr", "add", `${peerAddr}/24`, "dev", "eth0");
      await this.ip(peerNs, "link", "set", "eth0", "multicast", "on", "up");
      // Multicast leaves via eth0 without needing IP_MULTICAST_IF; default route for unicast replies.
      await this.ip(peerNs, "route", "add", "224.0.0.0/4", "dev", "eth0");
      await this.ip(peerNs, "route", "add", "default", "via", `10.${this.x}.${net}.1`);
      // IPv6 beside IPv4; nodad: usable at once (STACK.md), no 1-2 s wait for duplicate detection.
      await this.ip(router, "-6", "addr", "add", `fd00:${this.x}:${net}::1/64`, "dev", rIf, "nodad");
      await this.ip(peerNs, "-6", "addr", "add", `fd00:${this.x}:${net}::2/64`, "dev", "eth0", "nodad");
      await this.ip(peerNs, "-6", "route", "add", "default", "via", `fd00:${this.x}:${net}::1`);
    }
    // rp_filter would drop (S,G) traffic in some topologies; effective value is max(all, if).
    const sysctls = ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"];
    for (const i of ["all", "default", "lo", "up0", "dn1", "dn2"]) sysctls.push(`net.ipv4.conf.${i}.rp_filter=0`);
    await this.exec(router, ["sysctl", "-qw", ...sysctls]);
  }

  exec(ns: string, cmd: string[], opts?: ExecOptions): Promise<ExecResult> {
    return run(["ip", "netns", "exec", ns, ...cmd], opts, this.children);
  }

  spawn(ns: string, cmd: string[], outputFd?: number): ChildProcess {
    if (this.destroying) throw new Error("lab destroyed");
    // stdin is a pipe: well-behaved children (our helpers) exit when it closes, i.e. when we die.
    const out = outputFd ?? "pipe";
    const child = spawnChild("ip", ["netns", "exec", ns, ...cmd], { stdio: ["pipe", out, out] });
    child.stdin?.on("error", () => {});
    this.children.add(child);
    child.on("exit", () => this.children.delete(child));
    child.on("error", () => this.children.delete(child));
    return child;
  }

  async send(group: string, port: number, count: number, opts: SendOptions = {}): Promise<void> {
    const ns = opts.fromNs ?? this.ns.sender;
    const v6 = group.includes(":");
    const local = (opts.localAddr ?? (v6 ? this.addr6.sender : this.addr.sender)) + (v6 ? `%${opts.dev ?? "eth0"}` : "");
    const args = [group, port, count, opts.ttl ?? 8, local, opts.intervalMs ?? 0, opts.payload ?? "mfct"].map(String);
    await this.exec(ns, [process.execPath, SEND_JS, ...args], { timeoutMs: 10_000 + count * (opts.intervalMs ?? 0) });
  }

  async listen(which: LabRole, group: string, port: number, opts: { localAddr?: string } = {}): Promise<Receiver> {
    const v6 = group.includes(":");
    const addr = v6 ? this.addr6 : this.addr;
    const defAddr = { sender: addr.sender, router: addr.routerUp, recv1: addr.recv1, recv2: addr.recv2 };
    // IPv6 joins by interface: every peer's lab link is eth0 (the router's: pass localAddr "addr%dev").
    const local = opts.localAddr ?? (v6 ? `${defAddr[which]}%eth0` : defAddr[which]);
    const child = this.spawn(this.ns[which], [process.execPath, RECV_JS, group, String(port), local]);
    const rx: string[] = [];
    let stderr = "";
    let buf = "";
    let ready = false;
    let onReady: (() => void) | undefined;
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout?.on("data", (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line === "READY") {
          ready = true;
          onReady?.();
        } else if (line.startsWith("RX ")) rx.push(line.slice(3));
      }
    });
    const exited = new Promise<void>((r) => child.once("close", () => r()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail("timeout waiting for READY"), 5_000);
      const fail = (why: string): void => {
        clearTimeout(timer);
        child.kill("SIGKILL");
        reject(new Error(`receiver in ${which} failed: ${why}\n${stderr.trim()}`));
      };
      onReady = () => {
        clearTimeout(timer);
        resolve();
      };
      child.once("error", (e) => fail(e.message));
      void exited.then(() => !ready && fail("exited before READY"));
    });
    return {
      pid: child.pid ?? -1,
      count: () => rx.length,
      payloads: () => [...rx],
      waitFor: async (n: number, timeoutMs = 3_000): Promise<boolean> => {
        const deadline = Date.now() + timeoutMs;
        while (rx.length < n && Date.now() < deadline) await sleep(20);
        return rx.length >= n;
      },
      stop: async (): Promise<void> => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill("SIGTERM");
        const t = setTimeout(() => child.kill("SIGKILL"), 2_000);
        await exited;
        clearTimeout(t);
      },
    };
  }

  async addDummy(name: string): Promise<void> {
    // Some CI kernels lack CONFIG_DUMMY; ifb is an equivalent peer-less, always-carrier device.
    const r = await run(["ip", "-n", this.ns.router, "link", "add", name, "type", "dummy"], { allowFail: true }, this.children);
    if (r.code !== 0) {
      if (!/Unknown device type/i.test(r.stderr)) throw new Error(`ip link add ${name} type dummy failed: ${r.stderr.trim()}`);
      await this.ip(this.ns.router, "link", "add", name, "type", "ifb");
    }
    await this.ip(this.ns.router, "link", "set", name, "multicast", "on", "up");
  }

  async delLink(name: string): Promise<void> {
    await this.ip(this.ns.router, "link", "del", name);
  }

  destroy(): Promise<void> {
    this.destroying ??= this.doDestroy();
    return this.destroying;
  }

  private async doDestroy(): Promise<void> {
    // Polite SIGTERM first (lets the daemon under test clean up), SIGKILL after 1s.
    const kids = [...this.children];
    for (const c of kids) c.kill("SIGTERM");
    const deadline = Date.now() + 1_000;
    while (kids.some((c) => c.pid !== undefined && c.exitCode === null && c.signalCode === null && isAlive(c.pid))) {
      if (Date.now() > deadline) break;
      await sleep(20);
    }
    this.destroySync();
  }

  /** Idempotent, synchronous: usable from process 'exit' handlers. */
  destroySync(): void {
    for (const c of this.children) killQuiet(c.pid, "SIGKILL");
    this.children.clear();
    for (const name of Object.values(this.ns)) removeNsSync(name);
    liveLabs.delete(this);
    usedX.delete(this.x);
    this.destroying ??= Promise.resolve();
  }
}

export async function createLab(): Promise<Lab> {
  installHooks();
  const lab = new LabImpl();
  liveLabs.add(lab);
  try {
    await lab.setup();
  } catch (err) {
    await lab.destroy();
    throw err;
  }
  return lab;
}

/**
 * Removes leftover mfct-* namespaces (global teardown); returns how many were removed.
 * Namespaces of other processes that are still alive are kept unless includeLive is set,
 * so concurrently running test files are not disturbed; this process's own labs are destroyed.
 */
export async function removeStaleLabs(opts: { includeLive?: boolean } = {}): Promise<number> {
  const names = listNsSync();
  for (const lab of [...liveLabs]) await lab.destroy();
  let removed = 0;
  for (const name of names) {
    const owner = Number(NAME_RE.exec(name)?.[1] ?? NaN);
    if (!opts.includeLive && Number.isInteger(owner) && owner !== process.pid && isAlive(owner)) continue;
    removeNsSync(name); // no-op for our own labs destroyed above
    removed++;
  }
  return removed;
}
