/**
 * Untrusted request -> typed operations. Shape errors (missing, extra, mistyped fields) are
 * E_INVALID_ARGUMENT naming the field; address rules are E_INVALID_ADDRESS (model/ipv4.ts).
 */
import * as v from "valibot";
import { MfcError, invalid } from "../errors/codes.js";
import { ifNameProblem } from "../model/ifname.js";
import { checkGroup, checkRouteGroup, checkSource, checkSourceGroup } from "../model/address.js";
import { familyOf, type Family } from "../model/family.js";
import { OifLists } from "../model/oif_lists.js";
import { DEFAULT_THRESHOLD, DEFAULT_TTL, type Join, type Oif, type PinnedVif, type Route } from "../model/types.js";
import { ACTIONS, type Action } from "./messages.js";

const IfName = v.pipe(
  v.string(),
  v.rawCheck(({ dataset, addIssue }) => {
    const problem = dataset.typed ? ifNameProblem(dataset.value) : undefined;
    if (problem) addIssue({ message: problem });
  }),
);
const Ttl = v.pipe(v.number(), v.integer("must be an integer"), v.minValue(1, "must be 1-255"), v.maxValue(255, "must be 1-255"));
// Long enough for any IPv6 spelling with a prefix length; the address rules are model/address.ts's.
const Address = v.pipe(v.string(), v.maxLength(64, "is not an IP address"));
const FamilyIn = v.optional(v.picklist([4, 6], "must be 4 or 6"));
// A template's flows, as `show -j` lists them: read-only, accepted and ignored by APPLY.
const ShownFlow = v.strictObject({ source: v.string(), group: v.string(), packets: v.optional(v.number()), bytes: v.optional(v.number()) });
const Source = v.optional(v.nullable(Address));

const OifIn = v.union([v.strictObject({ ifname: IfName, ttl: v.optional(Ttl) }), IfName], "must be an interface name or {ifname, ttl}");
const RouteIn = v.strictObject({ source: Source, group: Address, iif: IfName, oifs: v.pipe(v.array(OifIn), v.minLength(1, "needs at least one interface"), v.maxLength(32, "has more than 32 interfaces")) });
const RouteKeyIn = v.strictObject({ source: Source, group: Address });
const VifIn = v.strictObject({ ifname: IfName, threshold: v.optional(Ttl), family: FamilyIn });
const JoinIn = v.strictObject({ ifname: IfName, group: Address, source: Source });
const Empty = v.strictObject({});

// `apply` accepts what `show -j` prints, so the read-only fields of that shape are allowed too.
const Counter = v.optional(v.number());
const ShownVif = v.strictObject({
  ifname: IfName, threshold: v.optional(Ttl), family: FamilyIn, pinned: v.optional(v.boolean()),
  vifi: v.optional(v.nullable(v.number())), ifindex: v.optional(v.nullable(v.number())),
  pkts_in: Counter, bytes_in: Counter, pkts_out: Counter, bytes_out: Counter,
});
const ShownRoute = v.strictObject({
  ...RouteIn.entries,
  packets: Counter, bytes: Counter, wrong_if: Counter,
  state: v.optional(v.string()), reason: v.optional(v.string()), flows: v.optional(v.array(ShownFlow)),
});
const ShownJoin = v.strictObject({ ...JoinIn.entries, state: v.optional(v.string()), reason: v.optional(v.string()) });
export const ApplyIn = v.strictObject({
  family: FamilyIn,
  state: v.strictObject({ vifs: v.optional(v.array(ShownVif)), routes: v.array(ShownRoute), joins: v.optional(v.array(ShownJoin)) }),
});
type ApplyOut = v.InferOutput<typeof ApplyIn>;

/**
 * Whether an APPLY payload surely passes ApplyIn: the same rules, checked by hand, because the
 * generic schema walk took ~1 s of a 100 000-route apply. Only a shortcut: anything it is not sure
 * of goes through ApplyIn, which gives every error (and is the definition, see schema.test.ts).
 */
export function plainApply(p: unknown): p is ApplyOut {
  if (!plainObject(p) || !onlyKeys(p, APPLY_KEYS) || !optional(p.family, (y) => y === 4 || y === 6) || !plainObject(p.state) || !onlyKeys(p.state, STATE_KEYS)) return false;
  const { vifs, routes, joins } = p.state;
  return (vifs === undefined || (Array.isArray(vifs) && vifs.every(plainVif))) && Array.isArray(routes) && routes.every(plainRoute) &&
    (joins === undefined || (Array.isArray(joins) && joins.every(plainJoin)));
}

