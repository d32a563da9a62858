// End to end: an smcroute.conf imported with the built `mfc import smcroute` (no daemon), applied
// with `mfc apply -` in a lab router, forwards real multicast as the file says — and as smcrouted
// itself (Debian's smcroute package, run first in the same router with `-f FILE -n -N`) forwards
// it: the same receivers get the same flows, and the kernel entry each flow uses has the same
// input and outputs with the same TTL thresholds; its mgroup line is the same kernel join.
// Needs root and a build. Run:
//   npm run build && node --import tsx --test test/e2e/import.test.ts
//
//   sender eth0 --- up0 [router] dn1 --- eth0 recv1      (dn1: ttl-threshold 4)
//                               dn2 --- eth0 recv2
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLab, type Receiver } from "../lab/lab.js";
import { runCli, startDaemon } from "../lab/daemon.js";
import { sleep, until } from "../lab/wait.js";

/** One `ip -j mroute show` entry (iproute2 6.1; "ttl" is left out when it is 1). */
interface IpMroute { src: string; dst: string; iif: string; multipath?: { oif: string; ttl?: number }[]; state: string }
/** What the kernel does with a flow: the entry it uses (input, outputs with thresholds), or nothing. */
interface Forwarding { iif: string; oifs: string[] }

/** Long enough for a datagram that was going to arrive to have arrived (veth is synchronous). */
const QUIET_MS = 300;
const PORT = 42001;
const SMCROUTED = spawnSync("sh", ["-c", "command -v smcrouted"], { encoding: "utf8" }).stdout.trim();

