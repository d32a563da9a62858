/** Requests -> engine calls -> responses. Every failure becomes a typed error response. */
import { MfcError } from "../errors/codes.js";
import type { Engine } from "../engine/engine.js";
import { ShowSnapshot, type CounterSource } from "../view/model.js";
import { showResultPieces } from "../view/show_json.js";
import { MUTATING_ACTIONS, type ErrorResponse, type Response } from "../protocol/messages.js";
import { CHANGES_PER_PIECE, StreamedOk, jsonArrayPieces, type Answer } from "../protocol/streamed.js";
import { checkRoute, checkTable, type Facts, type Finding } from "../diagnostics/checks.js";
import { formatSG, routeFamily, routeKey, type Route } from "../model/types.js";
import { summarizeApply } from "../engine/operations.js";
import { originOf, vifCounts } from "../engine/image.js";
import { describeStep } from "../engine/plan.js";
import type { Family } from "../model/family.js";
import { isAction, parseBatch, parseEnvelope, parseOp, parseQuery, type Op, type Query } from "../protocol/schema.js";
import { readApplyLine, type ApplyLine } from "../protocol/apply_line.js";

export interface StatusSource { status(): Record<string, unknown> }

/**
 * Facts for diagnostics. `vifsInUse`: VIFs (4) and MIFs (6) the image holds, each against its own
 * kernel limit; `withVifCounters`: what each VIF sent too (only beside route counters).
 */
export type FactSource = (ifnames: Iterable<string>, vifsInUse: Record<Family, number>, tableWide: boolean, withVifCounters: boolean) => Facts;

/** Who asked for a change, what it was, and how it ended: one audit record per mutating request. */
export interface AuditRecord { uid: number; pid: number; action: string; dryRun: boolean; outcome: string; kernelSteps: number }

export class RequestHandler {
  constructor(
    private readonly engine: Engine,
    private readonly counters: CounterSource,
    private readonly status: StatusSource,
    private readonly facts: FactSource,
    private readonly audit: (record: AuditRecord) => void = () => undefined,
    /** Told how many routes or kernel steps a request handled (the daemon frees memory after big ones). */
    private readonly handled: (entries: number) => void = () => undefined,
  ) {}

  /**
   * Findings for routes (all of them, or one), plus table-wide ones. `withCounters` (mfc check):
   * the routes' packet counters too, so a route that gets no traffic can say why.
   */
  private diagnose(routes: Route[], withTable: boolean, withCounters: boolean, family?: Family): Finding[] {
    const names = new Set(routes.flatMap((r) => [r.iif, ...r.oifs.map((o) => o.ifname)]));
    const inUse = vifCounts(this.engine.snapshot().image);
    // Route counters first, the oifs' out counters (in facts) after: a flow's first packets landing
    // in between must not look like packets that arrived and were never sent (TTL_TOO_LOW).
    const packets = new Map<string, number>();
    const wrongIf = new Map<string, number>();
    if (withCounters) {
      for (const r of routes) {
        const c = this.counters.sgCounters(originOf(r), r.group);
        if (!c) continue;
        packets.set(routeKey(r.source, r.group), c.packets);
        wrongIf.set(routeKey(r.source, r.group), c.wrongIf);
      }
    }
    const facts = this.facts(names, inUse, withTable, withCounters);
    if (withCounters) {
      facts.packets = packets;
      facts.wrongIf = wrongIf;
    }
    return [...(withTable ? checkTable(facts, family) : []), ...routes.flatMap((r) => checkRoute(r, facts))];
  }

  /** Handles one request line from `peer`. Never throws (a streamed answer is made as it is written). */
  async handleLine(line: Buffer, peer: { uid: number; pid: number } = { uid: -1, pid: -1 }): Promise<Answer> {
    let id: number | string | undefined;
    let mutation: { action: string; dryRun: boolean } | undefined;
    try {
      // A large APPLY of canonical routes: those read from the bytes, the rest parsed (apply_line.ts).
      const fast = readApplyLine(line);
      let obj: unknown = fast?.request;
      if (fast === undefined) {
        const text = new TextDecoder("utf-8", { fatal: true }).decode(line);
        try {
          obj = JSON.parse(text);
        } catch {
          throw new MfcError("E_BAD_REQUEST", "Request is not valid JSON.");
        }
      }
      if (typeof obj !== "object" || obj === null || Array.isArray(obj)) throw new MfcError("E_BAD_REQUEST", "Request is not a JSON object.");
      const rawId = (obj as Record<string, unknown>).id;
      // Echoed only if JSON can carry it back: an id of 1e400 parses as Infinity, which would go out
      // as null (the envelope check then refuses it with E_INVALID_ARGUMENT, without an id).
      if ((typeof rawId === "number" && Number.isFinite(rawId)) || (typeof rawId === "string" && rawId.length <= 128)) id = rawId;
      const env = parseEnvelope(obj);
      if ((MUTATING_ACTIONS as readonly string[]).includes(env.action)) mutation = { action: env.action, dryRun: env.dry_run ?? false };
      const answer = await this.dispatch(env.action, env.payload, env.dry_run ?? false, env.changes ?? true, fast);
      const res = answer instanceof StreamedOk ? (id === undefined ? answer : answer.withId(id)) : withId(answer, id);
      const kernelSteps = res instanceof StreamedOk ? res.changeCount : res.status === "ok" ? Number(res.result.kernel_steps ?? 0) : 0;
      if (mutation) this.audit({ ...peer, ...mutation, outcome: "ok", kernelSteps });
      return res;
    } catch (err) {
      const res = withId(toErrorResponse(err), id);
      if (mutation) this.audit({ ...peer, ...mutation, outcome: res.error_code, kernelSteps: 0 });
      return res;
    }
  }

