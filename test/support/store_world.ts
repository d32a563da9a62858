/**
 * The engine with a FakeKernel and a FileStateStore on a given StateFs: what the store tests drive
 * with random transactions, and the helpers they check with.
 */
import { Engine } from "../../src/engine/engine.js";
import { MfcError } from "../../src/errors/codes.js";
import { FakeKernel, FakeLinks } from "./fake_kernel.js";
import type { Config } from "../../src/model/types.js";
import { parseBatch, parseOp, type Op } from "../../src/protocol/schema.js";
import type { StateFs } from "../../src/state/fs_port.js";
import { FileStateStore } from "../../src/state/store.js";
import { configText } from "./memory_store.js";
import { SimFs, type Files } from "./sim_fs.js";

export const STATE = "/state/state.json";
export const IFACES = ["e0", "e1", "e2", "e3", "e4", "e5"];

export class StoreWorld {
  readonly links = new FakeLinks(IFACES);
  readonly kernel = new FakeKernel(this.links);
  readonly store: FileStateStore;
  readonly engine: Engine;

  constructor(fs: StateFs) {
    this.store = new FileStateStore(STATE, fs);
    this.engine = new Engine(this.kernel, this.links, this.store);
  }

  text(): string {
    return configText(this.engine.snapshot().config);
  }

  /** Runs a transaction; resolves with its error code, or "ok". Other errors propagate. */
  async run(ops: Op[]): Promise<string> {
    try {
      await this.engine.transact(ops, false);
      return "ok";
    } catch (err) {
      if (err instanceof MfcError) return err.code;
      throw err;
    }
  }
}

/** What a restart would load from `files`, as configText; throws if the files are unusable. */
export async function loadText(files: Files): Promise<string> {
  const loaded = await new FileStateStore(STATE, new SimFs(files)).load();
  return configText(loaded ?? { vifs: new Map(), routes: new Map(), joins: new Map() });
}

export const EMPTY_TEXT = configText({ vifs: new Map(), routes: new Map(), joins: new Map() });

/** The kernel equals what the engine believes it installed (same VIFs, same entries). */
export function kernelMatchesImage(w: StoreWorld): boolean {
  const { image } = w.engine.snapshot();
  const d = w.kernel.dump();
  const vifs = [...image.vifs.values()].map((v) => [v.vifi, v.ifindex, v.threshold]).sort((a, b) => (a[0] as number) - (b[0] as number));
  const mfcs = [...image.mfcs.values()].map((m) => {
    const t = [...m.ttls];
    while (t.length && t[t.length - 1] === 0) t.pop();
    return [`${m.source ?? "0.0.0.0"},${m.group}`, m.parent, t];
  }).sort((a, b) => String(a[0]).localeCompare(String(b[0])));
  return JSON.stringify(vifs) === JSON.stringify(d.vifs) && JSON.stringify(mfcs) === JSON.stringify(d.mfcs);
}

const pick = <T>(rnd: () => number, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;

function randomRoute(rnd: () => number, group: string): Record<string, unknown> {
  const [iif, ...rest] = [...IFACES].sort(() => rnd() - 0.5);
  const oifs = rest.slice(0, 1 + Math.floor(rnd() * 3)).map((ifname) => ({ ifname, ttl: pick(rnd, [1, 1, 2, 8]) }));
  return { source: rnd() < 0.3 ? null : `10.0.${Math.floor(rnd() * 4)}.${1 + Math.floor(rnd() * 200)}`, group, iif, oifs };
}

/** A random, mostly valid transaction over the current config (adds dominate, so tables grow). */
export function randomTx(rnd: () => number, config: Config): Op[] {
  const routes = [...config.routes.values()];
  const group = (): string => `239.${Math.floor(rnd() * 3)}.${Math.floor(rnd() * 256)}.${1 + Math.floor(rnd() * 250)}`;
  const one = (): { action: string; payload: Record<string, unknown> } => {
    const r = rnd();
    const existing = routes.length > 0 ? pick(rnd, routes) : undefined;
    if (r < 0.55 || !existing) return { action: "ADD_MFC", payload: randomRoute(rnd, group()) };
    if (r < 0.7) return { action: "REPLACE_MFC", payload: { ...randomRoute(rnd, existing.group), source: existing.source } };
    if (r < 0.85) return { action: "DEL_MFC", payload: { source: existing.source, group: existing.group } };
    if (r < 0.92) return { action: "ADD_VIF", payload: { ifname: pick(rnd, IFACES), threshold: pick(rnd, [1, 4, 16]) } };
    return { action: "DEL_VIF", payload: { ifname: pick(rnd, [...config.vifs.keys(), "e0"]) } };
  };
  const r = rnd();
  if (r < 0.03) return [parseOp("FLUSH", {})];
  if (r < 0.08) {
    // Desired state: most of the current routes, a few new ones.
    const keep = routes.filter(() => rnd() < 0.8).map((x) => ({ source: x.source, group: x.group, iif: x.iif, oifs: x.oifs }));
    const extra = Array.from({ length: Math.floor(rnd() * 4) }, () => randomRoute(rnd, group()));
    const unique = new Map([...keep, ...extra].map((x) => [`${String(x.source)},${String(x.group)}`, x]));
    return [parseOp("APPLY", { state: { vifs: [...config.vifs.values()], routes: [...unique.values()] } })];
  }
  if (r < 0.18) return parseBatch({ operations: Array.from({ length: 2 + Math.floor(rnd() * 3) }, one) });
  const o = one();
  return [parseOp(o.action, o.payload)];
}