const lab = await createLab();
after(() => lab.destroy());
const dir = mkdtempSync(join(tmpdir(), "mfct-import-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const S = lab.addr.sender;
const OTHER = `10.${lab.x}.1.3`; // a second source on the sender's link

const CONF = `# e2e: the router's smcroute.conf
phyint up0 enable
phyint dn1 enable ttl-threshold 4   # TTL scoping: only TTL > 4 leaves on dn1
phyint dn2 enable

mroute from up0 source ${S} group 225.20.0.1 to dn1 dn2
mroute from up0 group 225.20.0.2 to dn2
mroute from up0 group 225.20.1.0/30 to dn1
mroute from up0 source ${OTHER} group 225.20.0.3 to dn1
mroute from up0 group 225.20.0.4 to wlan+
mgroup from dn2 group 225.20.9.9
`;
const WILDCARD_LINE = 10;

/** The flows sent, and where the file says each must arrive. `from`: the sender's source address. */
const FLOWS: { tag: string; group: string; ttl: number; from?: string; to: ("recv1" | "recv2")[] }[] = [
  { tag: "sg", group: "225.20.0.1", ttl: 8, to: ["recv1", "recv2"] },
  { tag: "sg-ttl4", group: "225.20.0.1", ttl: 4, to: ["recv2"] },
  { tag: "star", group: "225.20.0.2", ttl: 8, to: ["recv2"] },
  { tag: "range", group: "225.20.1.2", ttl: 8, to: ["recv1"] },
  { tag: "outside-range", group: "225.20.1.9", ttl: 8, to: [] },
  { tag: "wrong-source", group: "225.20.0.3", ttl: 8, to: [] },
  { tag: "other-source", group: "225.20.0.3", ttl: 8, from: OTHER, to: ["recv1"] },
  { tag: "wildcard", group: "225.20.0.4", ttl: 8, to: [] },
];
const GROUPS = [...new Set(FLOWS.map((f) => f.group))];
const PER_FLOW = 3;

before(async () => {
  await lab.exec(lab.ns.sender, ["ip", "addr", "add", `${OTHER}/24`, "dev", "eth0"]);
  writeFileSync(join(dir, "smcroute.conf"), CONF);
});

/**
 * Sends every flow (PER_FLOW datagrams, payload = tag), then a last datagram to both receivers, and
 * returns the tags each receiver got once that last one is in. The receivers join every group on
 * one port; a socket bound to the port gets the datagrams of every group joined in its namespace
 * (IP_MULTICAST_ALL), so the first receiver of each namespace sees all and in order.
 */
async function deliveries(): Promise<Record<"recv1" | "recv2", string[]>> {
  const rx: Record<"recv1" | "recv2", Receiver[]> = { recv1: [], recv2: [] };
  try {
    for (const which of ["recv1", "recv2"] as const) for (const g of GROUPS) rx[which].push(await lab.listen(which, g, PORT));
    for (const f of FLOWS) await lab.send(f.group, PORT, PER_FLOW, { ttl: f.ttl, payload: f.tag, localAddr: f.from ?? S });
    await lab.send("225.20.0.1", PORT, 1, { payload: "end" });
    const first = { recv1: rx.recv1[0] as Receiver, recv2: rx.recv2[0] as Receiver };
    for (const which of ["recv1", "recv2"] as const) {
      await until(`'end' at ${which} (got ${first[which].payloads().join(",")})`, () => first[which].payloads().includes("end"), 10_000);
    }
    await sleep(QUIET_MS);
    return { recv1: first.recv1.payloads().filter((p) => p !== "end"), recv2: first.recv2.payloads().filter((p) => p !== "end") };
  } finally {
    await Promise.all([...rx.recv1, ...rx.recv2].map((r) => r.stop()));
  }
}

/** What the file says: each flow's tag PER_FLOW times at each of its receivers, in sending order. */
function expected(): Record<"recv1" | "recv2", string[]> {
  const at = (which: "recv1" | "recv2"): string[] => FLOWS.filter((f) => f.to.includes(which)).flatMap((f) => Array<string>(PER_FLOW).fill(f.tag));
  return { recv1: at("recv1"), recv2: at("recv2") };
}

/** The groups the router's kernel has joined on `ifname` (/proc/net/igmp: little-endian hex). */
async function joined(ifname: string): Promise<string[]> {
  const text = (await lab.exec(lab.ns.router, ["cat", "/proc/net/igmp"])).stdout;
  const groups: string[] = [];
  let dev = "";
  for (const line of text.split("\n").slice(1)) {
    const head = /^\d+\s+(\S+)\s*:/.exec(line);
    if (head) dev = head[1] as string;
    const hex = /^\s+([0-9A-F]{8})\s/.exec(line)?.[1];
    if (hex && dev === ifname) groups.push([6, 4, 2, 0].map((i) => parseInt(hex.slice(i, i + 2), 16)).join("."));
  }
  return groups;
}

async function ipMroute(): Promise<IpMroute[]> {
  const r = await lab.exec(lab.ns.router, ["ip", "-j", "mroute", "show"]);
  return (r.stdout.trim() === "" ? [] : JSON.parse(r.stdout)) as IpMroute[];
}

/**
 * The entry the kernel forwards (source, group) with, as its lookup picks it: the (S,G) entry,
 * else the (*,G) one. Unresolved entries and entries without outputs forward nothing. A (*,G)
 * entry lists its own iif among the oifs (the kernel never sends a (*,G) packet back out of it).
 */
function forwardingOf(table: IpMroute[], source: string, group: string): Forwarding | null {
  const e = table.find((x) => x.src === source && x.dst === group && x.state === "resolved") ??
    table.find((x) => x.src === "0.0.0.0" && x.dst === group && x.state === "resolved");
  if (!e) return null;
  const oifs = (e.multipath ?? []).filter((o) => !(e.src === "0.0.0.0" && o.oif === e.iif)).map((o) => `${o.oif}(ttl ${o.ttl ?? 1})`).sort();
  return oifs.length === 0 ? null : { iif: e.iif, oifs };
}

const flowKeys = FLOWS.map((f) => ({ source: f.from ?? S, group: f.group }));
const tableView = (table: IpMroute[]): Record<string, Forwarding | null> =>
  Object.fromEntries(flowKeys.map((k) => [`(${k.source}, ${k.group})`, forwardingOf(table, k.source, k.group)]));

let smcroute: { got: Record<"recv1" | "recv2", string[]>; table: Record<string, Forwarding | null> } | undefined;

void describe("mfc import smcroute: a router's smcroute.conf, imported and applied, forwards as smcrouted does", () => {
  void it("smcrouted forwards the file as it says (the reference)", { skip: SMCROUTED === "" ? "smcrouted is not installed (scripts/setup.sh test installs Debian's smcroute)" : false }, async () => {
    const proc: ChildProcess = lab.spawn(lab.ns.router, [SMCROUTED, "-f", join(dir, "smcroute.conf"), "-n", "-N", "-l", "debug",
      "-u", join(dir, "smcroute.sock"), "-P", join(dir, "smcroute.pid")]);
    let log = "";
    proc.stderr?.on("data", (b: Buffer) => (log += b.toString()));
    proc.stdout?.on("data", (b: Buffer) => (log += b.toString()));
    const exited = new Promise<void>((res) => proc.once("exit", () => res()));
    try {
      // It installs the exact (S,G) routes at start; (*,G) and range rules on the first packet.
      await until("smcrouted's (S,G) route in the kernel", async () => (await ipMroute()).some((e) => e.dst === "225.20.0.1"), 10_000);
      const got = await deliveries();
      smcroute = { got, table: tableView(await ipMroute()) };
      assert.deepEqual(got, expected(), `smcrouted log:\n${log}`);
      assert.ok((await joined("dn2")).includes("225.20.9.9"), "smcrouted joined the mgroup group on dn2");
    } finally {
      proc.kill("SIGTERM");
      await exited;
    }
    // Its table went with its socket: mfc_daemon can take it.
    assert.deepEqual(await ipMroute(), []);
  });

  void it("mfc import (no daemon) | mfc apply - forwards the same flows to the same receivers, and not the others", async () => {
    const imported = await runCli(["-s", join(dir, "no-daemon.sock"), "import", "smcroute", join(dir, "smcroute.conf")]);
    assert.equal(imported.code, 1, `the wildcard line is left out, so exit 1: ${imported.stderr}`);
    assert.match(imported.stderr, new RegExp(`smcroute\\.conf:${WILDCARD_LINE}: error: to 'wlan\\+' is an interface wildcard`));
    assert.match(imported.stderr, /smcroute\.conf:8: note: group range 225\.20\.1\.0\/30 expanded into 4 exact routes/);
    assert.match(imported.stderr, /1 line\(s\) not imported/);
    const doc = JSON.parse(imported.stdout) as { vifs: unknown[]; routes: unknown[]; joins?: unknown[] };
    assert.deepEqual(doc.vifs, [{ ifname: "dn1", threshold: 4 }]);
    assert.equal(doc.routes.length, 1 + 1 + 4 + 1);
    assert.deepEqual(doc.joins, [{ ifname: "dn2", group: "225.20.9.9", source: null }]);

    const d = await startDaemon(lab);
    try {
      await d.mfcOk(["apply", "-"], { input: imported.stdout });
      const shown = JSON.parse(await d.mfcOk(["show", "-j"])) as { vifs: { ifname: string; threshold: number; pinned: boolean }[]; routes: { source: string | null; group: string; iif: string; oifs: { ifname: string; ttl: number }[]; state: string }[] };
      assert.deepEqual(shown.routes.map((r) => `${r.source ?? "*"} ${r.group} ${r.iif} ${r.oifs.map((o) => o.ifname).join(",")} ${r.state}`).sort(), [
        `${OTHER} 225.20.0.3 up0 dn1 installed`,
        `${S} 225.20.0.1 up0 dn1,dn2 installed`,
        "* 225.20.0.2 up0 dn2 installed",
        ...[0, 1, 2, 3].map((i) => `* 225.20.1.${i} up0 dn1 installed`),
      ].sort());
      assert.deepEqual(shown.vifs.filter((v) => v.pinned).map((v) => [v.ifname, v.threshold]), [["dn1", 4]]);
      assert.ok((await joined("dn2")).includes("225.20.9.9"), "the mgroup line is a kernel join on dn2, as under smcrouted");
      assert.ok(!(await joined("dn1")).includes("225.20.9.9"), "and on dn2 only");

      const got = await deliveries();
      assert.deepEqual(got, expected(), "each flow reaches exactly the receivers the file names");
      const table = tableView(await ipMroute());
      // The flows the file routes use entries with its inputs, outputs and dn1's threshold.
      assert.deepEqual(table[`(${S}, 225.20.0.1)`], { iif: "up0", oifs: ["dn1(ttl 4)", "dn2(ttl 1)"] });
      assert.deepEqual(table[`(${S}, 225.20.0.2)`], { iif: "up0", oifs: ["dn2(ttl 1)"] });
      assert.deepEqual(table[`(${S}, 225.20.1.2)`], { iif: "up0", oifs: ["dn1(ttl 4)"] });
      assert.equal(table[`(${S}, 225.20.1.9)`], null);
      assert.equal(table[`(${S}, 225.20.0.3)`], null);
      if (smcroute) {
        assert.deepEqual(got, smcroute.got, "the same deliveries as under smcrouted");
        assert.deepEqual(table, smcroute.table, "every flow is forwarded by an entry with smcrouted's input, outputs and thresholds");
      }
    } finally {
      await d.cleanup();
    }
  });
});
