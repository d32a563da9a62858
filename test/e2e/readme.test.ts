// README.md, followed from top to bottom as a newcomer would: every command of its ```sh blocks and
// every `$ command` of its transcripts runs as written, in order, with bash, in a practice lab of
// its own; the transcripts' output must be what the command prints.
//
// How the newcomer's set-up is reproduced without touching theirs:
// - The commands run in a temp directory laid out like the checkout (scripts/ is a symlink to the
//   real one, config/dev.conf a copy, so run/ is the temp directory's), with MFC_CONFIG pointing at
//   that copy, MFC_LAB naming a lab of this process (mfct-readme-<pid>-*, removed by the suite's
//   stale-lab clean-up if this process dies) and MFC_BUILD=0 (the suite builds once, first).
// - Long-running commands run in the background, as in the README's other terminals:
//   `./scripts/run-dev.sh --lab` (terminal 1; later `./scripts/lab down` must stop it, exit 0) and
//   `./scripts/lab recv` (terminal 3; stopped with SIGINT, "Ctrl-C", after the block that shows
//   what it printed, whose lines must all be among what it printed). `./scripts/test.sh` is the
//   suite this test belongs to: it is not run again.
// - An `alias` is evaluated where the README runs it and kept for the later commands.
// - Transcripts: the lines after `$ command` are its stdout and stderr; a last line `...` ends the
//   comparison early; no lines: the command must only succeed. pid, uptime_s, rss_bytes and paths in
//   `mfc status` vary and are not compared. A transcript that shows `mfc: E_...` must exit non-zero;
//   every other command must exit 0.
// Needs root and a build (dist/). Run: node --import tsx --test test/e2e/readme.test.ts
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const LAB = `mfct-readme-${process.pid}`;

type Step =
  | { kind: "sh"; cmd: string; line: number }
  | { kind: "transcript"; cmd: string; expected: string[]; line: number }
  | { kind: "recv-output"; expected: string[]; line: number };

