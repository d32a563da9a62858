/**
 * Runs the built daemon (dist/) inside a lab's router namespace with a temporary config, and the
 * built CLI against it. Usage:
 *
 *   const lab = await createLab(); after(() => lab.destroy());
 *   const d = await startDaemon(lab); after(() => d.cleanup());
 *   const r = await d.mfc(["add", "from", lab.addr.sender, "to", "239.1.1.1", "iif", "up0", "oif", "dn1"]);
 */
import { execFile, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { DAEMON_NODE_FLAGS } from "../../src/daemon/memory.js";
import type { ExecResult, Lab } from "./lab.js";

const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
export const DAEMON_JS = join(ROOT, "dist/daemon_main.js");
export const CLI_JS = join(ROOT, "dist/cli/mfc.cjs");

export interface DaemonHandle {
  proc: ChildProcess;
  dir: string;
  socket: string;
  stateFile: string;
  configPath: string;
  /** Everything the daemon wrote to stderr so far. */
  logs(): string;
  /** Runs the built `mfc` with `-s socket` prepended. */
  mfc(args: string[], opts?: { input?: string }): Promise<ExecResult>;
  /** mfc() that must succeed: resolves with stdout, throws with the exit status and stderr. */
  mfcOk(args: string[], opts?: { input?: string }): Promise<string>;
  /** Sends a signal and waits for exit; resolves with the exit code (null if killed by signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited(): Promise<number | null>;
  /** Stops the daemon if still running and removes the temp dir (keeps nothing). */
  cleanup(): Promise<void>;
}

export interface StartOptions {
  /** Reuse a directory (state file survives restarts); default: a new temp dir. */
  dir?: string;
  /** Extra `key = value` lines for [daemon]. */
  extraConfig?: string;
  /** Resolve as soon as the process exits instead of failing (for start-up error tests). */
  expectExit?: boolean;
  timeoutMs?: number;
  /**
   * A command prefix run inside the router namespace in front of the daemon, for example
   * `["fiu-run", "-x", "-f", fifoPrefix]`. The prefix must exec the daemon (not fork it), so that
   * `proc.pid` stays the daemon's pid (`ip netns exec` itself execs without forking).
   */
  wrap?: string[];
}

export function runCli(args: string[], opts: { input?: string } = {}): Promise<ExecResult> {
  return new Promise((res) => {
    const child = execFile(process.execPath, [CLI_JS, ...args], { timeout: 60_000, maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      res({ code, stdout, stderr });
    });
    child.stdin?.end(opts.input ?? "");
  });
}

function ping(socket: string): Promise<boolean> {
  return new Promise((res) => {
    const c = createConnection(socket);
    c.once("connect", () => c.write('{"action":"PING"}\n'));
    c.once("data", () => { c.destroy(); res(true); });
    c.once("error", () => res(false));
  });
}

export async function startDaemon(lab: Lab, opts: StartOptions = {}): Promise<DaemonHandle> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "mfct-d-"));
  const socket = join(dir, "mfc.sock");
  const stateFile = join(dir, "state.json");
  const configPath = join(dir, "mfc_daemon.conf");
  writeFileSync(configPath, `[daemon]\nsocket_path = ${socket}\nstate_file = ${stateFile}\nsocket_group =\n${opts.extraConfig ?? ""}\n`);
  const proc = lab.spawn(lab.ns.router, [...(opts.wrap ?? []), process.execPath, ...DAEMON_NODE_FLAGS, DAEMON_JS, "--config", configPath]);
  let stderr = "";
  proc.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  proc.stdout?.on("data", (d: Buffer) => (stderr += d.toString()));
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((res) => proc.once("exit", (code) => { exitCode = code; res(code); }));
  const handle: DaemonHandle = {
    proc, dir, socket, stateFile, configPath,
    logs: () => stderr,
    mfc: (args, o) => runCli(["-s", socket, ...args], o),
    async mfcOk(args, o) {
      const r = await runCli(["-s", socket, ...args], o);
      if (r.code !== 0) throw new Error(`mfc ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
      return r.stdout;
    },
    exited: () => exited,
    async stop(signal = "SIGTERM") {
      if (exitCode !== undefined) return exitCode;
      proc.kill(signal);
      return exited;
    },
    async cleanup() {
      if (exitCode === undefined) {
        proc.kill("SIGKILL");
        await exited;
      }
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  for (;;) {
    if (exitCode !== undefined) {
      if (opts.expectExit) return handle;
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
      throw new Error(`daemon exited with ${exitCode} during start-up:\n${stderr}`);
    }
    if (existsSync(socket) && (await ping(socket))) {
      if (opts.expectExit) throw new Error("daemon started but was expected to exit");
      return handle;
    }
    if (Date.now() > deadline) {
      proc.kill("SIGKILL");
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
      throw new Error(`daemon did not become ready:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Reads /proc/net/ip_mr_vif and ip_mr_cache inside the router (default table only). */
export async function kernelTables(lab: Lab): Promise<{ vif: string[]; cache: string[] }> {
  const vif = await lab.exec(lab.ns.router, ["cat", "/proc/net/ip_mr_vif"]);
  const cache = await lab.exec(lab.ns.router, ["cat", "/proc/net/ip_mr_cache"]);
  const rows = (t: string): string[] => t.trim().split("\n").slice(1).map((l) => l.trim()).filter(Boolean);
  return { vif: rows(vif.stdout), cache: rows(cache.stdout) };
}
