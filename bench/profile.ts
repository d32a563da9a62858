/**
 * Reads V8 .cpuprofile files (node --cpu-prof) and ranks where the time went, optionally only
 * within time windows. Profile timestamps are CLOCK_MONOTONIC microseconds, the clock of
 * process.hrtime(), so windows measured in the bench process select the daemon's samples of them.
 */
import { readFileSync } from "node:fs";

interface CallFrame { functionName: string; url: string; lineNumber: number; columnNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
export interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

/** One profile and the windows [fromUs, toUs] to count; no windows = all of it. */
export interface ProfilePart { profile: CpuProfile; windows?: [number, number][] }

export interface HotSpot { fn: string; where: string; ms: number; share: number }
export interface HotSpots {
  /** Samples in the windows that were not idle, in ms. */
  busyMs: number;
  idleMs: number;
  /** Self time per function, share = of busy time. */
  functions: HotSpot[];
  /** Self time per file (or category such as "(garbage collector)"), share = of busy time. */
  files: HotSpot[];
  /** Total (inclusive) time of the project's own functions (files under dist/ or src/). */
  inclusive: HotSpot[];
}

export function loadProfile(path: string): CpuProfile {
  return JSON.parse(readFileSync(path, "utf8")) as CpuProfile;
}

function shortUrl(url: string, root: string): string {
  if (url === "") return "";
  let u = url.startsWith("file://") ? decodeURIComponent(url.slice(7)) : url;
  if (u.startsWith(root + "/")) u = u.slice(root.length + 1);
  const nm = u.lastIndexOf("node_modules/");
  if (nm >= 0) u = u.slice(nm);
  return u;
}

function add(m: Map<string, HotSpot>, fn: string, where: string, us: number): void {
  const key = `${fn}\u0000${where}`;
  const h = m.get(key) ?? { fn, where, ms: 0, share: 0 };
  h.ms += us / 1000;
  m.set(key, h);
}

/** Self and inclusive time per function over all parts; `root` is stripped from file paths. */
export function hotSpots(parts: ProfilePart[], root: string, top = 12): HotSpots {
  let busy = 0;
  let idle = 0;
  const fns = new Map<string, HotSpot>();
  const files = new Map<string, HotSpot>();
  const incl = new Map<string, HotSpot>();
  for (const { profile: p, windows } of parts) {
    const byId = new Map<number, ProfileNode>();
    const parent = new Map<number, number>();
    for (const n of p.nodes) {
      byId.set(n.id, n);
      for (const c of n.children ?? []) parent.set(c, n.id);
    }
    const selfUs = new Map<number, number>();
    let t = p.startTime;
    for (let i = 0; i < p.samples.length; i++) {
      const dt = p.timeDeltas[i] ?? 0;
      t += dt;
      if (windows && !windows.some(([a, b]) => t >= a && t <= b)) continue;
      // A sample stands for the time since the previous one.
      const id = p.samples[i] as number;
      selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
    }
    for (const [id, us] of selfUs) {
      const cf = byId.get(id)?.callFrame;
      if (!cf) continue;
      const fn = cf.functionName || "(anonymous)";
      if (fn === "(idle)") { idle += us; continue; }
      busy += us;
      const file = shortUrl(cf.url, root);
      add(fns, fn, file ? `${file}:${cf.lineNumber + 1}` : "", us);
      add(files, file || fn, "", us);
      // Inclusive: every distinct project frame on the sampled stack.
      const seen = new Set<string>();
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const f = byId.get(cur)?.callFrame;
        if (!f) break;
        const ff = shortUrl(f.url, root);
        if (!/^(dist|src)\//.test(ff)) continue;
        const where = `${ff}:${f.lineNumber + 1}`;
        const name = f.functionName || "(anonymous)";
        if (seen.has(`${name}\u0000${where}`)) continue;
        seen.add(`${name}\u0000${where}`);
        add(incl, name, where, us);
      }
    }
  }
  const rank = (m: Map<string, HotSpot>): HotSpot[] =>
    [...m.values()].map((h) => ({ ...h, share: busy > 0 ? (h.ms * 1000) / busy : 0 })).sort((a, b) => b.ms - a.ms).slice(0, top);
  return { busyMs: busy / 1000, idleMs: idle / 1000, functions: rank(fns), files: rank(files), inclusive: rank(incl) };
}

export function formatHotSpots(title: string, h: HotSpots): string {
  const line = (f: HotSpot): string => `    ${(f.share * 100).toFixed(1).padStart(5)} %  ${f.ms.toFixed(1).padStart(8)} ms  ${f.fn}${f.where ? "  " + f.where : ""}`;
  return [
    `${title}: busy ${h.busyMs.toFixed(0)} ms, idle ${h.idleMs.toFixed(0)} ms`,
    "  self time by function:", ...h.functions.map(line),
    "  self time by file:", ...h.files.map(line),
    "  total (inclusive) time of project functions:", ...h.inclusive.map(line),
  ].join("\n");
}
