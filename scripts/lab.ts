/**
 * The practice lab: a router with the README's interface names, a sender and two receivers, each in
 * its own network namespace, so that every example of the README can be tried on a one-NIC machine.
 * Run it with ./scripts/lab (or `npm run lab -- ...`); needs root. Nothing outside the four
 * namespaces is touched: the addresses below exist only inside them.
 *
 *   sender 10.0.0.1 eth0 --- eth0 10.0.0.254 [ router ] eth1 10.0.1.254 --- eth0 10.0.1.1 recv1
 *                                                        eth2 10.0.2.254 --- eth0 10.0.2.1 recv2
 *
 * IPv6 beside IPv4 on every link, the same numbers in fd00:0:N::/64 (added with nodad: usable at
 * once): sender fd00::1 (= fd00:0:0::1), router fd00::254, fd00:0:1::254, fd00:0:2::254, recv1
 * fd00:0:1::1, recv2 fd00:0:2::1; IPv6 forwarding is on in the router.
 *
 *   ./scripts/lab up                 create the namespaces (idempotent)
 *   ./scripts/run-dev.sh --lab       the dev daemon, inside the router namespace (it owns that
 *                                    namespace's multicast table; the host's is untouched)
 *   ./scripts/lab recv GROUP         recv1 and recv2 join GROUP and print what arrives
 *   ./scripts/lab send GROUP         the sender 10.0.0.1 (fd00::1 for an IPv6 GROUP) sends a few datagrams to GROUP
 *   ./scripts/lab status             what is up, the daemon in the router, the kernel's routes
 *   ./scripts/lab down               stop what runs inside (the daemon: SIGTERM) and remove it all
 *
 * MFC_LAB names the lab (default mfc-lab: namespaces mfc-lab-sender, -router, -recv1, -recv2), so
 * that tests can run their own lab beside a user's.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { isIPv6 } from "node:net";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const LAB = process.env.MFC_LAB || "mfc-lab";
const ROLES = ["sender", "router", "recv1", "recv2"] as const;
type Role = (typeof ROLES)[number];
const ns = (role: Role): string => `${LAB}-${role}`;
/** veth pairs: router interface, its addresses, the peer namespace and the peer's eth0 addresses (IPv4, IPv6). */
const LINKS = [
  { rif: "eth0", raddr: "10.0.0.254", raddr6: "fd00::254", peer: "sender" as Role, paddr: "10.0.0.1", paddr6: "fd00::1" },
  { rif: "eth1", raddr: "10.0.1.254", raddr6: "fd00:0:1::254", peer: "recv1" as Role, paddr: "10.0.1.1", paddr6: "fd00:0:1::1" },
  { rif: "eth2", raddr: "10.0.2.254", raddr6: "fd00:0:2::254", peer: "recv2" as Role, paddr: "10.0.2.1", paddr6: "fd00:0:2::1" },
];
const SENDER = "10.0.0.1";
const SENDER6 = "fd00::1";
const RECEIVERS = [
  { role: "recv1" as Role, addr: "10.0.1.1", addr6: "fd00:0:1::1", behind: "eth1" },
  { role: "recv2" as Role, addr: "10.0.2.1", addr6: "fd00:0:2::1", behind: "eth2" },
];
const SEND_JS = fileURLToPath(new URL("../test/lab/mcast_send.mjs", import.meta.url));
const RECV_JS = fileURLToPath(new URL("../test/lab/mcast_recv.mjs", import.meta.url));
const PICTURE = [
  `  sender ${SENDER} --- eth0 [ router ] eth1 --- recv1 10.0.1.1`,
  `                                     eth2 --- recv2 10.0.2.1`,
  `  IPv6: sender ${SENDER6}, recv1 fd00:0:1::1, recv2 fd00:0:2::1 (router: eth0 fd00::254, eth1 fd00:0:1::254, eth2 fd00:0:2::254)`,
].join("\n");

