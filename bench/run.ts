/**
 * `npm run bench`: builds, creates its own namespace lab, measures mfc against its floors in one run,
 * prints a table (figure, baseline, ratio, target, PASS/MISS) and writes docs/performance.md.
 *
 *   BENCH_QUICK=1       smaller N, fewer repetitions (a sanity run; docs/performance.md is left alone)
 *   BENCH_PROFILE=1     every daemon runs under `node --cpu-prof`; prints the hot spots of each MISS
 *                       (and with BENCH_PROFILE=all of every measured window); docs are left alone
 *   BENCH_SKIP_BUILD=1  use the existing dist/
 *
 * NODE_EXTRA_CA_CERTS is removed from the environment of every child (product and baseline alike):
 * it makes each Node start parse a CA bundle (STACK.md, "Measuring Node start-up").
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { cpus, loadavg, release, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createLab, type Lab } from "../test/lab/lab.js";
import { DAEMON_NODE_FLAGS } from "../src/daemon/memory.js";
import { NdjsonClient, once } from "../test/support/ndjson_client.js";
import { formatHotSpots, hotSpots, loadProfile, type CpuProfile } from "./profile.js";
import { addrOf, baseRoutes, changedRoutes, CONCURRENT_GROUP, FRESH_GROUP } from "./routes.js";

const CA_VAR = "NODE_EXTRA_CA_CERTS";
const caWasSet = process.env[CA_VAR] !== undefined;
delete process.env[CA_VAR]; // every child inherits process.env

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
process.chdir(ROOT);
const QUICK = process.env.BENCH_QUICK === "1";
const PROFILE = process.env.BENCH_PROFILE === "1" || process.env.BENCH_PROFILE === "all";
const PROFILE_ALL = process.env.BENCH_PROFILE === "all";

const P = QUICK
  ? { floorNs: [1_000, 10_000], bulkNs: [1_000, 10_000], singleNs: [100, 1_000, 10_000], bigN: 10_000, nodeRuns: 10, cliRuns: 8, txPairs: 100, startRuns: 1, showRuns: 1, fsyncRuns: 200, conc: { clients: 20, warmupSeconds: 0.5, seconds: 1 } }
  : { floorNs: [1_000, 10_000, 100_000], bulkNs: [1_000, 10_000, 100_000], singleNs: [100, 10_000, 100_000], bigN: 100_000, nodeRuns: 20, cliRuns: 20, txPairs: 300, startRuns: 3, showRuns: 3, fsyncRuns: 500, conc: { clients: 20, warmupSeconds: 1, seconds: 3 } };
const WARM = 2;
/** The product under test: a snapshot of dist/ (see snapshotDist), set in main(). */
let APP_ROOT = "";
let DAEMON_JS = "";
let CLI_JS = "";
const FLOOR_RUNS = 3;

// ---- small helpers -------------------------------------------------------------------------------

const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const log = (s: string): void => { process.stderr.write(`[bench] ${s}\n`); };

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}
const median = (xs: number[]): number => pct(xs, 50);
const fmtMs = (ms: number): string => (ms >= 100 ? `${ms.toFixed(0)} ms` : ms >= 10 ? `${ms.toFixed(1)} ms` : `${ms.toFixed(2)} ms`);
const fmtN = (n: number): string => n.toLocaleString("en-US").replace(/,/g, " ");

interface Timed { ms: number; code: number; stdout: Buffer; stderr: string; pid: number }

/** Runs a process to completion; the time is spawn -> exit as the parent sees it. */
function timedRun(cmd: string, args: string[], opts: { collect?: boolean } = {}): Promise<Timed> {
  return new Promise((res, rej) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ["ignore", opts.collect ? "pipe" : "ignore", "pipe"] });
    const out: Buffer[] = [];
    let stderr = "";
    child.stdout?.on("data", (d: Buffer) => out.push(d));
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("error", rej);
    child.once("close", (code, signal) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      res({ ms, code: code ?? (signal ? 128 : -1), stdout: Buffer.concat(out), stderr, pid: child.pid ?? -1 });
    });
  });
}

function cliArgs(sock: string, args: string[], extraNodeFlags: string[] = []): string[] {
  return [...extraNodeFlags, CLI_JS, "-s", sock, ...args];
}

async function cli(sock: string, args: string[], opts: { collect?: boolean } = {}): Promise<Timed> {
  const r = await timedRun(process.execPath, cliArgs(sock, args), opts);
  if (r.code !== 0) throw new Error(`mfc ${args.join(" ").slice(0, 80)} exited ${r.code}: ${r.stderr.trim().slice(0, 500)}`);
  return r;
}

function procStatus(pid: number): { rssKb: number; hwmKb: number } {
  const s = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(s)?.[1] ?? NaN);
  return { rssKb: kb("VmRSS"), hwmKb: kb("VmHWM") };
}

// ---- the daemon under test --------------------------------------------------------------------------

interface Daemon {
  proc: ChildProcess;
  pid: number;
  dir: string;
  sock: string;
  stateFile: string;
  readyMs: number;
  logs: () => string;
  stop: () => Promise<void>;
}

const daemons: Daemon[] = [];

