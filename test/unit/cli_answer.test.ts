/**
 * What the CLI prints for an answer, byte for byte, against what it printed when it parsed every
 * answer whole (the oracle below is that code of src/cli/main.ts, commit 2edbc31): text, -j into a
 * pipe, -v, --dry-run (where the changes are printed), batch errors with their line, warnings,
 * show, and a line that is not JSON. And where the changes are not printed (text without
 * --dry-run, -j into a pipe) the CLI does not JSON.parse them: a preloaded spy
 * (test/support/parse_spy.ts) records the longest text it parsed. The CLI runs from src under tsx
 * against a stand-in daemon on a Unix socket that answers a canned line in uneven writes.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ERROR_CODES, isErrorCode } from "../../src/errors/codes.js";
import type { Response } from "../../src/protocol/messages.js";
import { renderFinding, renderShow, renderTransaction, type ApplySummaryView, type FindingView } from "../../src/view/render.js";

const ROOT = join(import.meta.dirname, "..", "..");
const STEPS = 3_000; // ~330 KB of changes

let dir: string;
let sock: string;
let server: Server;
/** The line the stand-in daemon answers with next, and the request it got. */
let answer = "";
let request = "";
/** Every request of the current test, in order. */
let requests: string[] = [];
/** A daemon from before the request field `changes`: refuses a request that has it, as its envelope check did. */
let oldDaemon = false;
const OLD_REFUSAL = JSON.stringify({ status: "error", error_code: "E_INVALID_ARGUMENT", message: "Validation failed: field 'request.changes' Invalid key: Expected never but received \"changes\" (got \"changes\").", details: { field: "request.changes" } }) + "\n";

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "mfct-cli-answer-"));
  sock = join(dir, "s.sock");
  writeFileSync(join(dir, "apply.json"), JSON.stringify({ routes: [{ source: "10.0.0.1", group: "239.1.1.1", iif: "e0", oifs: ["e1"] }] }, null, 2));
  writeFileSync(join(dir, "batch.txt"), "# two adds\nadd to 239.1.1.1 iif e0 oif e1\n\nadd to 239.1.1.2 iif e0 oif e1\n");
  server = createServer((s) => {
    const chunks: Buffer[] = [];
    s.on("data", (c: Buffer) => {
      chunks.push(c);
      if (!c.includes(0x0a)) return;
      request = Buffer.concat(chunks).toString("utf8").trimEnd();
      chunks.length = 0;
      requests.push(request);
      // Uneven pieces: reads end anywhere, inside strings and UTF-8 sequences too.
      const bytes = Buffer.from(oldDaemon && "changes" in (JSON.parse(request) as object) ? OLD_REFUSAL : answer);
      let at = 0;
      const more = (): void => {
        if (at >= bytes.length) return;
        const n = 1 + ((at * 7919) % 20_000);
        s.write(bytes.subarray(at, at + n), () => setImmediate(more));
        at += n;
      };
      more();
    });
    s.on("error", () => s.destroy());
  });
  await new Promise<void>((r) => server.listen(sock, r));
});
after(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

interface Ran { stdout: string; stderr: string; code: number; longestParse: number }

function runCli(args: string[]): Promise<Ran> {
  const log = join(dir, "parse.log");
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ["--import", "tsx", "--import", join(ROOT, "test/support/parse_spy.ts"), join(ROOT, "src/cli/main.ts"), "-s", sock, ...args],
      { cwd: ROOT, env: { ...process.env, MFC_TEST_PARSE_LOG: log }, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
        if (err && typeof err.code !== "number") {
          reject(new Error(`mfc did not run: ${err.message}`));
          return;
        }
        resolve({ stdout, stderr, code: typeof err?.code === "number" ? err.code : 0, longestParse: Number(readFileSync(log, "utf8")) });
      });
  });
}

interface Cli { action: "APPLY" | "BATCH" | "ADD_MFC" | "SHOW"; json: boolean; dryRun: boolean; verbose: boolean; batchLines?: number[] }