const APPLY_KEYS = new Set(["state", "family"]);
const STATE_KEYS = new Set(["vifs", "routes", "joins"]);
const VIF_KEYS = new Set(["ifname", "threshold", "family", "pinned", "vifi", "ifindex", "pkts_in", "bytes_in", "pkts_out", "bytes_out"]);
const ROUTE_KEYS = new Set(["source", "group", "iif", "oifs", "packets", "bytes", "wrong_if", "state", "reason", "flows"]);
const FLOW_KEYS = new Set(["source", "group", "packets", "bytes"]);
const JOIN_KEYS = new Set(["ifname", "group", "source", "state", "reason"]);
const OIF_KEYS = new Set(["ifname", "ttl"]);

function plainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}
function onlyKeys(o: Record<string, unknown>, keys: ReadonlySet<string>): boolean {
  for (const k of Object.keys(o)) if (!keys.has(k)) return false;
  return true;
}
const isIfName = (x: unknown): boolean => typeof x === "string" && ifNameProblem(x) === undefined;
const isTtl = (x: unknown): boolean => typeof x === "number" && Number.isInteger(x) && x >= 1 && x <= 255;
const optional = (x: unknown, test: (y: unknown) => boolean): boolean => x === undefined || test(x);
const isNumber = (x: unknown): boolean => typeof x === "number";
const isAddress = (x: unknown): boolean => typeof x === "string" && x.length <= 64;

function plainVif(x: unknown): boolean {
  return plainObject(x) && onlyKeys(x, VIF_KEYS) && isIfName(x.ifname) && optional(x.threshold, isTtl) && optional(x.family, (y) => y === 4 || y === 6) &&
    optional(x.pinned, (y) => typeof y === "boolean") && optional(x.vifi, (y) => y === null || isNumber(y)) &&
    optional(x.ifindex, (y) => y === null || isNumber(y)) && optional(x.pkts_in, isNumber) && optional(x.bytes_in, isNumber) &&
    optional(x.pkts_out, isNumber) && optional(x.bytes_out, isNumber);
}

function plainRoute(x: unknown): boolean {
  if (!plainObject(x) || !onlyKeys(x, ROUTE_KEYS)) return false;
  const { oifs } = x;
  return optional(x.source, (y) => y === null || isAddress(y)) && isAddress(x.group) && isIfName(x.iif) &&
    Array.isArray(oifs) && oifs.length >= 1 && oifs.length <= 32 &&
    oifs.every((o) => isIfName(o) || (plainObject(o) && onlyKeys(o, OIF_KEYS) && isIfName(o.ifname) && optional(o.ttl, isTtl))) &&
    optional(x.packets, isNumber) && optional(x.bytes, isNumber) && optional(x.wrong_if, isNumber) &&
    optional(x.state, (y) => typeof y === "string") && optional(x.reason, (y) => typeof y === "string") &&
    optional(x.flows, (y) => Array.isArray(y) && y.every(plainFlow));
}

function plainFlow(x: unknown): boolean {
  return plainObject(x) && onlyKeys(x, FLOW_KEYS) && typeof x.source === "string" && typeof x.group === "string" &&
    optional(x.packets, isNumber) && optional(x.bytes, isNumber);
}

function plainJoin(x: unknown): boolean {
  return plainObject(x) && onlyKeys(x, JOIN_KEYS) && isIfName(x.ifname) && isAddress(x.group) &&
    optional(x.source, (y) => y === null || isAddress(y)) && optional(x.state, (y) => typeof y === "string") &&
    optional(x.reason, (y) => typeof y === "string");
}
const ShowIn = v.strictObject({ what: v.optional(v.picklist(["all", "routes", "vifs", "joins"])), family: FamilyIn });

/**
 * A payload: any JSON object, passed on untouched for the strict schema of its action to check.
 * Not a valibot record: that silently drops "__proto__", "constructor" and "prototype" keys (so
 * they escaped the "extra field" check) and turns an array into an object.
 */
const PayloadObject = v.custom<Record<string, unknown>>(
  (x) => typeof x === "object" && x !== null && !Array.isArray(x), "must be an object",
);

