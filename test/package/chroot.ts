/**
 * A cached Debian 12 (bookworm) root for package tests: debootstrap --variant=minbase plus
 * systemd (so the .deb meets a real init, deb-systemd-helper and systemctl) and adduser (its
 * dependency, which minbase lacks). Built once under /var/cache/mfc-test-chroot (override:
 * MFC_TEST_CHROOT_CACHE) from the Debian mirror apt already uses on this machine (override:
 * MFC_TEST_MIRROR); every test works on a fresh copy.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run } from "./support.js";

export const CACHE_DIR = process.env.MFC_TEST_CHROOT_CACHE ?? "/var/cache/mfc-test-chroot";
const SUITE = "bookworm";
const INCLUDE = ["adduser", "systemd", "systemd-sysv"];
const STAMP = ".mfc-test-chroot.json";

/** The first Debian mirror serving the bookworm suite in /etc/apt/sources.list{,.d/*}. */
export function aptMirror(): string {
  if (process.env.MFC_TEST_MIRROR) return process.env.MFC_TEST_MIRROR;
  const files = ["/etc/apt/sources.list"];
  if (existsSync("/etc/apt/sources.list.d")) for (const f of readdirSync("/etc/apt/sources.list.d").sort()) files.push(join("/etc/apt/sources.list.d", f));
  for (const file of files) {
    if (!/(\.list|\.sources|sources\.list)$/.test(file) || !existsSync(file)) continue;
    const text = readFileSync(file, "utf8");
    if (file.endsWith(".sources")) {
      // deb822 stanzas: Types, URIs, Suites.
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (name: string): string[] => (new RegExp(`^${name}:\\s*(.*)$`, "mi").exec(stanza)?.[1] ?? "").trim().split(/\s+/).filter(Boolean);
        if (!field("Types").includes("deb") || /^Enabled:\s*no/mi.test(stanza)) continue;
        if (field("Suites").includes(SUITE) && field("URIs")[0]) return field("URIs")[0] as string;
      }
    } else {
      for (const line of text.split("\n")) {
        const m = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
        if (m?.[2] === SUITE && m[1]) return m[1];
      }
    }
  }
  return "http://deb.debian.org/debian";
}

export interface CachedRoot {
  path: string;
  mirror: string;
  /** Seconds debootstrap took, when it ran now. */
  builtIn?: number;
}

/** The cached root, debootstrapping it on first use. Throws with the reason if that fails. */
export async function cachedRoot(): Promise<CachedRoot> {
  const mirror = aptMirror();
  const path = join(CACHE_DIR, `${SUITE}-minbase-systemd`);
  const want = { suite: SUITE, variant: "minbase", include: INCLUDE };
  try {
    const have = JSON.parse(readFileSync(join(path, STAMP), "utf8")) as typeof want;
    if (JSON.stringify({ suite: have.suite, variant: have.variant, include: have.include }) === JSON.stringify(want)) return { path, mirror };
  } catch {
    /* not built yet, or from another recipe */
  }
  mkdirSync(CACHE_DIR, { recursive: true });
  // Built beside and renamed into place: an interrupted debootstrap never looks finished.
  const tmp = `${path}.new-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  const t0 = Date.now();
  const r = await run("debootstrap", ["--variant=minbase", `--include=${INCLUDE.join(",")}`, SUITE, tmp, mirror], { check: false, timeoutMs: 900_000 });
  if (r.code !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    const log = (r.stderr + r.stdout).trim().split("\n").slice(-4).join(" / ");
    throw new Error(`debootstrap ${SUITE} from ${mirror} failed (cannot reach the mirror?): ${log}`);
  }
  // Lets the package tests tell a fresh root from a modified one, and keeps apt quiet.
  writeFileSync(join(tmp, STAMP), JSON.stringify({ ...want, mirror, created: new Date().toISOString() }) + "\n");
  rmSync(path, { recursive: true, force: true });
  renameSync(tmp, path);
  return { path, mirror, builtIn: (Date.now() - t0) / 1000 };
}

/** A private copy of the cached root (cp -a keeps owners, modes, device nodes). */
export async function copyRoot(from: string, to: string): Promise<void> {
  await run("cp", ["-a", "--reflink=auto", from, to], { timeoutMs: 300_000 });
}
