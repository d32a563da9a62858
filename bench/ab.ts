/**
 * A/B of two builds on the bulk apply: `node --import tsx bench/ab.ts DIR_A DIR_B [N] [ROUNDS]`
 * (with AB_MODE=concurrent: the bench's 20-client ADD/DEL row instead, 3 s per run, on a table of
 * N routes; tx/s per run; AB_PROF=DIR: CPU profiles of both daemons in DIR/A and DIR/B; AB_FLAGS_B:
 * extra Node flags for daemon B only, so that one build on both sides A/Bs a flag)
 * (as root; each DIR a checkout with dist/ built). One daemon of each build in one namespace lab
 * router (A on the default table, B on table 100), then ROUNDS rounds of: `mfc apply` of N new
 * routes by A's CLI to A's daemon, the same by B, each followed by a FLUSH; the order within a
 * round alternates, so a slow spell on this shared machine hits both alike. Prints each run and
 * the medians. Timed like the bench's bulk row: the whole CLI process, spawn to exit.
 * Only the first round runs on cold daemons: later ones reuse memory the first touched, so a change
 * to what fresh pages cost (docs/performance.md, "Sixth round") shows in round 1 only; measure
 * such a change with a fresh daemon per run, the order alternating (the second daemon of a round
 * also ran ~70 ms faster than the first whatever its build).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createLab } from "../test/lab/lab.js";
import { DAEMON_NODE_FLAGS } from "../src/daemon/memory.js";
import { NdjsonClient, once } from "../test/support/ndjson_client.js";
import { addrOf, baseRoutes, CONCURRENT_GROUP } from "./routes.js";

delete process.env.NODE_EXTRA_CA_CERTS; // as bench/run.ts: not parsed by every child

const [dirA = "", dirB = "", nArg, roundsArg] = process.argv.slice(2);
if (dirA === "" || dirB === "") throw new Error("usage: bench/ab.ts DIR_A DIR_B [N] [ROUNDS]");
const N = Number(nArg ?? 100_000);
const ROUNDS = Number(roundsArg ?? 5);
const CONCURRENT = process.env.AB_MODE === "concurrent";
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] as number;

function timed(args: string[]): Promise<number> {
  return new Promise((res, rej) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("error", rej);
    child.once("close", (code) => {
      if (code !== 0) rej(new Error(`exit ${code}: ${stderr.slice(0, 500)}`));
      else res(Number(process.hrtime.bigint() - t0) / 1e6);
    });
  });
}

/** CPU time (user + system, ms) a process used so far, from /proc/PID/stat (clock ticks of 10 ms: USER_HZ 100 on Linux). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function threadCpu(pid: number): Map<string, { comm: string; ms: number }> {
  const out = new Map<string, { comm: string; ms: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(tid, { comm, ms: (Number(f[11]) + Number(f[12])) * 10 });
    } catch {
      // the thread ended
    }
  }
  return out;
}

/** 20 raw clients adding and deleting fresh routes for 3 s, as bench/run.ts does: acknowledged tx/s. */
async function concurrentRate(sock: string, source: string, round: number): Promise<number> {
  const conns = await Promise.all(Array.from({ length: 20 }, () => NdjsonClient.connect(sock)));
  let acked = 0;
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  const deadline = t0 + 3_000_000_000n;
  await Promise.all(conns.map(async (c, ci) => {
    for (let k = 0; process.hrtime.bigint() < deadline; k++) {
      const group = addrOf(CONCURRENT_GROUP, ci * 65_536 + round * 8_192 + k);
      for (const req of [{ action: "ADD_MFC", payload: { source, group, iif: "up0", oifs: ["dn1"] } }, { action: "DEL_MFC", payload: { source, group } }]) {
        const r = await c.request(req);
        if (r.status !== "ok") throw new Error(`transaction failed: ${JSON.stringify(r)}`);
        acked++;
      }
    }
  }));
  for (const c of conns) c.close();
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  process.stderr.write(`    (the clients' own process used ${(((cpu.user + cpu.system) / 1e6 / secs) * 100).toFixed(0)} % of a core)\n`);
  return acked / secs;
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), "mfc-ab-"));
  const lab = await createLab();
  const procs: ChildProcess[] = [];
  try {
    const builds = [["A", resolve(dirA), ""], ["B", resolve(dirB), "table = 100"]].map(([name, root, extra]) => {
      const dir = join(tmp, name as string);
      const sock = join(tmp, `${name}.sock`);
      const cfg = join(tmp, `${name}.conf`);
      rmSync(dir, { recursive: true, force: true });
      writeFileSync(cfg, `[daemon]\nsocket_path = ${sock}\nstate_file = ${dir}.state.json\nsocket_group =\n${extra}\n`);
      // AB_PROF=DIR: each daemon writes a .cpuprofile there (bench/profile.ts reads it).
      const prof = process.env.AB_PROF ? ["--cpu-prof", "--cpu-prof-dir", join(process.env.AB_PROF, name as string)] : [];
      // AB_FLAGS_B="--flag ...": Node/V8 flags for daemon B only (the same build on both sides then A/Bs a flag).
      const flagsB = name === "B" ? (process.env.AB_FLAGS_B ?? "").split(" ").filter((f) => f !== "") : [];
      // Its log to a file, as bench/run.ts does: not through this process, where the clients run.
      const logFd = openSync(join(tmp, `${name}.log`), "a");
      procs.push(lab.spawn(lab.ns.router, [process.execPath, ...prof, ...DAEMON_NODE_FLAGS, ...flagsB, join(root as string, "dist/daemon_main.js"), "--config", cfg], logFd));
      closeSync(logFd);
      return { name: name as string, sock, cli: join(root as string, "dist/cli/mfc.cjs"), ms: [] as number[], pid: procs[procs.length - 1]?.pid ?? 0 };
    });
    for (const b of builds) {
      for (let i = 0; !existsSync(b.sock) || !(await once(b.sock, { action: "PING" }).then(() => true, () => false)); i++) {
        if (i > 10_000) throw new Error(`daemon ${b.name} not ready`);
        await sleep(5);
      }
    }
    const file = join(tmp, "apply.json");
    writeFileSync(file, JSON.stringify({ vifs: [], routes: baseRoutes(lab.addr.sender, N) }) + "\n");
    if (CONCURRENT) {
      for (const b of builds) await timed([b.cli, "-s", b.sock, "apply", file]);
      process.stderr.write(`A/B: 20 concurrent clients on a table of ${N}, ${ROUNDS} rounds of 3 s\n`);
    } else process.stderr.write(`A/B: mfc apply of ${N} new routes, ${ROUNDS} rounds; load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}\n`);
    for (let r = 0; r < ROUNDS; r++) {
      for (const b of r % 2 === 0 ? builds : [...builds].reverse()) {
        if (CONCURRENT) {
          const cpu0 = cpuMs(b.pid);
          const threads0 = threadCpu(b.pid);
          const rate = await concurrentRate(b.sock, lab.addr.sender, r);
          b.ms.push(rate);
          // All the daemon's threads (the main thread, the thread pool, GC), per acknowledged transaction.
          const perTx = ((cpuMs(b.pid) - cpu0) * 1000) / (rate * 3);
          process.stderr.write(`  round ${r + 1} ${b.name}: ${rate.toFixed(0)} tx/s, daemon CPU ~${perTx.toFixed(0)} µs per transaction\n`);
          if (process.env.AB_THREADS) {
            const per = new Map<string, number>();
            for (const [tid, t] of threadCpu(b.pid)) per.set(`${t.comm}/${tid === String(b.pid) ? "main" : tid}`, t.ms - (threads0.get(tid)?.ms ?? 0));
            process.stderr.write(`    threads (ms in 3 s): ${[...per].map(([c, ms]) => `${c} ${ms}`).join(", ")}\n`);
          }
          await sleep(500);
          continue;
        }
        const ms = await timed([b.cli, "-s", b.sock, "apply", file]);
        b.ms.push(ms);
        await once(b.sock, { action: "FLUSH" });
        process.stderr.write(`  round ${r + 1} ${b.name}: ${ms.toFixed(0)} ms\n`);
        await sleep(2_500); // past the daemon's full GC 2 s after a large request (memory.ts)
      }
    }
    const unit = CONCURRENT ? "tx/s" : "ms";
    for (const b of builds) process.stdout.write(`${b.name} ${b.cli}: median ${median(b.ms).toFixed(0)} ${unit} (runs ${b.ms.map((x) => x.toFixed(0)).join(", ")})\n`);
    process.stdout.write(`load average at end ${loadavg().map((l) => l.toFixed(2)).join(" ")}\n`);
  } finally {
    for (const p of procs) p.kill("SIGTERM");
    await sleep(500);
    await lab.destroy();
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