/** Starts mfc_daemon in the router namespace; resolves when the socket answers PING. */
async function startDaemon(lab: Lab, dir: string, profDir: string | undefined, extraConfig = ""): Promise<Daemon> {
  mkdirSync(dir, { recursive: true });
  const sock = join(dir, "mfc.sock");
  const stateFile = join(dir, "state.json");
  const cfg = join(dir, "mfc_daemon.conf");
  writeFileSync(cfg, `[daemon]\nsocket_path = ${sock}\nstate_file = ${stateFile}\nsocket_group =\n${extraConfig}\n`);
  const flags = profDir ? ["--cpu-prof", "--cpu-prof-dir", profDir, "--cpu-prof-interval", "250"] : [];
  const t0 = process.hrtime.bigint();
  // `ip netns exec` execs node in place: the child's pid is the daemon's.
  // The daemon's log goes to a file, as to journald: read through pipes by this process, its audit
  // lines (one per transaction) would compete with the 20 clients of the concurrency row, which
  // run in this process's event loop.
  const logFile = join(dir, "daemon.log");
  const logFd = openSync(logFile, "a");
  const proc = lab.spawn(lab.ns.router, [process.execPath, ...DAEMON_NODE_FLAGS, ...flags, DAEMON_JS, "--config", cfg], logFd);
  closeSync(logFd);
  const logs = (): string => (existsSync(logFile) ? readFileSync(logFile, "utf8") : "");
  let exited = false;
  const exit = new Promise<void>((r) => proc.once("exit", () => { exited = true; r(); }));
  for (;;) {
    if (exited) throw new Error(`daemon exited during start-up:\n${logs()}`);
    if (Number(process.hrtime.bigint() - t0) > 120e9) throw new Error(`daemon not ready after 120 s:\n${logs()}`);
    if (existsSync(sock)) {
      try {
        await once(sock, { action: "PING" });
        break;
      } catch { /* not listening yet */ }
    }
    await sleep(2);
  }
  const readyMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const pid = proc.pid ?? -1;
  const comm = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  if (comm !== "node") throw new Error(`daemon pid ${pid} is '${comm}', not node`);
  const d: Daemon = {
    proc, pid, dir, sock, stateFile, readyMs, logs,
    stop: async () => {
      if (!exited) {
        proc.kill("SIGTERM");
        const t = setTimeout(() => proc.kill("SIGKILL"), 60_000);
        await exit;
        clearTimeout(t);
      }
    },
  };
  daemons.push(d);
  return d;
}

// ---- results ------------------------------------------------------------------------------------------

interface Row {
  metric: string;
  figure: string;
  baseline: string;
  ratio: number | undefined;
  target: string;
  /** undefined: no target (information only). */
  pass: boolean | undefined;
  /** Daemon windows (for the profile) and CLI profiles behind this row. */
  windows?: Window[];
  cliProfile?: string;
}

interface Window { daemon: Daemon; fromUs: number; toUs: number }

const rows: Row[] = [];
const notes: string[] = [];

function row(r: Row): Row {
  rows.push(r);
  const res = r.pass === undefined ? "info" : r.pass ? "PASS" : "MISS";
  log(`${r.metric}: ${r.figure} (baseline ${r.baseline}, ${r.ratio === undefined ? "-" : r.ratio.toFixed(2) + "x"}, target ${r.target}) ${res}`);
  return r;
}

