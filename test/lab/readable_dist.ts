/**
 * The built daemon and CLI at paths that other users can read, for tests that run them as throw-away
 * unprivileged users. A checkout in /root (mode 0700) or any other directory that others cannot
 * traverse would make them fail with "Cannot find module"; tests must not depend on where the
 * checkout lives. When the checkout's dist/, the runtime dependencies in node_modules/ and the node
 * binary are all reachable by others, they are used as they are; otherwise a copy of what the
 * daemon and CLI need at run time (dist/, package.json, the `dependencies` of package.json and what
 * they depend on, and the node binary if it is hidden too) goes into a world-readable temp directory
 * that cleanup() removes (also on process exit).
 *
 *   const dist = readableDist(); after(() => dist.cleanup());
 *   spawn(dist.node, [dist.daemonJs, "--config", conf]) ... as another user
 */
import { chmodSync, copyFileSync, cpSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));

export interface ReadableDist {
  /** Directory holding dist/, package.json and node_modules/ (the checkout, or the copy). */
  root: string;
  daemonJs: string;
  cliJs: string;
  /** A node binary that other users can execute. */
  node: string;
  /** True when a copy was made (the checkout is not reachable by other users). */
  copied: boolean;
  /** Why a copy was needed (the first path others cannot reach), for diagnostics. */
  reason?: string;
  cleanup(): void;
}

/** The first ancestor directory of path that "others" cannot traverse, or the path itself if they cannot read it. */
export function hiddenFromOthers(path: string, needExec = false): string | undefined {
  const abs = resolve(path);
  let dir = dirname(abs);
  const chain: string[] = [];
  for (;;) {
    chain.unshift(dir);
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  for (const d of chain) if ((statSync(d).mode & 0o001) === 0) return d;
  const mode = statSync(abs).mode;
  if ((mode & 0o004) === 0 || (needExec && (mode & 0o001) === 0)) return abs;
  return undefined;
}

/** package.json `dependencies` and everything they need, as directories under root/node_modules that exist. */
function runtimePackages(root: string): string[] {
  const seen = new Set<string>();
  const queue = Object.keys((JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { dependencies?: Record<string, string> }).dependencies ?? {});
  while (queue.length) {
    const name = queue.shift() as string;
    if (seen.has(name)) continue;
    const dir = join(root, "node_modules", name);
    if (!existsSync(join(dir, "package.json"))) continue; // optional dependency for another platform
    seen.add(name);
    const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
    queue.push(...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {}));
  }
  return [...seen].sort();
}

/** chmod a+rX, recursively. */
function openUp(path: string): void {
  const st = statSync(path);
  if (st.isDirectory()) {
    chmodSync(path, st.mode | 0o555);
    for (const e of readdirSync(path)) openUp(join(path, e));
  } else chmodSync(path, st.mode | 0o444 | (st.mode & 0o100 ? 0o111 : 0));
}

export function readableDist(root = ROOT): ReadableDist {
  const daemonJs = join(root, "dist/daemon_main.js");
  const cliJs = join(root, "dist/cli/mfc.cjs");
  const deps = runtimePackages(root);
  const needed = [daemonJs, cliJs, join(root, "package.json"), ...deps.map((d) => join(root, "node_modules", d, "package.json"))];
  const reason = needed.map((p) => hiddenFromOthers(p)).find(Boolean);
  const nodeHidden = hiddenFromOthers(process.execPath, true);
  if (!reason && !nodeHidden) return { root, daemonJs, cliJs, node: process.execPath, copied: false, cleanup: () => undefined };

  const base = hiddenFromOthers(tmpdir(), true) ? "/tmp" : tmpdir();
  const dir = mkdtempSync(join(base, "mfct-dist-"));
  const cleanup = (): void => {
    process.removeListener("exit", cleanup);
    rmSync(dir, { recursive: true, force: true });
  };
  process.once("exit", cleanup);
  try {
    cpSync(join(root, "dist"), join(dir, "dist"), { recursive: true });
    copyFileSync(join(root, "package.json"), join(dir, "package.json"));
    for (const d of deps) cpSync(join(root, "node_modules", d), join(dir, "node_modules", d), { recursive: true });
    openUp(dir);
    let node = process.execPath;
    if (nodeHidden) {
      mkdirSync(join(dir, "bin"), { mode: 0o755 });
      node = join(dir, "bin/node");
      try {
        linkSync(process.execPath, node); // same file system: no 100 MB copy
      } catch {
        copyFileSync(process.execPath, node);
      }
      chmodSync(node, 0o755);
    }
    return {
      root: dir, daemonJs: join(dir, "dist/daemon_main.js"), cliJs: join(dir, "dist/cli/mfc.cjs"), node, copied: true,
      reason: `${reason ?? nodeHidden ?? ""} is not reachable by other users`, cleanup,
    };
  } catch (err) {
    cleanup();
    throw err;
  }
}