export const MAX_BATCH_OPERATIONS = 1_000_000;
const BatchIn = v.strictObject({
  operations: v.pipe(v.array(v.strictObject({ action: v.string(), payload: v.optional(PayloadObject) })), v.maxLength(MAX_BATCH_OPERATIONS)),
});

export type Op =
  | { action: "ADD_VIF"; vif: PinnedVif }
  | { action: "DEL_VIF"; ifname: string; family: Family }
  | { action: "ADD_MFC" | "REPLACE_MFC"; route: Route }
  | { action: "DEL_MFC"; source: string | null; group: string }
  | { action: "JOIN" | "LEAVE"; join: Join }
  | { action: "FLUSH"; family?: Family }
  /** family: `mfc -6 apply`: the desired state of that family alone (the other one stays). */
  | { action: "APPLY"; vifs: PinnedVif[]; routes: Route[]; joins: Join[]; family?: Family };

export type Query =
  | { action: "PING" | "STATUS" }
  | { action: "SHOW"; what: "all" | "routes" | "vifs" | "joins"; family?: Family }
  | { action: "CHECK"; source: string | null; group: string | undefined; family?: Family };

function parse<S extends v.GenericSchema>(schema: S, input: unknown, where: string): v.InferOutput<S> {
  const r = v.safeParse(schema, input, { abortEarly: true });
  if (r.success) return r.output;
  let issue: v.BaseIssue<unknown> | undefined = r.issues[0];
  let path = issue ? v.getDotPath(issue) : null;
  // A union (an oif: a name or {ifname, ttl}) reports only itself; the branch that got deepest
  // into the input says what is wrong ("oifs.0.ttl must be 1-255", not "must be a name or ...").
  const branch = issue?.issues?.map((sub) => ({ sub, at: v.getDotPath(sub) })).filter((x) => x.at !== null)
    .sort((a, b) => (b.at as string).length - (a.at as string).length)[0];
  if (branch) {
    issue = branch.sub;
    path = path ? `${path}.${branch.at as string}` : branch.at;
  }
  const field = path ? `${where}.${path}` : where;
  const received = issue?.received ? ` (got ${issue.received})` : "";
  throw invalid("E_INVALID_ARGUMENT", `field '${field}' ${issue?.message ?? "is invalid"}${received}.`, { field });
}

function toRoute(r: v.InferOutput<typeof RouteIn>, lists: OifLists): Route {
  const oifs: Oif[] = r.oifs.map((o) => (typeof o === "string" ? { ifname: o, ttl: DEFAULT_TTL } : { ifname: o.ifname, ttl: o.ttl ?? DEFAULT_TTL }));
  const { source, group } = checkSourceGroup(r.source == null ? null : checkSource(r.source), checkRouteGroup(r.group));
  if (familyOf(group) === 6) {
    const o = oifs.find((x) => x.ttl !== 1);
    if (o) throw invalid("E_INVALID_ARGUMENT", `oif '${o.ifname}': ttl ${o.ttl} cannot apply to IPv6: the kernel's MRT6 entries keep no per-interface threshold, every oif forwards packets with hop limit 2 or more.`, { field: "oifs" });
  }
  return { source, group, iif: r.iif, oifs: lists.intern(oifs) };
}

function toJoin(j: v.InferOutput<typeof JoinIn>): Join {
  const { source, group } = checkSourceGroup(j.source == null ? null : checkSource(j.source), checkGroup(j.group));
  return { ifname: j.ifname, group, source };
}

/** A pinned VIF, or MIF (family 6): MIFs have no threshold of their own (see toRoute). */
function toVif(x: { ifname: string; threshold?: number | undefined; family?: 4 | 6 | undefined }): PinnedVif {
  if (x.family === 6 && x.threshold !== undefined && x.threshold !== 1) {
    throw invalid("E_INVALID_ARGUMENT", `a MIF (IPv6) has no threshold: the kernel forwards IPv6 packets with hop limit 2 or more on every oif.`, { field: "threshold" });
  }
  const vif: PinnedVif = { ifname: x.ifname, threshold: x.threshold ?? DEFAULT_THRESHOLD };
  if (x.family === 6) vif.family = 6;
  return vif;
}

export function isAction(s: unknown): s is Action {
  return typeof s === "string" && (ACTIONS as readonly string[]).includes(s);
}