function table(): string {
  const head = ["metric", "figure", "baseline", "ratio", "target", "result"];
  const body = rows.map((r) => [
    r.metric, r.figure, r.baseline, r.ratio === undefined || !Number.isFinite(r.ratio) ? "-" : `${r.ratio.toFixed(2)}x`, r.target,
    r.pass === undefined ? "info" : r.pass ? "PASS" : "MISS",
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(w[i] as number)).join(" | ")} |`;
  return [line(head), `|${w.map((n) => "-".repeat(n + 2)).join("|")}|`, ...body.map(line)].join("\n");
}

// ---- machine ------------------------------------------------------------------------------------------

function machine(): Record<string, string> {
  const sh = (cmd: string, args: string[]): string => {
    const r = spawnSync(cmd, args, { encoding: "utf8" });
    return r.status === 0 ? r.stdout.trim() : "?";
  };
  const os = /^PRETTY_NAME="?([^"\n]*)/m.exec(existsSync("/etc/os-release") ? readFileSync("/etc/os-release", "utf8") : "")?.[1] ?? "?";
  const memKb = Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 0);
  return {
    nproc: sh("nproc", []),
    cpu: cpus()[0]?.model ?? "?",
    memory: `${(memKb / 1024 / 1024).toFixed(1)} GiB`,
    kernel: sh("uname", ["-r"]),
    os,
    node: process.version,
    "state dir filesystem": `${sh("findmnt", ["-n", "-o", "FSTYPE,SOURCE", "--target", tmpdir()]).replace(/\s+/g, " ")} (${tmpdir()})`,
  };
}

// ---- the measurements ---------------------------------------------------------------------------------

async function measureNodeFloor(): Promise<number> {
  // Interleaved with `mfc --version` (the CLI's own start-up, no daemon involved).
  const times: number[] = [];
  const cliTimes: number[] = [];
  for (let i = 0; i < WARM + P.nodeRuns; i++) {
    const r = await timedRun(process.execPath, ["-e", "0"]);
    const c = await timedRun(process.execPath, [CLI_JS, "--version"]);
    if (r.code !== 0 || c.code !== 0) throw new Error("node -e 0 or mfc --version failed");
    if (i >= WARM) { times.push(r.ms); cliTimes.push(c.ms); }
  }
  const p50 = median(times);
  row({ metric: "`node -e 0` start-up (p50)", figure: fmtMs(p50), baseline: "-", ratio: undefined, target: "floor of any CLI call", pass: undefined });
  const c50 = median(cliTimes);
  row({ metric: "`mfc --version`: CLI start-up alone, no daemon (p50)", figure: fmtMs(c50), baseline: `node -e 0 ${fmtMs(p50)}`, ratio: c50 / p50, target: "-", pass: undefined });
  notes.push(`node -e 0: ${P.nodeRuns} runs, p50 ${fmtMs(p50)}, min ${fmtMs(Math.min(...times))}, p99 ${fmtMs(pct(times, 99))}; ` +
    `mfc --version (interleaved): p50 ${fmtMs(c50)}, min ${fmtMs(Math.min(...cliTimes))}.`);
  return p50;
}

interface FloorResult { n: number; ms: number; perSec: number; closeMs: number }

/** The MRT_ADD_MFC floors per N: koffi always, C when gcc is there. */
interface Floors { koffi: Map<number, number>; c: Map<number, number> }

async function measureFloors(lab: Lab, tmp: string): Promise<Floors> {
  const koffi = new Map<number, number>();
  const c = new Map<number, number>();
  let cBin: string | undefined;
  const gcc = spawnSync("gcc", ["--version"], { encoding: "utf8" });
  if (gcc.status === 0) {
    cBin = join(tmp, "floor");
    const cc = spawnSync("gcc", ["-O2", "-Wall", "-o", cBin, join(ROOT, "bench/floor.c")], { encoding: "utf8" });
    if (cc.status !== 0) throw new Error(`gcc failed:\n${cc.stderr}`);
  } else {
    notes.push("gcc not found: the C floor was skipped.");
  }
  // A floor is the best case: the fastest of FLOOR_RUNS runs, C and koffi alternating.
  const runFloor = async (cmd: string[]): Promise<FloorResult> =>
    JSON.parse((await lab.exec(lab.ns.router, cmd, { timeoutMs: 120_000 })).stdout) as FloorResult;
  for (const n of P.floorNs) {
    let kr: FloorResult | undefined;
    let br: FloorResult | undefined;
    let cr: FloorResult | undefined;
    for (let i = 0; i < FLOOR_RUNS; i++) {
      const k = await runFloor([process.execPath, "--import", "tsx", join(ROOT, "bench/floor.ts"), String(n)]);
      if (!kr || k.ms < kr.ms) kr = k;
      const b = await runFloor([process.execPath, "--import", "tsx", join(ROOT, "bench/floor.ts"), String(n), "batch"]);
      if (!br || b.ms < br.ms) br = b;
      if (cBin) {
        const x = await runFloor([cBin, String(n)]);
        if (!cr || x.ms < cr.ms) cr = x;
      }
    }
    if (!kr || !br) throw new Error("no floor result");
    koffi.set(n, kr.ms);
    if (cr) {
      c.set(n, cr.ms);
      row({ metric: `floor: MRT_ADD_MFC loop in C, N=${fmtN(n)} (best of ${FLOOR_RUNS})`, figure: `${fmtMs(cr.ms)} (${fmtN(cr.perSec)}/s)`, baseline: "-", ratio: undefined, target: "-", pass: undefined });
    }
    const cms = c.get(n);
    row({
      metric: `floor: MRT_ADD_MFC loop via Mroute4Table (koffi), N=${fmtN(n)} (best of ${FLOOR_RUNS})`, figure: `${fmtMs(kr.ms)} (${fmtN(kr.perSec)}/s)`,
      baseline: cms === undefined ? "-" : `C ${fmtMs(cms)}`, ratio: cms === undefined ? undefined : kr.ms / cms, target: "-", pass: undefined,
    });
    row({
      metric: `floor: the same adds in one KernelTables.addMfcs (rtnetlink batches), N=${fmtN(n)} (best of ${FLOOR_RUNS})`, figure: `${fmtMs(br.ms)} (${fmtN(br.perSec)}/s)`,
      baseline: cms === undefined ? "-" : `C ${fmtMs(cms)}`, ratio: cms === undefined ? undefined : br.ms / cms, target: "-", pass: undefined,
    });
  }
  return { koffi, c };
}

function writeApplyFile(path: string, routes: object[]): void {
  writeFileSync(path, JSON.stringify({ vifs: [], routes }) + "\n");
}

async function status(sock: string): Promise<{ routes: number; installed: number }> {
  const r = (await once(sock, { action: "STATUS" })).result as { routes: number; routes_installed: number };
  return { routes: r.routes, installed: r.routes_installed };
}

async function expectTable(sock: string, n: number, what: string): Promise<void> {
  const s = await status(sock);
  if (s.routes !== n || s.installed !== n) throw new Error(`${what}: expected ${n} routes installed, daemon has ${s.routes} (${s.installed} installed)`);
}

/** An extra, untimed CLI run under --cpu-prof (profile mode only); returns the profile file. */
async function profileCli(sock: string, args: string[], profDir: string, label: string): Promise<string | undefined> {
  const dir = join(profDir, `cli-${label}`);
  mkdirSync(dir, { recursive: true });
  await timedRun(process.execPath, cliArgs(sock, args, ["--cpu-prof", "--cpu-prof-dir", dir, "--cpu-prof-interval", "100"]));
  const f = readdirSync(dir).find((x) => x.endsWith(".cpuprofile"));
  return f ? join(dir, f) : undefined;
}

/** `mfc add` round trips (CLI process start -> daemon durable -> CLI exit), each paired with a `node -e 0` run. */
async function addRoundTrips(d: Daemon, source: string): Promise<{ adds: number[]; nodes: number[]; win: Window }> {
  const ctl = await NdjsonClient.connect(d.sock);
  const adds: number[] = [];
  const nodes: number[] = [];
  const fromUs = nowUs();
  try {
    for (let i = 0; i < WARM + P.cliRuns; i++) {
      const group = addrOf(FRESH_GROUP, nextFresh++);
      const nd = await timedRun(process.execPath, ["-e", "0"]);
      const a = await cli(d.sock, ["add", "from", source, "to", group, "iif", "up0", "oif", "dn1"]);
      if (i >= WARM) { adds.push(a.ms); nodes.push(nd.ms); }
      await ctl.ok({ action: "DEL_MFC", payload: { source, group } });
    }
  } finally {
    ctl.close();
  }
  return { adds, nodes, win: { daemon: d, fromUs, toUs: nowUs() } };
}

let nextFresh = 0;

/** `pairs` ADD_MFC + DEL_MFC of fresh routes over one raw connection; latency of each transaction (ms). */
async function txLatencies(c: NdjsonClient, source: string, pairs: number): Promise<number[]> {
  const lat: number[] = [];
  for (let i = 0; i < pairs; i++) {
    const group = addrOf(FRESH_GROUP, nextFresh++);
    const t0 = process.hrtime.bigint();
    await c.ok({ action: "ADD_MFC", payload: { source, group, iif: "up0", oifs: ["dn1"] } });
    const t1 = process.hrtime.bigint();
    await c.ok({ action: "DEL_MFC", payload: { source, group } });
    const t2 = process.hrtime.bigint();
    lat.push(Number(t1 - t0) / 1e6, Number(t2 - t1) / 1e6);
  }
  return lat;
}

function addRow(table: number, r: { adds: number[]; nodes: number[]; win: Window }, nodeP50: number): Row {
  const a50 = median(r.adds);
  const n50 = median(r.nodes);
  notes.push(`\`mfc add\` at table ${fmtN(table)}: ${r.adds.length} runs, each right after a \`node -e 0\` run (those: p50 ${fmtMs(n50)}; the separate \`node -e 0\` row: ${fmtMs(nodeP50)}).`);
  return row({
    metric: `single: \`mfc add\` round trip (CLI process), table ${fmtN(table)}`,
    figure: `p50 ${fmtMs(a50)} / p99 ${fmtMs(pct(r.adds, 99))}`,
    baseline: `node -e 0 ${fmtMs(n50)}`, ratio: a50 / n50, target: "p50 <= 1.15x node -e 0",
    pass: a50 <= 1.15 * n50, windows: [r.win],
  });
}

