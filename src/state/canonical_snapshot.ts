/**
 * A fast reader of the snapshot exactly as FileStateStore writes it (`JSON.stringify` of
 * configToJson, no whitespace, keys in order). `JSON.parse` of a 100 000-route snapshot builds
 * a tree of ~700 000 objects that all survive until the routes are copied out of it: the parse
 * and the scavenges that copy that tree took ~40 % of start-up (docs/performance.md, "Fifth
 * round"). This reader scans the `routes` array's bytes and makes only what a route keeps.
 *
 * It never decides that a file is wrong: anything it does not recognise (whitespace, another key
 * order, an escape or a non-ASCII byte in a string, a number not written as digits, a check that
 * fails, a route listed twice) returns undefined, and the caller reads the file with JSON.parse
 * and configFromJson, whose result and errors stay the reference (test/unit/canonical_snapshot.test.ts
 * holds the two to the same result on every input).
 */
import { checkRouteGroup, checkSource } from "../model/address.js";
import { familyOf } from "../model/family.js";
import { ifNameProblem, ttlProblem } from "../model/ifname.js";
import type { OifLists } from "../model/oif_lists.js";
import { routeKey, type MapConfig, type Oif, type Route } from "../model/types.js";
import { configFromJson } from "./format.js";

const ROUTES_KEY = Buffer.from(',"routes":[');
const QUOTE = 0x22;

const lit = (s: string): Uint8Array => Buffer.from(s, "latin1");
const SOURCE = lit('{"source":');
const NULL = lit("null");
const GROUP = lit(',"group":"');
const IIF = lit(',"iif":"');
const OIFS = lit(',"oifs":[');
const IFNAME = lit('{"ifname":"');
const TTL = lit(',"ttl":');

/** The config of a canonical snapshot, or undefined: then the caller parses it the general way. */
export function configFromCanonicalSnapshot(bytes: Buffer, lists: OifLists): { config: MapConfig; seq: number } | undefined {
  const at = bytes.indexOf(ROUTES_KEY);
  if (at < 0) return undefined;
  const scanner = new RouteScanner(bytes, at + ROUTES_KEY.length, lists);
  const routes = scanner.routes();
  if (routes === undefined) return undefined;
  // The rest of the file (format, version, seq, vifs, joins) is small: the general reader checks
  // it, with an empty routes array in the place of the one scanned. A second "routes" key anywhere
  // (JSON.parse would keep the last) sends the whole file to the general reader.
  // Cut at ASCII bytes (the ',' before the key, after the ']'), so no UTF-8 sequence is split.
  const rest = bytes.toString("utf8", 0, at) + ',"routes":[]' + bytes.toString("utf8", scanner.end);
  if (rest.indexOf('"routes":') !== rest.lastIndexOf('"routes":')) return undefined;
  let parsed: { config: MapConfig; seq: number };
  try {
    parsed = configFromJson(JSON.parse(rest) as unknown, lists);
  } catch {
    return undefined;
  }
  const own = parsed.config.routes;
  for (const route of routes) {
    const key = routeKey(route.source, route.group);
    if (own.has(key)) return undefined;
    own.set(key, route);
  }
  return parsed;
}

/**
 * The routes array from just after its `[` to its `]` (`end`: the index after it). Consecutive
 * routes mostly repeat their source, iif and oif list: the bytes are compared with the route
 * before and its strings and list reused, so a repeated one costs no allocation and no check.
 */
class RouteScanner {
  end = 0;
  private pos: number;
  private prevSource = { from: 0, to: 0, value: "" };
  private prevIif = { from: 0, to: 0, value: "" };
  private prevOifs = { from: 0, to: 0, value: [] as readonly Readonly<Oif>[] };

  constructor(private readonly bytes: Buffer, start: number, private readonly lists: OifLists) {
    this.pos = start;
  }

  routes(): Route[] | undefined {
    const out: Route[] = [];
    const b = this.bytes;
    if (b[this.pos] === 0x5d /* ] */) {
      this.end = this.pos + 1;
      return out;
    }
    for (;;) {
      const route = this.route();
      if (route === undefined) return undefined;
      out.push(route);
      const c = b[this.pos++];
      if (c === 0x5d) break;
      if (c !== 0x2c /* , */) return undefined;
    }
    this.end = this.pos;
    return out;
  }

  private route(): Route | undefined {
    if (!this.expect(SOURCE)) return undefined;
    let source: string | null = null;
    if (!this.expect(NULL)) {
      if (this.bytes[this.pos++] !== QUOTE) return undefined;
      const text = this.string(this.prevSource, checkSourceText);
      if (text === undefined) return undefined;
      source = text;
    }
    if (!this.expect(GROUP)) return undefined;
    const group = this.freshString(checkGroupText);
    if (group === undefined) return undefined;
    if (source !== null && familyOf(source) !== familyOf(group)) return undefined;
    if (!this.expect(IIF)) return undefined;
    const iif = this.string(this.prevIif, checkIfName);
    if (iif === undefined) return undefined;
    if (!this.expect(OIFS)) return undefined;
    const oifs = this.oifs(iif);
    if (oifs === undefined || this.bytes[this.pos++] !== 0x7d /* } */) return undefined;
    return { source, group, iif, oifs };
  }