const say = (text = ""): void => void process.stdout.write(`${text}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

class UsageError extends Error {}

function ip(args: string[], opts: { quiet?: boolean } = {}): string {
  try {
    return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    if (opts.quiet) return "";
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(" ")}: ${(e.stderr ?? e.message).trim()}`, { cause: err });
  }
}
const inNs = (role: Role, ...args: string[]): string => ip(["-n", ns(role), ...args]);

function existing(): Role[] {
  const names = new Set(ip(["netns", "list"]).split("\n").map((l) => l.trim().split(/\s+/)[0]));
  return ROLES.filter((r) => names.has(ns(r)));
}

function pidsIn(role: Role): number[] {
  return ip(["netns", "pids", ns(role)], { quiet: true }).split(/\s+/).filter(Boolean).map(Number);
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ");
  } catch {
    return "";
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

function daemons(): { pid: number; cmd: string }[] {
  return pidsIn("router").map((pid) => ({ pid, cmd: cmdline(pid) })).filter((p) => p.cmd.includes("daemon_main") || p.cmd.includes("mfc_daemon"));
}

function up(): void {
  const have = existing();
  if (have.length === ROLES.length) {
    say(`lab ${LAB} is already up:`);
    say(PICTURE);
    return;
  }
  if (have.length > 0) {
    say(`lab ${LAB} is half there (${have.map(ns).join(", ")}): removing it first`);
    down({ quiet: true });
  }
  say(`creating lab ${LAB}: network namespaces ${ROLES.map(ns).join(", ")}`);
  try {
    for (const role of ROLES) ip(["netns", "add", ns(role)]);
    for (const l of LINKS) {
      // Both ends are created inside their namespaces: the host's own eth0 is never involved.
      ip(["link", "add", l.rif, "netns", ns("router"), "type", "veth", "peer", "name", "eth0", "netns", ns(l.peer)]);
    }
    for (const role of ROLES) inNs(role, "link", "set", "lo", "up");
    for (const l of LINKS) {
      inNs("router", "addr", "add", `${l.raddr}/24`, "dev", l.rif);
      inNs("router", "link", "set", l.rif, "up");
      inNs(l.peer, "addr", "add", `${l.paddr}/24`, "dev", "eth0");
      inNs(l.peer, "link", "set", "eth0", "up");
      // Multicast leaves through eth0 without IP_MULTICAST_IF; unicast replies go via the router.
      inNs(l.peer, "route", "add", "224.0.0.0/4", "dev", "eth0");
      inNs(l.peer, "route", "add", "default", "via", l.raddr);
      // IPv6 beside it; nodad: usable at once, without the 1-2 s of duplicate address detection.
      // (IPv6 multicast needs no route: the sender and receivers name their device.)
      inNs("router", "-6", "addr", "add", `${l.raddr6}/64`, "dev", l.rif, "nodad");
      inNs(l.peer, "-6", "addr", "add", `${l.paddr6}/64`, "dev", "eth0", "nodad");
      inNs(l.peer, "-6", "route", "add", "default", "via", l.raddr6);
    }
    // The router forwards IPv6, as a real router does (net.ipv6.conf.all.forwarding=1). /proc/sys/net
    // is the namespace's own for a process inside it: no sysctl(8) needed.
    execFileSync("ip", ["netns", "exec", ns("router"), "sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/all/forwarding"], { stdio: ["ignore", "ignore", "pipe"] });
  } catch (err) {
    down({ quiet: true });
    throw err;
  }
  say(PICTURE);
  say("");
  say("next: ./scripts/run-dev.sh --lab    (the dev daemon inside the router namespace; it sees eth0, eth1, eth2)");
  say(`      ./scripts/lab recv 239.1.1.1   ./scripts/lab send 239.1.1.1   ./scripts/lab down`);
}

function down(opts: { quiet?: boolean } = {}): void {
  const have = existing();
  if (have.length === 0) {
    if (!opts.quiet) say(`lab ${LAB} is not up: nothing to remove`);
    return;
  }
  // SIGTERM first: the daemon finishes its transaction, releases the table and keeps its state file.
  const pids = have.flatMap((r) => pidsIn(r).map((pid) => ({ pid, role: r })));
  for (const { pid, role } of pids) {
    if (!opts.quiet) say(`stopping pid ${pid} in ${role}: ${cmdline(pid) || "?"}`);
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      /* gone */
    }
  }
  const deadline = Date.now() + 5_000;
  while (pids.some((p) => alive(p.pid)) && Date.now() < deadline) execFileSync("sleep", ["0.05"]);
  for (const { pid } of pids) {
    try {
      if (alive(pid)) process.kill(pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
  for (const role of have) ip(["netns", "del", ns(role)], { quiet: true });
  if (!opts.quiet) say(`removed lab ${LAB}: ${have.map(ns).join(", ")}`);
}

function requireUp(): void {
  const have = existing();
  if (have.length !== ROLES.length) throw new UsageError(`lab ${LAB} is not up: run ./scripts/lab up first`);
}

function status(): void {
  const have = existing();
  if (have.length === 0) {
    say(`lab ${LAB}: down (./scripts/lab up creates it)`);
    return;
  }
  say(`lab ${LAB}: ${have.length === ROLES.length ? "up" : `half there (${have.join(", ")}): ./scripts/lab down, then up`}`);
  say(PICTURE);
  if (!have.includes("router")) return;
  const d = daemons();
  say(d.length ? `mfc_daemon in the router: ${d.map((p) => `pid ${p.pid} (${p.cmd})`).join(", ")}` : "mfc_daemon in the router: none (./scripts/run-dev.sh --lab starts it there)");
  const routes = ip(["-n", ns("router"), "mroute", "show"], { quiet: true }).trim();
  say("the router kernel's multicast routes (ip mroute show):");
  say(routes ? routes.split("\n").map((l) => `  ${l}`).join("\n") : "  (none)");
  // IPv6: listed when there are any (the daemon takes the IPv6 table with its first IPv6 change).
  const routes6 = ip(["-n", ns("router"), "-6", "mroute", "show"], { quiet: true }).trim();
  if (routes6) say(`the router kernel's IPv6 multicast routes (ip -6 mroute show):\n${routes6.split("\n").map((l) => `  ${l}`).join("\n")}`);
}

function checkGroup(group: string | undefined): string {
  if (!group) throw new UsageError("which group? e.g. 239.1.1.1");
  if (group.includes(":")) {
    // IPv6: ff00::/8, its first group written in full (ff3e::1:1); a zone ("%eth0") is not a group.
    if (!isIPv6(group) || !/^ff[0-9a-f]{2}:/i.test(group)) throw new UsageError(`'${group}' is not an IPv6 multicast group (ff00::/8, e.g. ff3e::1:1)`);
    return group;
  }
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(group);
  if (!m || m.slice(1).some((o) => Number(o) > 255) || Number(m[1]) < 224 || Number(m[1]) > 239) throw new UsageError(`'${group}' is not an IPv4 multicast group (224.0.0.0 - 239.255.255.255)`);
  return group;
}

function number(name: string, value: string | undefined, dflt: number, min: number, max: number): number {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got '${value}'`);
  return n;
}

async function send(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: {
    count: { type: "string", short: "c" }, interval: { type: "string", short: "i" }, ttl: { type: "string", short: "t" }, port: { type: "string", short: "p" },
  } });
  const group = checkGroup(positionals[0]);
  const count = number("count", values.count, 5, 1, 10_000);
  const intervalMs = number("interval", values.interval, 1_000, 0, 60_000);
  const ttl = number("ttl", values.ttl, 16, 1, 255);
  const port = number("port", values.port, 5000, 1, 65535);
  requireUp();
  // IPv6: the source address and the device it leaves by (ADDR%DEV); --ttl is the hop limit.
  const v6 = group.includes(":");
  const sender = v6 ? SENDER6 : SENDER;
  say(`sender ${sender}: ${count} datagram(s) to ${group} port ${port}, ${v6 ? "hop limit" : "TTL"} ${ttl}, into the router's eth0`);
  for (let i = 1; i <= count; i++) {
    if (i > 1) await sleep(intervalMs);
    const payload = `hello ${i}/${count} from ${sender}`;
    const local = v6 ? `${SENDER6}%eth0` : SENDER;
    execFileSync("ip", ["netns", "exec", ns("sender"), process.execPath, SEND_JS, group, String(port), "1", String(ttl), local, "0", payload], { stdio: ["ignore", "ignore", "inherit"] });
    say(`  sent: ${payload}`);
  }
}

async function recv(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: {
    seconds: { type: "string", short: "s" }, port: { type: "string", short: "p" },
  } });
  const group = checkGroup(positionals[0]);
  const seconds = number("seconds", values.seconds, 0, 0, 86_400);
  const port = number("port", values.port, 5000, 1, 65535);
  requireUp();
  const v6 = group.includes(":");
  const counts = new Map<string, number>();
  const kids: ChildProcess[] = [];
  // IPv4: joined on the interface of the receiver's address; IPv6: on the device named (ADDR%DEV).
  const ready = RECEIVERS.map(({ role, addr, addr6, behind }) => new Promise<void>((resolve, reject) => {
    const child = spawn("ip", ["netns", "exec", ns(role), process.execPath, RECV_JS, group, String(port), v6 ? `${addr6}%eth0` : addr], { stdio: ["pipe", "pipe", "inherit"] });
    kids.push(child);
    counts.set(role, 0);
    let buf = "";
    child.stdout.on("data", (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line === "READY") resolve();
        else if (line.startsWith("RX ")) {
          counts.set(role, (counts.get(role) ?? 0) + 1);
          say(`${role} (behind ${behind}) got: ${line.slice(3)}`);
        }
      }
    });
    child.once("exit", (code) => reject(new Error(`the receiver in ${ns(role)} exited (${code})`)));
  }));
  let finish: () => void = () => undefined;
  const done = new Promise<void>((r) => (finish = r));
  process.once("SIGINT", finish);
  process.once("SIGTERM", finish);
  try {
    await Promise.all(ready);
    const [r1, r2] = RECEIVERS.map((r) => (v6 ? r.addr6 : r.addr));
    say(`listening: recv1 ${r1} (behind eth1) and recv2 ${r2} (behind eth2) joined ${group}, port ${port}; ${seconds ? `for ${seconds} s` : "Ctrl-C stops"}`);
    if (seconds) setTimeout(finish, seconds * 1000).unref();
    await done;
  } finally {
    for (const k of kids) k.kill("SIGTERM");
  }
  say(`received: ${RECEIVERS.map(({ role, behind }) => `${role} (behind ${behind}) ${counts.get(role) ?? 0}`).join(", ")}`);
}

const USAGE = `usage: ./scripts/lab up|down|status
       ./scripts/lab send GROUP [--count N] [--interval MS] [--ttl N] [--port P]
       ./scripts/lab recv GROUP [--seconds S] [--port P]
GROUP is IPv4 (239.1.1.1) or IPv6 (ff3e::1:1); for IPv6, --ttl is the hop limit (default 16).
The practice lab: network namespaces ${ROLES.map(ns).join(", ")}.
${PICTURE}
The dev daemon runs in the router with ./scripts/run-dev.sh --lab.`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === "help" || cmd === "-h" || cmd === "--help") {
    say(USAGE);
    return 0;
  }
  if (process.getuid?.() !== 0) throw new Error("the lab needs root: it creates network namespaces (sudo ./scripts/lab ...)");
  switch (cmd) {
    case "up": up(); return 0;
    case "down": down(); return 0;
    case "status": status(); return 0;
    case "send": await send(rest); return 0;
    case "recv": await recv(rest); return 0;
    default: throw new UsageError(cmd ? `unknown command '${cmd}'` : "which command?");
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      process.stderr.write(`lab: ${(err as Error).message}\n${USAGE}\n`);
      process.exit(2);
    }
    process.stderr.write(`lab: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
