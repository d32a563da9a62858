/**
 * A/B of two builds on the bulk apply: `node --import tsx bench/ab.ts DIR_A DIR_B [N] [ROUNDS]`
 * (as root; each DIR a checkout with dist/ built). One daemon of each build in one namespace lab
 * router (A on the default table, B on table 100), then ROUNDS rounds of: `mfc apply` of N new
 * routes by A's CLI to A's daemon, the same by B, each followed by a FLUSH; the order within a
 * round alternates, so a slow spell on this shared machine hits both alike. Prints each run and
 * the medians. Timed like the bench's bulk row: the whole CLI process, spawn to exit.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createLab } from "../test/lab/lab.js";
import { once } from "../test/support/ndjson_client.js";
import { baseRoutes } from "./routes.js";

delete process.env.NODE_EXTRA_CA_CERTS; // as bench/run.ts: not parsed by every child

const [dirA, dirB, nArg, roundsArg] = process.argv.slice(2);
if (dirA === undefined || dirB === undefined) throw new Error("usage: bench/ab.ts DIR_A DIR_B [N] [ROUNDS]");
const N = Number(nArg ?? 100_000);
const ROUNDS = Number(roundsArg ?? 5);
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
      procs.push(lab.spawn(lab.ns.router, [process.execPath, "--expose-gc", join(root as string, "dist/daemon_main.js"), "--config", cfg]));
      return { name: name as string, sock, cli: join(root as string, "dist/cli/mfc.cjs"), ms: [] as number[] };
    });
    for (const b of builds) {
      for (let i = 0; !existsSync(b.sock) || !(await once(b.sock, { action: "PING" }).then(() => true, () => false)); i++) {
        if (i > 10_000) throw new Error(`daemon ${b.name} not ready`);
        await sleep(5);
      }
    }
    const file = join(tmp, "apply.json");
    writeFileSync(file, JSON.stringify({ vifs: [], routes: baseRoutes(lab.addr.sender, N) }) + "\n");
    process.stderr.write(`A/B: mfc apply of ${N} new routes, ${ROUNDS} rounds; load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}\n`);
    for (let r = 0; r < ROUNDS; r++) {
      for (const b of r % 2 === 0 ? builds : [...builds].reverse()) {
        const ms = await timed([b.cli, "-s", b.sock, "apply", file]);
        b.ms.push(ms);
        await once(b.sock, { action: "FLUSH" });
        process.stderr.write(`  round ${r + 1} ${b.name}: ${ms.toFixed(0)} ms\n`);
        await sleep(2_500); // past the daemon's full GC 2 s after a large request (memory.ts)
      }
    }
    for (const b of builds) process.stdout.write(`${b.name} ${b.cli}: median ${median(b.ms).toFixed(0)} ms (runs ${b.ms.map((x) => x.toFixed(0)).join(", ")})\n`);
    process.stdout.write(`load average at end ${loadavg().map((l) => l.toFixed(2)).join(" ")}\n`);
  } finally {
    for (const p of procs) p.kill("SIGTERM");
    await sleep(500);
    await lab.destroy();
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