  /** The oif list through its `]`, interned; undefined if it breaks a rule (1-32, no repeats, not the iif). */
  private oifs(iif: string): readonly Readonly<Oif>[] | undefined {
    const from = this.pos;
    // Found once to its end (a name may hold ']'); read only when it differs from the last list.
    if (!this.oifEntries(undefined)) return undefined;
    const prev = this.prevOifs;
    let list: readonly Readonly<Oif>[];
    if (sameBytes(this.bytes, prev.from, prev.to, from, this.pos)) {
      list = prev.value;
    } else {
      const to = this.pos;
      const own: Oif[] = [];
      this.pos = from;
      this.oifEntries(own);
      const seen = new Set<string>();
      for (const o of own) {
        if (ifNameProblem(o.ifname) !== undefined || ttlProblem(o.ttl) !== undefined || seen.has(o.ifname)) return undefined;
        seen.add(o.ifname);
      }
      if (own.length > 32) return undefined;
      list = this.lists.intern(own);
      this.prevOifs = { from, to, value: list };
    }
    for (const o of list) if (o.ifname === iif) return undefined;
    return list;
  }

  /** Walks `{"ifname":"...","ttl":N}` entries through the list's `]`; with `into`, collects them. */
  private oifEntries(into: Oif[] | undefined): boolean {
    const b = this.bytes;
    for (;;) {
      if (!this.expect(IFNAME)) return false;
      const name = this.pos;
      const close = this.stringEnd();
      if (close < 0) return false;
      this.pos = close + 1;
      if (!this.expect(TTL)) return false;
      const digits = this.pos;
      while (b[this.pos]! >= 0x30 && b[this.pos]! <= 0x39) this.pos++;
      // At most three digits, no leading zero: what JSON.stringify writes for 1-255.
      if (this.pos === digits || this.pos - digits > 3 || b[digits] === 0x30) return false;
      if (into) into.push({ ifname: b.toString("latin1", name, close), ttl: Number(b.toString("latin1", digits, this.pos)) });
      if (b[this.pos++] !== 0x7d) return false;
      const c = b[this.pos++];
      if (c === 0x5d) return true;
      if (c !== 0x2c) return false;
    }
  }

  /** A string whose opening quote was read, reused from `prev` when its bytes are the same. */
  private string(prev: { from: number; to: number; value: string }, check: (s: string) => string | undefined): string | undefined {
    const from = this.pos;
    const close = this.stringEnd();
    if (close < 0) return undefined;
    this.pos = close + 1;
    if (sameBytes(this.bytes, prev.from, prev.to, from, close)) return prev.value;
    const value = check(this.bytes.toString("latin1", from, close));
    if (value === undefined) return undefined;
    prev.from = from;
    prev.to = close;
    prev.value = value;
    return value;
  }

  private freshString(check: (s: string) => string | undefined): string | undefined {
    const from = this.pos;
    const close = this.stringEnd();
    if (close < 0) return undefined;
    this.pos = close + 1;
    return check(this.bytes.toString("latin1", from, close));
  }

  /** The index of the closing quote of a string of plain ASCII (no escape, no control byte), or -1. */
  private stringEnd(): number {
    const b = this.bytes;
    const close = b.indexOf(QUOTE, this.pos);
    if (close < 0) return -1;
    for (let i = this.pos; i < close; i++) {
      const c = b[i]!;
      if (c < 0x20 || c >= 0x80 || c === 0x5c /* \ */) return -1;
    }
    return close;
  }

  private expect(token: Uint8Array): boolean {
    const b = this.bytes;
    const p = this.pos;
    for (let i = 0; i < token.length; i++) if (b[p + i] !== token[i]) return false;
    this.pos = p + token.length;
    return true;
  }
}

function sameBytes(b: Buffer, aFrom: number, aTo: number, bFrom: number, bTo: number): boolean {
  if (aTo - aFrom !== bTo - bFrom || aTo === aFrom) return false;
  for (let i = 0; i < aTo - aFrom; i++) if (b[aFrom + i] !== b[bFrom + i]) return false;
  return true;
}

/**
 * The checks of storedRoute (format.ts), with the value they keep (an IPv6 address in its canonical
 * form); undefined for a failure, which the general reader then reports with its message.
 */
function checked(check: (s: string) => string, s: string): string | undefined {
  try {
    return check(s);
  } catch {
    return undefined;
  }
}
const checkSourceText = (s: string): string | undefined => checked(checkSource, s);
const checkGroupText = (s: string): string | undefined => checked(checkRouteGroup, s);
const checkIfName = (s: string): string | undefined => (ifNameProblem(s) === undefined ? s : undefined);
