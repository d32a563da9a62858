/**
 * Helpers for the package tests: run a command, make sure a tool is there (apt-installing it
 * when we are root on Debian, as CI is), and build the packages with scripts/package.sh into
 * a temporary directory (never into the checkout).
 */
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
export const PACKAGING = join(ROOT, "packaging");
export const UNIT_NAME = "mfc_daemon.service";
/** The template unit of instances (mfc_daemon --instance %i). */
export const TEMPLATE_NAME = "mfc_daemon@.service";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
  /** Reject on a non-zero exit (default true). */
  check?: boolean;
}

export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((res, rej) => {
    const child = execFile(cmd, args, {
      cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 120_000,
      maxBuffer: 256 * 1024 * 1024, encoding: "utf8",
    }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      const r = { code, stdout, stderr };
      if (code !== 0 && opts.check !== false) {
        rej(new Error(`${cmd} ${args.join(" ")} exited ${code}${err?.killed ? " (killed: timeout)" : ""}\n${stderr}${stdout}`.trim()));
      } else res(r);
    });
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(opts.input ?? "");
  });
}

export function have(cmd: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

let aptUpdated = false;

/**
 * Returns undefined when `cmd` is available (installing the Debian package `pkg` first if we
 * can), or the reason it is not: the caller skips with that message.
 */
export async function ensureTool(cmd: string, pkg: string): Promise<string | undefined> {
  if (have(cmd)) return undefined;
  if (process.getuid?.() !== 0 || !have("apt-get")) return `${cmd} is missing and cannot be installed here (needs root and apt-get): apt-get install ${pkg}`;
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const install = (): Promise<RunResult> => run("apt-get", ["-o", "DPkg::Lock::Timeout=120", "install", "-y", "-qq", "--no-install-recommends", pkg], { env, check: false, timeoutMs: 600_000 });
  let r = await install();
  if (r.code !== 0 && !aptUpdated) {
    aptUpdated = true;
    await run("apt-get", ["-o", "DPkg::Lock::Timeout=120", "update", "-qq"], { env, check: false, timeoutMs: 600_000 });
    r = await install();
  }
  if (r.code !== 0 || !have(cmd)) return `${cmd} is missing and apt-get install ${pkg} failed: ${(r.stderr || r.stdout).trim().split("\n").slice(-3).join(" / ")}`;
  return undefined;
}

export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;
}

export interface Built {
  dir: string;
  deb?: string;
  rpm?: string;
  log: string;
}

/**
 * scripts/package.sh with fast compression into a new temp dir. Uses the dist/ that the test
 * suite just built (scripts/test.sh builds first); builds it only if it is missing.
 */
export async function buildPackages(opts: { version?: string; formats?: string; dir?: string } = {}): Promise<Built> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "mfct-pkg-"));
  const args = ["scripts/package.sh", "--out", dir, "--compress", "fast", "--formats", opts.formats ?? "deb,rpm"];
  if (existsSync(join(ROOT, "dist/daemon_main.js")) && existsSync(join(ROOT, "dist/cli/main.js"))) args.push("--no-build");
  if (opts.version) args.push("--version", opts.version);
  // The npm cache (filled by the suite's own npm ci) serves the dependencies and, after the
  // first run, the Node runtime package: no network round trip per build.
  const env = { ...process.env, npm_config_prefer_offline: "true", npm_config_update_notifier: "false" };
  const r = await run("bash", args, { env, timeoutMs: 600_000 });
  const files = r.stdout.trim().split("\n").filter(Boolean);
  return { dir, deb: files.find((f) => f.endsWith(".deb")), rpm: files.find((f) => f.endsWith(".rpm")), log: r.stderr };
}