/** One mutating operation (also each entry of a BATCH). */
export function parseOp(action: string, payload: unknown, where = "payload", lists = new OifLists()): Op {
  const p = payload ?? {};
  switch (action) {
    case "ADD_VIF": {
      return { action, vif: toVif(parse(VifIn, p, where)) };
    }
    case "DEL_VIF": {
      const x = parse(v.strictObject({ ifname: IfName, family: FamilyIn }), p, where);
      return { action, ifname: x.ifname, family: x.family ?? 4 };
    }
    case "ADD_MFC":
    case "REPLACE_MFC": return { action, route: toRoute(parse(RouteIn, p, where), lists) };
    case "DEL_MFC": {
      const x = parse(RouteKeyIn, p, where);
      return { action, ...checkSourceGroup(x.source == null ? null : checkSource(x.source), checkRouteGroup(x.group)) };
    }
    case "JOIN":
    case "LEAVE": return { action, join: toJoin(parse(JoinIn, p, where)) };
    case "FLUSH": {
      const x = parse(v.strictObject({ family: FamilyIn }), p, where);
      return x.family === undefined ? { action } : { action, family: x.family };
    }
    case "APPLY": {
      const x = plainApply(p) ? p : parse(ApplyIn, p, where);
      return {
        action,
        ...(x.family === undefined ? {} : { family: x.family }),
        vifs: (x.state.vifs ?? []).filter((vf) => vf.pinned !== false).map((vf) => toVif(vf)),
        routes: x.state.routes.map((r) => toRoute({ source: r.source, group: r.group, iif: r.iif, oifs: r.oifs }, lists)),
        joins: (x.state.joins ?? []).map((j) => toJoin({ ifname: j.ifname, group: j.group, source: j.source })),
      };
    }
    default:
      if (isAction(action)) throw invalid("E_INVALID_ARGUMENT", `action ${action} is not allowed in ${where}.`);
      throw new MfcError("E_UNKNOWN_ACTION", `Unknown action '${action.slice(0, 64)}'.`);
  }
}

/** BATCH payload -> its operations (a batch may not nest BATCH). */
export function parseBatch(payload: unknown): Op[] {
  const x = parse(BatchIn, payload ?? {}, "payload");
  const lists = new OifLists();
  return x.operations.map((o, i) => {
    if (o.action === "BATCH") throw invalid("E_INVALID_ARGUMENT", `operations[${i}]: a BATCH cannot contain a BATCH.`, { operation: i });
    try {
      return parseOp(o.action, o.payload, `payload.operations[${i}].payload`, lists);
    } catch (err) {
      // Like the engine's errors: say which operation broke, so the CLI can name the batch line.
      if (err instanceof MfcError) throw new MfcError(err.code, err.message, { ...err.details, operation: i });
      throw err;
    }
  });
}

const CheckIn = v.strictObject({ source: Source, group: v.optional(Address), family: FamilyIn });

export function parseQuery(action: "PING" | "STATUS" | "SHOW" | "CHECK", payload: unknown): Query {
  if (action === "SHOW") {
    const x = parse(ShowIn, payload ?? {}, "payload");
    return x.family === undefined ? { action, what: x.what ?? "all" } : { action, what: x.what ?? "all", family: x.family };
  }
  if (action === "CHECK") {
    const x = parse(CheckIn, payload ?? {}, "payload");
    const source = x.source == null ? null : checkSource(x.source);
    const group = x.group === undefined ? undefined : checkGroup(x.group);
    if (group !== undefined) checkSourceGroup(source, group);
    return x.family === undefined ? { action, source, group } : { action, source, group, family: x.family };
  }
  parse(Empty, payload ?? {}, "payload");
  return { action };
}

const Envelope = v.strictObject({
  action: v.string(),
  dry_run: v.optional(v.boolean()),
  // false: the client will not read the kernel steps, so the answer leaves `changes` out.
  changes: v.optional(v.boolean()),
  payload: v.optional(PayloadObject),
  // A finite number: JSON.parse reads 1e400 as Infinity, which JSON cannot carry back (it would be null).
  id: v.optional(v.union([v.pipe(v.number(), v.finite()), v.pipe(v.string(), v.maxLength(128))], "must be a finite number or a string of at most 128 characters")),
});
export type Envelope = v.InferOutput<typeof Envelope>;

export function parseEnvelope(obj: unknown): Envelope {
  return parse(Envelope, obj, "request");
}