/**
 * Bulk applies and single changes. Single changes at table N are compared with a reference daemon
 * that holds the smallest table (its own MRT_TABLE in the same namespace), measured in alternating
 * rounds, so the load of a shared machine drifts into both alike.
 */
async function measureTables(lab: Lab, tmp: string, floors: Floors, nodeP50: number, profDir: string | undefined): Promise<{ txP50: Map<number, number>; emptyRssKb: number }> {
  const source = lab.addr.sender;
  const smallest = Math.min(...P.singleNs);
  const biggest = Math.max(...P.singleNs);
  const txP50 = new Map<number, number>();

  const ref = await startDaemon(lab, join(tmp, "ref"), profDir, "table = 100");
  const refFile = join(tmp, `apply-ref.json`);
  writeApplyFile(refFile, baseRoutes(source, smallest));
  await cli(ref.sock, ["apply", refFile]);
  await expectTable(ref.sock, smallest, "reference apply");
  const refCtl = await NdjsonClient.connect(ref.sock);
  await txLatencies(refCtl, source, 20); // warm-up
  const refLat: number[] = [];
  const refWins: Window[] = [];
  addRow(smallest, await addRoundTrips(ref, source), nodeP50);

  const d = await startDaemon(lab, join(tmp, "main"), profDir);
  const emptyRssKb = procStatus(d.pid).rssKb;
  const sizes = [...new Set([...P.bulkNs, ...P.singleNs.filter((n) => n !== smallest)])].sort((a, b) => a - b);
  const biggestBulk = Math.max(...P.bulkNs);
  for (const n of sizes) {
    await once(d.sock, { action: "FLUSH" });
    await expectTable(d.sock, 0, "after FLUSH");
    const file = join(tmp, `apply-${n}.json`);
    writeApplyFile(file, baseRoutes(source, n));
    const w0 = nowUs();
    const r = await cli(d.sock, ["apply", file]);
    const win: Window = { daemon: d, fromUs: w0, toUs: nowUs() };
    await expectTable(d.sock, n, `apply of ${n}`);
    if (P.bulkNs.includes(n)) {
      // The kernel is the physical limit: the C loop of MRT_ADD_MFC (issue 13: <= 4x at the largest N).
      const fl = floors.c.get(n);
      const isTarget = n === biggestBulk;
      const res = row({
        metric: `bulk: \`mfc apply\` of N=${fmtN(n)} new routes (CLI process)`, figure: fmtMs(r.ms),
        baseline: fl === undefined ? "-" : `C floor ${fmtMs(fl)}`, ratio: fl === undefined ? undefined : r.ms / fl,
        target: isTarget ? "<= 4x C floor" : "-", pass: isTarget && fl !== undefined ? r.ms <= 4 * fl : undefined, windows: [win],
      });
      if (profDir && isTarget) {
        await once(d.sock, { action: "FLUSH" });
        res.cliProfile = await profileCli(d.sock, ["apply", file], profDir, `apply-${n}`);
      }
      // 10 % change: replace / remove / add mix, as one APPLY of the whole desired state.
      const ch = changedRoutes(source, n);
      const chFile = join(tmp, `apply-${n}-changed.json`);
      writeApplyFile(chFile, ch.routes);
      const c0 = nowUs();
      const cr = await cli(d.sock, ["apply", chFile]);
      const cwin: Window = { daemon: d, fromUs: c0, toUs: nowUs() };
      await expectTable(d.sock, ch.routes.length, `10% change of ${n}`);
      row({
        metric: `bulk: \`mfc apply\` 10 % change of N=${fmtN(n)} (${fmtN(ch.replaced)} repl, ${fmtN(ch.removed)} del, ${fmtN(ch.added)} add)`,
        figure: fmtMs(cr.ms), baseline: `full apply ${fmtMs(r.ms)}`, ratio: cr.ms / r.ms, target: "-", pass: undefined, windows: [cwin],
      });
    }
    if (!P.singleNs.includes(n)) continue;
    const table = (await status(d.sock)).routes;
    // Daemon-side transaction, alternating rounds: reference table, this table.
    const ctl = await NdjsonClient.connect(d.sock);
    await txLatencies(ctl, source, 20); // warm-up
    const lat: number[] = [];
    const refHere: number[] = [];
    const wins: Window[] = [];
    const rounds = 10;
    for (let k = 0; k < rounds; k++) {
      const per = Math.ceil(P.txPairs / rounds);
      const r0 = nowUs();
      refHere.push(...await txLatencies(refCtl, source, per));
      const m0 = nowUs();
      refWins.push({ daemon: ref, fromUs: r0, toUs: m0 });
      lat.push(...await txLatencies(ctl, source, per));
      wins.push({ daemon: d, fromUs: m0, toUs: nowUs() });
    }
    ctl.close();
    refLat.push(...refHere);
    await expectTable(d.sock, table, `single changes at ${n}`);
    const p50 = median(lat);
    const base = median(refHere);
    txP50.set(n, p50);
    row({
      metric: `single: one transaction, daemon side (raw NDJSON ADD/DEL), table ${fmtN(table)}`,
      figure: `p50 ${fmtMs(p50)} / p99 ${fmtMs(pct(lat, 99))}`,
      baseline: `p50 @${fmtN(smallest)} ${fmtMs(base)}`, ratio: p50 / base,
      target: n === biggest ? `p50 <= 2x @${fmtN(smallest)}` : "-",
      pass: n === biggest ? p50 <= 2 * base : undefined, windows: wins,
    });
    const ar = addRow(table, await addRoundTrips(d, source), nodeP50);
    if (profDir && n === biggest) {
      const group = addrOf(FRESH_GROUP, nextFresh++);
      ar.cliProfile = await profileCli(d.sock, ["add", "from", source, "to", group, "iif", "up0", "oif", "dn1"], profDir, "add");
      await once(d.sock, { action: "DEL_MFC", payload: { source, group } });
    }
  }
  refCtl.close();
  txP50.set(smallest, median(refLat));
  const refRow = row({
    metric: `single: one transaction, daemon side (raw NDJSON ADD/DEL), table ${fmtN(smallest)} (reference, all rounds)`,
    figure: `p50 ${fmtMs(median(refLat))} / p99 ${fmtMs(pct(refLat, 99))}`, baseline: "-", ratio: undefined, target: "-", pass: undefined, windows: refWins,
  });
  // Show it before the rows that compare with it.
  rows.splice(rows.indexOf(refRow), 1);
  rows.splice(Math.max(0, rows.findIndex((r) => r.metric.startsWith("single: one transaction"))), 0, refRow);
  await expectTable(ref.sock, smallest, "reference after single changes");
  await d.stop();
  await ref.stop();
  return { txP50, emptyRssKb };
}

