/**
 * An in-memory StateStore for engine tests. It records every saved config (deep copies, so later
 * mutations cannot rewrite history), can be made to fail (once, N times, or for good) to exercise
 * E_STATE_WRITE and the rollback that must follow it, and checks every `delta` the engine passes
 * along: a delta must name every route and VIF that differs from the previous save, or a
 * journal-based store would lose that change (`deltaViolations`).
 */
import type { Config, Join, MapConfig, PinnedVif, Route } from "../../src/model/types.js";
import type { StateStore } from "../../src/state/store.js";

/** What a transaction touched (route keys, VIF names); structurally the store's Delta. */
export interface SaveDelta { routes: Set<string>; vifs: Set<string>; joins: Set<string> }

function copyConfig(c: Config): MapConfig {
  return {
    vifs: new Map([...c.vifs].map(([k, v]): [string, PinnedVif] => [k, { ...v }])),
    routes: new Map([...c.routes].map(([k, r]): [string, Route] => [k, { ...r, oifs: r.oifs.map((o) => ({ ...o })) }])),
    joins: new Map([...c.joins].map(([k, j]): [string, Join] => [k, { ...j }])),
  };
}

/** A canonical text of a config: equal text = equal config (order-insensitive). */
export function configText(c: Config | undefined): string {
  if (c === undefined) return "(nothing saved)";
  const vifs = [...c.vifs.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, v.ifname, v.threshold]);
  const routes = [...c.routes.entries()].sort(([a], [b]) => a.localeCompare(b))
    .map(([k, r]) => [k, r.source, r.group, r.iif, r.oifs.map((o) => [o.ifname, o.ttl])]);
  const joins = [...c.joins.keys()].sort();
  // Configs without joins print as before, so texts compared across versions stay equal.
  return JSON.stringify(joins.length > 0 ? { vifs, routes, joins } : { vifs, routes });
}

export class MemoryStore implements StateStore {
  /** Every successfully saved config, oldest first. */
  readonly saved: Config[] = [];
  /** The delta given with each successful save (undefined: "everything"). */
  readonly deltas: (SaveDelta | undefined)[] = [];
  /** Changes a save made that its delta did not name. Must stay empty. */
  readonly deltaViolations: string[] = [];
  /** save() calls, successful or not. */
  attempts = 0;
  loads = 0;
  /** The in-memory store never holds a refused change: a failed save writes nothing. */
  readonly needsRepair = false;
  private failuresLeft = 0;
  private failMessage = "No space left on device (injected)";

  constructor(readonly path = "memory:/var/lib/mfc_daemon/state.json", initial?: Config) {
    if (initial) this.saved.push(copyConfig(initial));
  }

  /** Make the next `count` saves fail (Infinity: every save until clearFaults()). */
  failSaves(count = 1, message?: string): void {
    this.failuresLeft = count;
    if (message !== undefined) this.failMessage = message;
  }

  clearFaults(): void {
    this.failuresLeft = 0;
  }

  /** The config a restart would load (undefined: nothing saved yet). */
  get last(): MapConfig | undefined {
    const c = this.saved[this.saved.length - 1];
    return c === undefined ? undefined : copyConfig(c);
  }

  load(): Promise<MapConfig | undefined> {
    this.loads++;
    return Promise.resolve(this.last);
  }

  save(config: Config, delta?: SaveDelta): Promise<void> {
    this.attempts++;
    if (this.failuresLeft > 0) {
      this.failuresLeft--;
      return Promise.reject(new Error(this.failMessage));
    }
    // Copy synchronously: a later mutation of `config` must not change what was "written".
    const copy = copyConfig(config);
    if (delta) this.checkDelta(this.saved[this.saved.length - 1], copy, delta);
    this.saved.push(copy);
    this.deltas.push(delta && { routes: new Set(delta.routes), vifs: new Set(delta.vifs), joins: new Set(delta.joins) });
    return Promise.resolve();
  }

  private checkDelta(prev: Config | undefined, next: Config, delta: SaveDelta): void {
    const p = prev ?? { vifs: new Map<string, PinnedVif>(), routes: new Map<string, Route>(), joins: new Map<string, Join>() };
    for (const key of new Set([...p.routes.keys(), ...next.routes.keys()])) {
      const a = p.routes.get(key);
      const b = next.routes.get(key);
      if (JSON.stringify(a) !== JSON.stringify(b) && !delta.routes.has(key)) {
        this.deltaViolations.push(`save #${this.saved.length + 1}: route ${key} changed but is not in the delta`);
      }
    }
    for (const name of new Set([...p.vifs.keys(), ...next.vifs.keys()])) {
      if (JSON.stringify(p.vifs.get(name)) !== JSON.stringify(next.vifs.get(name)) && !delta.vifs.has(name)) {
        this.deltaViolations.push(`save #${this.saved.length + 1}: VIF ${name} changed but is not in the delta`);
      }
    }
    for (const key of new Set([...p.joins.keys(), ...next.joins.keys()])) {
      if (p.joins.has(key) !== next.joins.has(key) && !delta.joins.has(key)) {
        this.deltaViolations.push(`save #${this.saved.length + 1}: join ${key} changed but is not in the delta`);
      }
    }
  }
}
