/**
 * The same sequences against the real kernel agree with the fake (needs root and iproute2).
 *
 * A throwaway network namespace gets 17 veth pairs (v0/v1 .. v32/v33: this kernel has no dummy
 * links). A child, started with `ip netns exec`, runs one fixed seeded sequence of requests —
 * valid and invalid ones (E_MFC_EXISTS, E_IF_NOT_FOUND, a 33rd VIF), requests whose kernel call k
 * fails (injected in front of the real socket and in FakeKernel at the same call), link removals
 * and re-creations — against an Engine over the real KernelTables and an Engine over FakeKernel
 * with the same ifindexes, and reports both sides after every step.
 *
 * 1. real vs fake: the same outcome (success or error code, number of changes), the same config
 *    and image, and the real /proc/net/ip_mr_vif + /proc/net/ip_mr_cache equal to FakeKernel's table.
 * 2. memory vs real kernel: the real table equals what the engine's image says is installed.
 * The namespace is deleted in after(), whatever happened.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { StepReport, Table } from "../support/engine_replay.js";

const NS = `mfct-rvf-${process.pid}`;
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CHILD = fileURLToPath(new URL("../support/engine_replay.ts", import.meta.url));
const SEEDS = (process.env.MFC_REPLAY_SEEDS ?? "20240611,7").split(",").map(Number);
const STEPS = Number(process.env.MFC_REPLAY_STEPS ?? 90);
const PAIRS = 17;

const ip = (...args: string[]): string => execFileSync("ip", args, { encoding: "utf8", stdio: "pipe" });

type Line = StepReport | { start: true; steps: number; table: Table } | { done: true; afterClose: Table } | { fatal: string };
interface Run { steps: StepReport[]; start: { steps: number; table: Table } | undefined; done: { afterClose: Table } | undefined }

function runChild(seed: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const c = spawn("ip", ["netns", "exec", NS, process.execPath, "--import", "tsx", CHILD, "--seed", String(seed), "--steps", String(STEPS)], { cwd: ROOT });
    let out = "";
    let stderr = "";
    c.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    c.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => c.kill("SIGKILL"), 25_000);
    c.on("error", reject);
    c.on("close", (code) => {
      clearTimeout(timer);
      try {
        const lines = out.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Line);
        const fatal = lines.find((l): l is { fatal: string } => "fatal" in l);
        if (fatal !== undefined || code !== 0) throw new Error(`child exited ${code}: ${fatal?.fatal ?? ""}\n${stderr}`);
        resolve({
          steps: lines.filter((l): l is StepReport => "step" in l),
          start: lines.find((l): l is { start: true; steps: number; table: Table } => "start" in l),
          done: lines.find((l): l is { done: true; afterClose: Table } => "done" in l),
        });
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });
}

const codeOf = (outcome: string): string => outcome.replace(/ \(.*/, "");

void describe("engine over the real kernel vs engine over FakeKernel", () => {
  before(() => {
    ip("netns", "add", NS);
    const cmds = ["link set lo up"];
    for (let p = 0; p < PAIRS; p++) cmds.push(`link add v${2 * p} type veth peer name v${2 * p + 1}`, `link set v${2 * p} up`, `link set v${2 * p + 1} up`);
    execFileSync("ip", ["-n", NS, "-batch", "-"], { input: cmds.join("\n") + "\n", stdio: ["pipe", "pipe", "pipe"] });
  });

  after(() => {
    // Deleting the namespace destroys every link in it (and the table of a child still running).
    try {
      ip("netns", "del", NS);
    } catch {
      // already gone
    }
  });

  for (const seed of SEEDS) {
    // One run per seed (sequential: the namespace's table has one owner), shared by both checks.
    let run: Promise<Run> | undefined;
    const once = (): Promise<Run> => (run ??= runChild(seed));

    void test(`seed ${seed}: the real kernel agrees with the fake after every step`, async () => {
      const { steps, start, done } = await once();
      assert.ok(start, "child did not start");
      assert.deepEqual(start.table, { vifs: [], mfcs: [] }, "the namespace's table was not empty at start");
      assert.equal(steps.length, start.steps, "child did not finish every step");

      const codes = new Map<string, number>();
      for (const s of steps) {
        const where = `step ${s.i}: ${s.step}`;
        assert.equal(codeOf(s.real.outcome), codeOf(s.fake.outcome), `${where}: outcome`);
        assert.equal(s.real.outcome, s.fake.outcome, `${where}: number of kernel changes`);
        assert.deepEqual(s.real.table, s.fake.table, `${where}: real /proc table != FakeKernel table`);
        assert.equal(s.real.config, s.fake.config, `${where}: config`);
        assert.equal(s.real.image, s.fake.image, `${where}: image`);
        codes.set(codeOf(s.real.outcome), (codes.get(codeOf(s.real.outcome)) ?? 0) + 1);
      }
      // The sequence must really have covered what it claims.
      for (const c of ["ok", "E_MFC_EXISTS", "E_IF_NOT_FOUND", "E_VIF_LIMIT", "E_MFC_NOT_FOUND", "E_VIF_IN_USE", "E_KERNEL"]) {
        assert.ok((codes.get(c) ?? 0) > 0, `the sequence never produced ${c}: ${JSON.stringify([...codes])}`);
      }
      assert.equal(Math.max(...steps.map((s) => s.real.table.vifs.length)), 32, "the sequence never filled all 32 VIFs");
      assert.ok(steps.some((s) => s.real.table.mfcs.length >= 5), "the sequence never had 5 routes installed");
      assert.ok(steps.some((s) => s.step.startsWith("ip link del")), "no link removal");

      assert.ok(done, "child did not report done");
      assert.deepEqual(done.afterClose, { vifs: [], mfcs: [] }, "closing the socket left VIFs or routes behind");
    });

    void test(`seed ${seed}: the engine's memory matches the real kernel after every step`, async () => {
      const { steps } = await once();
      for (const s of steps) {
        assert.deepEqual(s.real.table, s.real.imageTable, `step ${s.i}: ${s.step}: real /proc table != what the engine's image says is installed`);
      }
    });
  }
});