/** Latencies (ms) of appending one journal-sized line + fdatasync, as the state store does. */
async function measureFsync(dir: string, runs: number): Promise<number[]> {
  const path = join(dir, "fsync-probe");
  const fh = await open(path, "a", 0o600);
  const line = "x".repeat(149) + "\n";
  const lat: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const t0 = process.hrtime.bigint();
      await fh.write(line);
      await fh.datasync();
      lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  } finally {
    await fh.close();
    rmSync(path, { force: true });
  }
  return lat;
}

async function measureStartAndShow(lab: Lab, tmp: string, nodeP50: number, txP50: Map<number, number>, emptyRssKb: number, cFloor: number | undefined, profDir: string | undefined): Promise<void> {
  const n = P.bigN;
  const source = lab.addr.sender;
  const dir = join(tmp, "start");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "state.json"), JSON.stringify({ format: "mfc_daemon-state", version: 1, seq: 0, vifs: [], routes: baseRoutes(source, n) }) + "\n");
  const ready: number[] = [];
  const showDaemon: number[] = [];
  const wins: Window[] = [];
  let d: Daemon | undefined;
  for (let i = 0; i < P.startRuns; i++) {
    if (d) await d.stop();
    const w0 = nowUs();
    d = await startDaemon(lab, dir, profDir);
    wins.push({ daemon: d, fromUs: w0, toUs: nowUs() });
    ready.push(d.readyMs);
    // Ready also means `show` lists all N installed (the restore precedes serving).
    const s0 = process.hrtime.bigint();
    const shown = (await once(d.sock, { action: "SHOW", payload: { what: "routes" } })).result as { routes: { state: string }[] };
    showDaemon.push(Number(process.hrtime.bigint() - s0) / 1e6);
    const installed = shown.routes.filter((r) => r.state === "installed").length;
    if (installed !== n) throw new Error(`after start-up, show lists ${installed} of ${n} routes installed`);
  }
  if (!d) throw new Error("no daemon");
  const ready50 = median(ready);
  row({
    metric: `start-up: daemon start -> ready (PING answers, show lists all installed), N=${fmtN(n)}`,
    figure: fmtMs(ready50), baseline: cFloor === undefined ? "-" : `C floor ${fmtMs(cFloor)}`, ratio: cFloor === undefined ? undefined : ready50 / cFloor,
    target: "<= 3x C floor", pass: cFloor === undefined ? undefined : ready50 <= 3 * cFloor, windows: wins,
  });
  notes.push(`start-up runs (ms): ${ready.map((x) => x.toFixed(0)).join(", ")}; each then verified with a raw SHOW of ${fmtN(n)} routes taking ${showDaemon.map((x) => x.toFixed(0)).join(", ")} ms.`);
  const rssRightAfterStart = procStatus(d.pid).rssKb;
  await new Promise((r) => setTimeout(r, 4_000)); // settled, as below
  const rssAfterStart = procStatus(d.pid).rssKb;

  // `mfc show -j` with counters (one SIOCGETSGCNT per route), whole CLI process, output read to the end.
  const shows: number[] = [];
  const sw0 = nowUs();
  for (let i = 0; i < 1 + P.showRuns; i++) {
    const r = await cli(d.sock, ["show", "-j"], { collect: true });
    if (i === 0) {
      const v = JSON.parse(r.stdout.toString("utf8")) as { routes: Record<string, unknown>[] };
      if (v.routes.length !== n || !v.routes.every((x) => typeof x.packets === "number")) throw new Error("show -j did not list every route with counters");
      continue; // warm-up
    }
    shows.push(r.ms);
  }
  const showWin: Window = { daemon: d, fromUs: sw0, toUs: nowUs() };
  const show50 = median(shows);
  // The baseline (issue 13): the kernel's own rtnetlink dump of the same table with counters, as
  // iproute2 prints it, timed the same way (spawn to exit, output read to the end).
  const dumps: number[] = [];
  for (let i = 0; i < 1 + P.showRuns; i++) {
    const r = await timedRun("ip", ["netns", "exec", lab.ns.router, "ip", "-s", "mroute", "show"], { collect: true });
    if (i === 0) {
      const listed = r.stdout.toString("utf8").split("\n").filter((l) => l.startsWith("(")).length;
      if (r.code !== 0 || listed < n) throw new Error(`ip -s mroute show listed ${listed} of ${n} entries (exit ${r.code}): ${r.stderr}`);
      continue; // warm-up, like the show runs
    }
    dumps.push(r.ms);
  }
  const dump50 = median(dumps);
  const showRow = row({
    metric: `\`mfc show -j\` with counters, N=${fmtN(n)} (CLI process)`, figure: fmtMs(show50),
    baseline: `ip -s mroute show ${fmtMs(dump50)}`, ratio: show50 / dump50, target: "<= 1x rtnetlink dump", pass: show50 <= dump50, windows: [showWin],
  });
  if (profDir) showRow.cliProfile = await profileCli(d.sock, ["show", "-j"], profDir, "show");
  const st = procStatus(d.pid);
  // The resident figure is read once the daemon has settled: it hands memory back 2 s after a
  // large request (src/daemon/memory.ts). The peaks are in the notes.
  await new Promise((r) => setTimeout(r, 4_000));
  const settled = procStatus(d.pid);
  const rssMb = Math.max(rssAfterStart, settled.rssKb) / 1024;
  row({
    metric: `daemon VmRSS at N=${fmtN(n)} (settled: 4 s after start-up, and 4 s after ${1 + P.showRuns}x show -j)`, figure: `${rssMb.toFixed(1)} MB`,
    baseline: `empty table ${(emptyRssKb / 1024).toFixed(1)} MB`, ratio: (rssMb * 1024) / emptyRssKb,
    target: "settled <= 110 MB, VmHWM <= 200 MB", pass: rssMb <= 110 && settled.hwmKb / 1024 <= 200,
  });
  notes.push(`daemon RSS at ${fmtN(n)} routes: ${(rssRightAfterStart / 1024).toFixed(1)} MB right after start-up, ${(rssAfterStart / 1024).toFixed(1)} MB 4 s later, ${(st.rssKb / 1024).toFixed(1)} MB right after the show runs, ${(settled.rssKb / 1024).toFixed(1)} MB 4 s later (VmHWM ${(settled.hwmKb / 1024).toFixed(1)} MB); empty table ${(emptyRssKb / 1024).toFixed(1)} MB.`);

  // The durability floor right before: what one journal append + fdatasync costs in this directory now.
  const fsync = await measureFsync(dir, P.fsyncRuns);
  const fsMean = fsync.reduce((a, b) => a + b, 0) / fsync.length;
  row({
    metric: "floor: append one 150 B line + fdatasync in the state dir", figure: `p50 ${fmtMs(median(fsync))} / p99 ${fmtMs(pct(fsync, 99))} / mean ${fmtMs(fsMean)}`,
    baseline: "-", ratio: undefined, target: "-", pass: undefined,
  });

  // 20 concurrent raw clients, each one connection, adding and deleting fresh routes: a warm-up
  // (the daemon's JIT and the connections settle), then a window of fixed length that is counted.
  const { clients, warmupSeconds, seconds } = P.conc;
  const conns = await Promise.all(Array.from({ length: clients }, () => NdjsonClient.connect(d.sock)));
  let acked = 0;
  let errors = 0;
  const lat: number[] = [];
  const started = process.hrtime.bigint();
  const startedUs = nowUs();
  const countFrom = started + BigInt(Math.round(warmupSeconds * 1e9));
  const deadline = countFrom + BigInt(Math.round(seconds * 1e9));
  await Promise.all(conns.map(async (c, ci) => {
    for (let k = 0; process.hrtime.bigint() < deadline; k++) {
      const group = addrOf(CONCURRENT_GROUP, ci * 65_536 + k);
      for (const req of [
        { action: "ADD_MFC", payload: { source, group, iif: "up0", oifs: ["dn1"] } },
        { action: "DEL_MFC", payload: { source, group } },
      ]) {
        const t0 = process.hrtime.bigint();
        const r = await c.request(req);
        const answered = process.hrtime.bigint();
        if (r.status !== "ok") errors++;
        // Counted when answered inside the window.
        else if (answered >= countFrom && answered <= deadline) {
          acked++;
          lat.push(Number(answered - t0) / 1e6);
        }
      }
    }
  }));
  const secs = seconds;
  const concWin: Window = { daemon: d, fromUs: startedUs + warmupSeconds * 1e6, toUs: startedUs + (warmupSeconds + seconds) * 1e6 };
  for (const c of conns) c.close();
  if (errors > 0) throw new Error(`${errors} concurrent transactions failed`);
  await expectTable(d.sock, n, "after the concurrent clients");
  const tps = acked / secs;
  const single = txP50.get(Math.max(...P.singleNs));
  const ceiling = 1000 / fsMean;
  row({
    metric: `${clients} concurrent clients, ADD/DEL durable transactions, table ${fmtN(n)}`,
    figure: `${fmtN(Math.round(tps))}/s`, baseline: `1 fdatasync each: ${fmtN(Math.round(ceiling))}/s`,
    ratio: tps / ceiling, target: ">= 3x 1 fdatasync each (group commit)", pass: tps >= 3 * ceiling, windows: [concWin],
  });
  notes.push(`concurrent clients: ${fmtN(acked)} transactions acknowledged in the ${secs} s after a ${warmupSeconds} s warm-up, latency under load p50 ${fmtMs(median(lat))} / p99 ${fmtMs(pct(lat, 99))}` +
    (single === undefined ? "." : `; one client alone (p50 of the single-transaction row at ${fmtN(Math.max(...P.singleNs))}): ${fmtN(Math.round(1000 / single))}/s.`));
  await d.stop();
}