/** What src/cli/main.ts printed for `line` when it parsed every answer whole (commit 2edbc31). */
function legacy(c: Cli, line: string): Omit<Ran, "longestParse"> {
  let stdout = "";
  let stderr = "";
  if (c.verbose) stderr += `> ${JSON.stringify(JSON.parse(request))}\n`;
  let res: Response;
  try {
    res = JSON.parse(line.slice(0, line.indexOf("\n"))) as Response;
  } catch {
    const message = `daemon sent an unreadable response: ${line.slice(0, line.indexOf("\n")).slice(0, 200)}`;
    if (c.json) stdout += JSON.stringify({ status: "error", error_code: "E_INTERNAL", message }) + "\n";
    return { stdout, stderr: stderr + `mfc: E_INTERNAL: ${message}\n`, code: 1 };
  }
  if (c.verbose) stderr += `< ${JSON.stringify(res)}\n`;
  if (res.status === "ok") {
    const warnings = (res.result.warnings ?? []) as FindingView[];
    if (c.json) return { stdout: JSON.stringify(c.action === "SHOW" ? res.result : res) + "\n", stderr, code: 0 };
    const routes = res.result.routes;
    const summary = typeof routes === "object" && routes !== null && "added" in routes && "unchanged" in routes ? routes as ApplySummaryView : undefined;
    if (warnings.length === 0 && !c.dryRun && summary === undefined && c.action !== "SHOW") return { stdout, stderr, code: 0 };
    for (const w of warnings) stderr += `mfc: ${renderFinding(w)}\n`;
    const text = c.action === "SHOW" ? renderShow(res.result) : renderTransaction(res.changes ?? [], c.dryRun, summary);
    if (text !== undefined) stdout += text + "\n";
    return { stdout, stderr, code: 0 };
  }
  if (c.json) stdout += JSON.stringify(res) + "\n";
  const op = res.details?.operation;
  const where = typeof op === "number" && c.batchLines?.[op] !== undefined ? `line ${c.batchLines[op]}: ` : "";
  stderr += `mfc: ${res.error_code}: ${where}${res.message}\n`;
  return { stdout, stderr, code: isErrorCode(res.error_code) ? ERROR_CODES[res.error_code].exit : 1 };
}

const change = (i: number): Record<string, unknown> => i % 1000 === 0
  ? { action: "add_vif", vifi: i / 1000, ifname: `e${i / 1000}`, ifindex: 2 + i / 1000, threshold: 1 }
  : { action: i % 3 ? "add_mfc" : "replace_mfc", source: i % 5 ? `10.0.${i % 7}.1` : null, group: `239.1.${i >> 8}.${i & 255}`, iif: "e0", oifs: [{ ifname: "é1", ttl: 1 + (i % 255) }, { ifname: "e2", ttl: 1 }] };
const changes = Array.from({ length: STEPS }, (_, i) => change(i));
const line = (x: unknown): string => JSON.stringify(x) + "\n";
const summary = { added: 2_990, replaced: 10, removed: 5, unchanged: 1 };
const warning = { severity: "warning", code: "IF_DOWN", route: "(*, 239.1.1.1)", ifname: "e1", message: "interface e1 is down", fix: "ip link set e1 up" };

const ANSWERS = {
  apply: line({ status: "ok", dry_run: false, changes, result: { operations: 1, kernel_steps: STEPS, routes: summary } }),
  // What the daemon answers a request with `changes: false`.
  applyNoChanges: line({ status: "ok", dry_run: false, result: { operations: 1, kernel_steps: STEPS, routes: summary } }),
  applyDry: line({ status: "ok", dry_run: true, changes, result: { operations: 1, kernel_steps: STEPS, routes: summary } }),
  batch: line({ status: "ok", dry_run: false, changes, result: { operations: 2, kernel_steps: STEPS } }),
  batchDry: line({ status: "ok", dry_run: true, changes: changes.slice(0, 40), result: { operations: 2, kernel_steps: 40 } }),
  batchError: line({ status: "error", error_code: "E_MFC_EXISTS", message: 'Route (*, 239.1.1.2) "exists".', details: { operation: 1 } }),
  addWarning: line({ status: "ok", dry_run: false, changes: changes.slice(0, 2), result: { operations: 1, kernel_steps: 2, warnings: [warning] } }),
  show: line({ status: "ok", dry_run: false, changes: [], result: { vifs: [{ vifi: 0, ifname: "e0", ifindex: 2, threshold: 1, pinned: false, pkts_in: 1, bytes_in: 2, pkts_out: 3, bytes_out: 4 }], routes: [{ source: null, group: "239.1.1.1", iif: "e0", oifs: [{ ifname: "e1", ttl: 1 }], packets: 5, bytes: 6, wrong_if: 0, state: "installed" }] } }),
  garbage: `{"status":"ok","dry_run":false,"changes":[${"é".repeat(250)}\n`,
};