/** The README's runnable steps, in document order. */
function parseReadme(text: string): Step[] {
  const lines = text.split("\n");
  const steps: Step[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i] as string);
    if (!open) continue;
    const lang = open[1];
    const start = i + 1;
    let end = start;
    while (end < lines.length && !/^```\s*$/.test(lines[end] as string)) end++;
    const body = lines.slice(start, end);
    i = end;
    if (lang === "sh") {
      for (let j = 0; j < body.length; j++) {
        const l = body[j] as string;
        if (!l.trim() || l.trim().startsWith("#")) continue;
        const here = /<<-?\s*'?(\w+)'?/.exec(l);
        let cmd = l;
        const first = j;
        if (here) {
          while (j + 1 < body.length && body[j + 1] !== here[1]) cmd += `\n${body[++j]}`;
          cmd += `\n${body[++j] ?? ""}`;
        }
        steps.push({ kind: "sh", cmd, line: start + first + 1 });
      }
    } else if (lang === "" && body[0]?.startsWith("$ ")) {
      for (let j = 0; j < body.length; j++) {
        const l = body[j] as string;
        if (l.startsWith("$ ")) steps.push({ kind: "transcript", cmd: l.slice(2), expected: [], line: start + j + 1 });
        else (steps[steps.length - 1] as { expected: string[] }).expected.push(l);
      }
    } else if (lang === "" && body[0]?.startsWith("listening:")) {
      steps.push({ kind: "recv-output", expected: body, line: start + 1 });
    }
  }
  return steps;
}

interface Proc {
  child: ChildProcess;
  out: string[];
  text(): string;
  exited: Promise<number | null>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Output lines that vary from run to run, reduced to their key. */
function normalize(lines: string[]): string[] {
  const out = lines.map((l) => l.replace(/\s+$/, "").replace(/^(pid|uptime_s|rss_bytes|state_file|socket): .*$/, "$1: (varies)"));
  while (out.length && out[out.length - 1] === "") out.pop();
  return out;
}

void describe("README.md, top to bottom, in a practice lab", { skip: process.getuid?.() !== 0 ? "needs root (network namespaces)" : false }, () => {
  let dir = "";
  let env: NodeJS.ProcessEnv = {};
  let prelude = "set -o pipefail\nshopt -s expand_aliases\n";
  const background: Proc[] = [];

  const start = (cmd: string): Proc => {
    const child = spawn("bash", ["-c", prelude + cmd], { cwd: dir, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    const out: string[] = [];
    child.stdout?.on("data", (d: Buffer) => out.push(d.toString()));
    child.stderr?.on("data", (d: Buffer) => out.push(d.toString()));
    const exited = new Promise<number | null>((r) => child.once("close", (code) => r(code)));
    return { child, out, text: () => out.join(""), exited };
  };
  const run = async (cmd: string, timeoutMs = 60_000): Promise<{ code: number | null; text: string }> => {
    const p = start(cmd);
    const timer = setTimeout(() => killGroup(p, "SIGKILL"), timeoutMs);
    const code = await p.exited;
    clearTimeout(timer);
    return { code, text: p.text() };
  };
  const killGroup = (p: Proc, sig: NodeJS.Signals): void => {
    try {
      if (p.child.pid) process.kill(-p.child.pid, sig);
    } catch {
      /* gone */
    }
  };
  const labNamespaces = (): string[] => execFileSync("ip", ["netns", "list"], { encoding: "utf8" }).split("\n").map((l) => l.split(" ")[0] ?? "").filter((n) => n.startsWith(`${LAB}-`));

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "mfct-readme-"));
    symlinkSync(join(ROOT, "scripts"), join(dir, "scripts"));
    mkdirSync(join(dir, "config"));
    copyFileSync(join(ROOT, "config/dev.conf"), join(dir, "config/dev.conf"));
    env = { ...process.env, MFC_CONFIG: join(dir, "config/dev.conf"), MFC_LAB: LAB, MFC_BUILD: "0" };
    assert.ok(existsSync(join(ROOT, "dist/daemon_main.js")), "dist/ is not built (npm run build)");
  });

  after(async () => {
    for (const p of background) killGroup(p, "SIGTERM");
    if (labNamespaces().length) execFileSync(join(ROOT, "scripts/lab"), ["down"], { env, stdio: "ignore" });
    for (const p of background) killGroup(p, "SIGKILL");
    await sleep(100);
    rmSync(dir, { recursive: true, force: true });
  });

  void it("every example runs as written and prints what the README shows", async (t) => {
    const steps = parseReadme(readFileSync(join(ROOT, "README.md"), "utf8"));
    let daemon: Proc | undefined;
    let recv: Proc | undefined;
    let ran = 0;
    for (const step of steps) {
      const where = `README.md:${step.line}`;
      if (step.kind === "recv-output") {
        assert.ok(recv, `${where}: output of ./scripts/lab recv shown, but it does not run`);
        const r = recv;
        const want = step.expected.filter((l) => l !== "...");
        const deadline = Date.now() + 10_000;
        while (want.some((l) => !r.text().split("\n").includes(l)) && Date.now() < deadline) await sleep(50);
        killGroup(r, "SIGINT"); // Ctrl-C
        assert.equal(await r.exited, 0, `${where}: lab recv after Ctrl-C:\n${r.text()}`);
        const got = r.text().split("\n");
        for (const l of want) assert.ok(got.includes(l), `${where}: lab recv did not print\n  ${l}\nit printed:\n${r.text()}`);
        assert.match(r.text(), /^received: recv1 \(behind eth1\) 5, recv2 \(behind eth2\) 5$/m, r.text());
        recv = undefined;
        continue;
      }
      const cmd = step.cmd;
      ran++;
      if (cmd.startsWith("./scripts/test.sh")) {
        t.diagnostic(`${where}: ${cmd}: the suite this test is part of; not run again`);
        continue;
      }
      if (cmd.startsWith("./scripts/run-dev.sh")) {
        daemon = start(cmd);
        background.push(daemon);
        const deadline = Date.now() + 120_000;
        for (;;) {
          const probe = await run(`${join(ROOT, "scripts/mfc")} status >/dev/null 2>&1`);
          if (probe.code === 0) break;
          assert.equal(daemon.child.exitCode, null, `${where}: ${cmd} ended:\n${daemon.text()}`);
          assert.ok(Date.now() < deadline, `${where}: the daemon did not become ready:\n${daemon.text()}`);
          await sleep(200);
        }
        continue;
      }
      if (cmd.startsWith("./scripts/lab recv")) {
        recv = start(cmd);
        background.push(recv);
        const deadline = Date.now() + 20_000;
        while (!recv.text().includes("listening:")) {
          assert.ok(Date.now() < deadline && recv.child.exitCode === null, `${where}: ${cmd} does not listen:\n${recv.text()}`);
          await sleep(50);
        }
        continue;
      }
      if (/^alias \w+=/.test(cmd)) {
        // Evaluated here (in the checkout-like directory) and kept, as the user's shell keeps it.
        const r = await run(`${cmd}\nalias`);
        assert.equal(r.code, 0, `${where}: ${cmd}\n${r.text}`);
        prelude += `${r.text.trim()}\n`;
        continue;
      }
      const r = await run(cmd);
      const shown = step.kind === "transcript" ? step.expected : [];
      const fails = shown.some((l) => /^mfc: E_[A-Z_]+: /.test(l));
      if (fails) assert.notEqual(r.code, 0, `${where}: \`${cmd}\` should fail as shown, but exited 0:\n${r.text}`);
      else assert.equal(r.code, 0, `${where}: \`${cmd}\` exited ${r.code}:\n${r.text}`);
      if (shown.length) {
        let want = normalize(shown);
        let got = normalize(r.text.split("\n"));
        if (want[want.length - 1] === "...") {
          want = want.slice(0, -1);
          got = got.slice(0, want.length);
        }
        assert.deepEqual(got, want, `${where}: \`${cmd}\` printed something else than the README shows`);
      }
    }
    t.diagnostic(`${ran} commands run`);
    assert.ok(ran >= 30, `only ${ran} commands found in README.md`);
    assert.ok(daemon, "the README never starts the daemon");
    assert.equal(recv, undefined, "lab recv is still running at the end of the README");
    // The README ends with ./scripts/lab down: the daemon stopped cleanly and the lab is gone.
    const code = await Promise.race([daemon.exited, sleep(10_000).then(() => "still running")]);
    assert.equal(code, 0, `run-dev.sh --lab after the README's last step:\n${daemon.text()}`);
    assert.match(daemon.text(), /state file kept/);
    assert.deepEqual(labNamespaces(), [], "the lab's namespaces are still there");
  });
});