// ---- profile report -------------------------------------------------------------------------------------

function profileReport(profDir: string): string {
  const byPid = new Map<number, string>();
  for (const f of readdirSync(profDir)) {
    const pid = Number(/^CPU\.\d+\.\d+\.(\d+)\..*\.cpuprofile$/.exec(f)?.[1]);
    if (Number.isInteger(pid)) byPid.set(pid, join(profDir, f));
  }
  const cache = new Map<string, CpuProfile>();
  const load = (f: string): CpuProfile => {
    let p = cache.get(f);
    if (!p) { p = loadProfile(f); cache.set(f, p); }
    return p;
  };
  const out: string[] = [];
  for (const r of rows) {
    if (!(PROFILE_ALL || r.pass === false)) continue;
    if (!r.windows && !r.cliProfile) continue;
    out.push(`### ${r.metric}: ${r.figure} (${r.pass === false ? "MISS" : r.pass ? "PASS" : "info"})`);
    if (r.windows) {
      // All windows of the row, over every daemon profile they fall in.
      const parts = new Map<number, [number, number][]>();
      for (const w of r.windows) parts.set(w.daemon.pid, [...(parts.get(w.daemon.pid) ?? []), [w.fromUs, w.toUs]]);
      const found = [...parts].filter(([pid]) => byPid.has(pid));
      const ms = r.windows.reduce((a, w) => a + (w.toUs - w.fromUs) / 1000, 0);
      if (found.length === 0) out.push("(no daemon profile found)");
      else out.push(formatHotSpots(`daemon (${found.length} process(es), ${r.windows.length} window(s), ${ms.toFixed(0)} ms)`,
        hotSpots(found.map(([pid, windows]) => ({ profile: load(byPid.get(pid) as string), windows })), APP_ROOT)));
    }
    if (r.cliProfile) out.push(formatHotSpots("CLI process (one extra run)", hotSpots([{ profile: load(r.cliProfile) }], APP_ROOT)));
    out.push("");
  }
  return out.join("\n");
}