const CASES: { args: string[]; answer: keyof typeof ANSWERS; cli: Omit<Cli, "json" | "dryRun" | "verbose">; changesUnparsed?: true }[] = [
  { args: ["apply", "apply.json"], answer: "apply", cli: { action: "APPLY" }, changesUnparsed: true },
  { args: ["apply", "apply.json"], answer: "applyNoChanges", cli: { action: "APPLY" } },
  { args: ["apply", "apply.json", "-j"], answer: "apply", cli: { action: "APPLY" }, changesUnparsed: true },
  { args: ["-o", "json", "apply", "apply.json"], answer: "apply", cli: { action: "APPLY" }, changesUnparsed: true },
  { args: ["-n", "apply", "apply.json"], answer: "applyDry", cli: { action: "APPLY" } },
  { args: ["-n", "-j", "apply", "apply.json"], answer: "applyDry", cli: { action: "APPLY" }, changesUnparsed: true },
  { args: ["-v", "apply", "apply.json"], answer: "apply", cli: { action: "APPLY" } },
  { args: ["-v", "-j", "apply", "apply.json"], answer: "apply", cli: { action: "APPLY" } },
  { args: ["batch", "batch.txt"], answer: "batch", cli: { action: "BATCH" }, changesUnparsed: true },
  { args: ["-n", "batch", "batch.txt"], answer: "batchDry", cli: { action: "BATCH" } },
  { args: ["batch", "batch.txt"], answer: "batchError", cli: { action: "BATCH", batchLines: [2, 4] } },
  { args: ["-j", "batch", "batch.txt"], answer: "batchError", cli: { action: "BATCH", batchLines: [2, 4] } },
  { args: ["add", "to", "239.1.1.1", "iif", "e0", "oif", "e1"], answer: "addWarning", cli: { action: "ADD_MFC" } },
  { args: ["add", "to", "239.1.1.1", "iif", "e0", "oif", "e1", "-j"], answer: "addWarning", cli: { action: "ADD_MFC" } },
  { args: ["show"], answer: "show", cli: { action: "SHOW" } },
  { args: ["show", "-j"], answer: "show", cli: { action: "SHOW" } },
  { args: ["apply", "apply.json"], answer: "garbage", cli: { action: "APPLY" } },
];

void describe("the CLI's output of an answer", () => {
  for (const c of CASES) {
    void test(`mfc ${c.args.join(" ")} <- ${c.answer}: as printed before`, async () => {
      answer = ANSWERS[c.answer];
      requests = [];
      const has = (...flags: string[]): boolean => c.args.some((a) => flags.includes(a));
      const ran = await runCli(c.args.map((a) => (a.endsWith(".json") || a.endsWith(".txt") ? join(dir, a) : a)));
      const cli: Cli = { ...c.cli, json: has("-j", "json"), dryRun: has("-n"), verbose: has("-v") };
      assert.deepEqual({ stdout: ran.stdout, stderr: ran.stderr, code: ran.code }, legacy(cli, answer));
      // Text output without --dry-run or -v prints no kernel steps, so it asks the daemon for none.
      const printsChanges = has("-j", "json", "-n", "-v");
      assert.equal((JSON.parse(request) as { changes?: unknown }).changes, printsChanges ? undefined : false, `request: ${request.slice(0, 120)}`);
      if (c.changesUnparsed) assert.ok(ran.longestParse < 20_000, `the CLI parsed ${ran.longestParse} characters of a ${answer.length}-character answer`);
    });
  }
});

void describe("the CLI against a daemon from before `changes: false`", () => {
  for (const args of [["apply", "apply.json"], ["batch", "batch.txt"], ["add", "to", "239.1.1.1", "iif", "e0", "oif", "e1"]]) {
    void test(`mfc ${args.join(" ")}: refused for the field, asked again without it, printed as ever`, async () => {
      const action = args[0] === "apply" ? "APPLY" : args[0] === "batch" ? "BATCH" : "ADD_MFC";
      answer = ANSWERS[action === "APPLY" ? "apply" : action === "BATCH" ? "batch" : "addWarning"];
      requests = [];
      oldDaemon = true;
      try {
        const ran = await runCli(args.map((a) => (a.endsWith(".json") || a.endsWith(".txt") ? join(dir, a) : a)));
        assert.deepEqual({ stdout: ran.stdout, stderr: ran.stderr, code: ran.code }, legacy({ action, json: false, dryRun: false, verbose: false }, answer));
        const sent = requests.map((r) => JSON.parse(r) as Record<string, unknown>);
        assert.deepEqual(sent.map((r) => r.changes), [false, undefined]);
        const first = { ...sent[0] };
        delete first.changes;
        assert.deepEqual(first, sent[1], "the second request is the first without the field");
      } finally {
        oldDaemon = false;
      }
    });
  }
});