  /** Read-only requests but SHOW, answered from one engine snapshot. */
  private answer(q: Exclude<Query, { action: "SHOW" }>): Record<string, unknown> {
    switch (q.action) {
      case "PING": return { pong: true };
      case "STATUS": return this.status.status();
      case "CHECK": {
        const { config } = this.engine.snapshot();
        if (q.group === undefined) {
          const routes = [...config.routes.values()].filter((r) => q.family === undefined || routeFamily(r) === q.family);
          return { routes_checked: routes.length, findings: this.diagnose(routes, true, true, q.family) };
        }
        const route = config.routes.get(routeKey(q.source, q.group));
        if (!route) throw new MfcError("E_MFC_NOT_FOUND", `Route ${formatSG({ source: q.source, group: q.group })} does not exist.`);
        return { routes_checked: 1, findings: this.diagnose([route], false, true) };
      }
    }
  }

  /** `routesRead`: an APPLY's routes, read apart from its payload (whose `state.routes` is then empty). */
  private async dispatch(
    action: string, payload: unknown, dryRun: boolean, withChanges: boolean, routesRead?: Pick<ApplyLine, "routes" | "routesText">,
  ): Promise<Response | StreamedOk> {
    if (!isAction(action)) throw new MfcError("E_UNKNOWN_ACTION", `Unknown action '${action.slice(0, 64)}'.`);
    switch (action) {
      case "PING":
      case "STATUS":
      case "SHOW":
      case "CHECK": {
        const q = parseQuery(action, payload);
        if (q.action !== "SHOW") return { status: "ok", dry_run: dryRun, changes: [], result: this.answer(q) };
        // The rows are taken now, consistently (ShowSnapshot); the JSON is made piece by piece as
        // the connection writes it (100 000 routes: ~15 MB that never exist at once).
        const { config, image } = this.engine.snapshot();
        this.handled(config.routes.size);
        const snap = ShowSnapshot.take(config, image, this.counters, q.what, q.family);
        return new StreamedOk(showResultPieces(snap, this.counters), dryRun);
      }
      default: {
        const ops = action === "BATCH" ? parseBatch(payload) : [withRoutes(parseOp(action, payload), routesRead?.routes)];
        const applied = ops.length === 1 && ops[0]?.action === "APPLY" ? ops[0] : undefined;
        // Counted against the state when the request arrived: another client's change committed in
        // between can make these counts stale, never the transaction itself.
        const summary = applied ? summarizeApply(this.engine.snapshot().config, applied.routes, applied.family) : undefined;
        const done = await this.engine.transact(ops, dryRun, routesRead?.routesText);
        const steps = done.steps.length;
        this.handled(steps);
        const result: Record<string, unknown> = { operations: ops.length, kernel_steps: steps };
        if (summary) result.routes = summary;
        // A route the kernel accepted may still never forward: say so now, not at 3 a.m.
        const added = ops.length === 1 && (ops[0]?.action === "ADD_MFC" || ops[0]?.action === "REPLACE_MFC") ? ops[0].route : undefined;
        if (added) {
          const warnings = this.diagnose([added], false, false).filter((f) => f.severity !== "info");
          if (warnings.length > 0) result.warnings = warnings;
        }
        // A client that will not read the steps (the CLI's text output) is spared them: an apply of
        // 100 000 routes makes, writes and sends ~11 MB of JSON less.
        if (!withChanges) return { status: "ok", dry_run: dryRun, result };
        // Many steps: their JSON is made a few hundred at a time as the connection writes it, never
        // as one string.
        if (steps > CHANGES_PER_PIECE) {
          return new StreamedOk([JSON.stringify(result)], dryRun, { changes: jsonArrayPieces(done.steps, describeStep), changeCount: steps });
        }
        return { status: "ok", dry_run: dryRun, changes: done.changes, result };
      }
    }
  }
}

function withRoutes(op: Op, routes: Route[] | undefined): Op {
  if (routes === undefined) return op;
  if (op.action !== "APPLY" || op.routes.length !== 0) throw new Error("routes read apart from an APPLY whose own are not empty");
  return { ...op, routes };
}

function withId<T extends Response>(r: T, id: number | string | undefined): T {
  return id === undefined ? r : { ...r, id };
}

export function toErrorResponse(err: unknown): ErrorResponse {
  if (err instanceof MfcError) {
    const r: ErrorResponse = { status: "error", error_code: err.code, message: err.message };
    if (err.details) r.details = err.details;
    return r;
  }
  if (err instanceof TypeError && /encoded data was not valid/i.test(err.message)) {
    return { status: "error", error_code: "E_BAD_REQUEST", message: "Request is not valid UTF-8." };
  }
  return { status: "error", error_code: "E_INTERNAL", message: `Internal error: ${(err as Error)?.message ?? String(err)}` };
}