// ---- docs -----------------------------------------------------------------------------------------------

const BEGIN = "<!-- bench:begin (generated by `npm run bench`; edits inside are overwritten) -->";
const END = "<!-- bench:end -->";

function writeDocs(generated: string): void {
  const path = join(ROOT, "docs/performance.md");
  const text = existsSync(path) ? readFileSync(path, "utf8") : "";
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  if (a < 0 || b < a) throw new Error(`${path} lacks the ${BEGIN} ... ${END} markers`);
  writeFileSync(path, text.slice(0, a + BEGIN.length) + "\n" + generated + "\n" + text.slice(b));
}

// ---- main -----------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const started = Date.now();
  // Every row measures the kernel's own tables: on a kernel without them there is nothing to
  // measure (the test suite runs its kernel tests in an emulated VM there, scripts/test_vm.sh,
  // where timings would say nothing about this machine).
  const missing = [["/proc/net/ip_mr_vif", "CONFIG_IP_MROUTE"], ["/proc/net/ip6_mr_vif", "CONFIG_IPV6_MROUTE"]]
    .filter(([file]) => !existsSync(file)).map(([, option]) => option);
  if (missing.length > 0) {
    log(`cannot measure: the running kernel (${release()}) was built without ${missing.join(" and ")}`);
    return 1;
  }
  if (process.env.BENCH_SKIP_BUILD !== "1") {
    log("npm run build");
    const b = spawnSync("npm", ["run", "--silent", "build"], { stdio: ["ignore", "inherit", "inherit"] });
    if (b.status !== 0) { log("build failed"); return 1; }
  }
  const tmp = mkdtempSync(join(tmpdir(), "mfc-bench-"));
  const profDir = PROFILE ? join(tmp, "prof") : undefined;
  if (profDir) mkdirSync(profDir);
  // Ctrl-C: the lab's own handler tears the namespaces down and exits; the temp dir goes too.
  process.on("exit", () => { if (!profDir) rmSync(tmp, { recursive: true, force: true }); });
  try {
    snapshotDist(join(tmp, "app"));
    return await runAll(tmp, profDir, started);
  } finally {
    if (!profDir) rmSync(tmp, { recursive: true, force: true });
    else for (const f of readdirSync(tmp)) if (f !== "prof") rmSync(join(tmp, f), { recursive: true, force: true });
  }
}

/**
 * Runs the product from a copy of dist/ (+ package.json, node_modules linked): a concurrent
 * `npm run build` elsewhere in the checkout (rm -rf dist) cannot pull it away mid-run.
 */
function snapshotDist(app: string): void {
  if (!existsSync(join(ROOT, "dist/daemon_main.js"))) throw new Error("dist/ is missing: run npm run build");
  mkdirSync(app, { recursive: true });
  cpSync(join(ROOT, "dist"), join(app, "dist"), { recursive: true });
  cpSync(join(ROOT, "package.json"), join(app, "package.json"));
  symlinkSync(join(ROOT, "node_modules"), join(app, "node_modules"));
  APP_ROOT = app;
  DAEMON_JS = join(app, "dist/daemon_main.js");
  CLI_JS = join(app, "dist/cli/mfc.cjs");
}

async function runAll(tmp: string, profDir: string | undefined, started: number): Promise<number> {
  const load0 = loadavg();
  let lab: Lab | undefined;
  try {
    log(`creating namespace lab (${QUICK ? "BENCH_QUICK: small N" : "full run"})`);
    lab = await createLab();
    const nodeP50 = await measureNodeFloor();
    const floors = await measureFloors(lab, tmp);
    const { txP50, emptyRssKb } = await measureTables(lab, tmp, floors, nodeP50, profDir);
    await measureStartAndShow(lab, tmp, nodeP50, txP50, emptyRssKb, floors.c.get(P.bigN), profDir);
  } catch (err) {
    // Read now: the logs are files in the temp dir, which goes when main() returns.
    for (const d of daemons) {
      const text = d.logs();
      if (text) process.stderr.write(`[bench] daemon ${d.pid} log tail:\n${text.slice(-2000)}\n`);
    }
    throw err;
  } finally {
    for (const d of daemons) await d.stop().catch(() => undefined);
    await lab?.destroy();
  }
  const load1 = loadavg();
  const m = machine();
  const misses = rows.filter((r) => r.pass === false).length;
  const passes = rows.filter((r) => r.pass === true).length;
  const when = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  const generated = [
    `Run: ${when}, ${QUICK ? "BENCH_QUICK=1 (small N)" : "full"}, ${((Date.now() - started) / 1000).toFixed(0)} s, ${passes} PASS / ${misses} MISS.`,
    "",
    "Machine: " + Object.entries(m).map(([k, v]) => `${k} ${v}`).join("; ") + ".",
    `Load average (1 min) at start ${load0[0]?.toFixed(2)}, at end ${load1[0]?.toFixed(2)}.`,
    `${CA_VAR} was ${caWasSet ? "set in the caller's environment and was " : ""}unset for every child process (daemon, CLI, floors and \`node -e 0\` alike).`,
    "",
    table(),
    "",
    ...notes.map((n) => `- ${n}`),
  ].join("\n");
  process.stdout.write("\n" + generated + "\n");
  if (profDir) {
    const rep = profileReport(profDir);
    process.stdout.write(`\n## CPU profiles (node --cpu-prof; figures above are perturbed by the profiler)\n\n${rep || "(nothing to report: no MISS)"}\n`);
    process.stdout.write(`profiles kept in ${profDir}\n`);
  }
  if (!QUICK && !PROFILE) {
    writeDocs(generated);
    log("results written to docs/performance.md");
  } else {
    log("quick or profile run: docs/performance.md left unchanged");
  }
  return 0;
}

main().then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    process.stderr.write(`[bench] failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
