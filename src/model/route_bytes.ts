/**
 * Routes read straight from the bytes of a JSON array of them in canonical form: exactly what
 * `JSON.stringify` writes for `{source, group, iif, oifs: [{ifname, ttl}]}`, no whitespace, keys in
 * that order. `JSON.parse` of 100 000 routes builds ~700 000 objects that all live until the routes
 * are made from them, and the scavenges copying that tree cost as much as the parse
 * (docs/performance.md, "Fifth round"); this makes only what a route keeps.
 *
 * Used where the input usually is canonical (the snapshot the store writes, an `mfc apply` of a
 * compact file) and only as a shortcut: whatever it does not recognise, or a rule a route breaks,
 * gives undefined and the caller reads the input the general way, whose result and errors stay the
 * reference. The rules are the stricter of the state file's (format.ts storedRoute) and a client's
 * (protocol/schema.ts toRoute): a route either reader would refuse, or read differently, is left to it.
 */
import { checkRouteGroup, checkSource } from "./address.js";
import { familyOf } from "./family.js";
import { ifNameProblem, ttlProblem } from "./ifname.js";
import type { OifLists } from "./oif_lists.js";
import type { Oif, Route } from "./types.js";

const QUOTE = 0x22;
/** Longer is no address (protocol/schema.ts Address). */
const MAX_ADDRESS = 64;

const lit = (s: string): Uint8Array => Buffer.from(s, "latin1");
const SOURCE = lit('{"source":');
const NULL = lit("null");
const GROUP = lit(',"group":"');
const IIF = lit(',"iif":"');
const OIFS = lit(',"oifs":[');
const IFNAME = lit('{"ifname":"');
const TTL = lit(',"ttl":');

/**
 * `bytes` holding a routes array after `key` (which ends with its `[`): the routes read from the
 * bytes, and the rest of the input, with a mark where the array was, decoded by `decode` (head, then
 * tail) and parsed by JSON.parse. The mark is a value no input can have been written to hold: the
 * caller finds it (`isMark`) where the routes belong, or the scanned array is not the one the input
 * means (JSON.parse keeps the last of repeated keys, however spelt: `"routes" :`,
 * `"rout\u0065s"`). The cuts fall on ASCII bytes (before the key's `[`, after the `]`), so no UTF-8
 * sequence is split. undefined: whatever did not work out; the caller reads the input the general way.
 * `text`: the array's bytes between its brackets when every value read is as written (then they are
 * the routes' JSON.stringify joined by commas, as the state file holds them).
 */
export function parseAroundRoutes(
  bytes: Buffer, key: Uint8Array, lists: OifLists, decode: (part: Buffer, tail: boolean) => string,
): { json: unknown; routes: Route[]; isMark: (x: unknown) => boolean; text: Buffer | undefined } | undefined {
  const at = bytes.indexOf(key);
  if (at < 0) return undefined;
  const scanner = new RouteScanner(bytes, at + key.length, lists);
  const routes = scanner.routes();
  if (routes === undefined) return undefined;
  // Every value kept as written: the array's bytes are the routes' own JSON.stringify, in order.
  const routesText = scanner.verbatim ? bytes.subarray(at + key.length, scanner.end - 1) : undefined;
  const mark = freshMark();
  try {
    const text = decode(bytes.subarray(0, at + key.length - 1), false) + `["${mark}"]` + decode(bytes.subarray(scanner.end), true);
    const json = JSON.parse(text) as unknown;
    return { json, routes, isMark: (x) => Array.isArray(x) && x.length === 1 && x[0] === mark, text: routesText };
  } catch {
    return undefined;
  }
}

/**
 * ~100 random bits: no input holds them by chance. Not node:crypto's randomUUID: loading that
 * module cost ~5.5 ms of every daemon start-up (docs/performance.md, "Sixth round"); unguessable
 * is all that is needed, since the input is the daemon's own state file or a request of a client
 * that could ask for any routes anyway. (V8 seeds Math.random from the OS at start.)
 */
function freshMark(): string {
  return `mark-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`;
}

/**
 * The array from just after its `[` to its `]` (`end`: the index after it). Consecutive
 * routes mostly repeat their source, iif and oif list: the bytes are compared with the route
 * before and its strings and list reused, so a repeated one costs no allocation and no check.
 */
class RouteScanner {
  end = 0;
  /** No value read differs from its bytes (an IPv6 address is kept in its canonical form). */
  verbatim = true;
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
    // A client's IPv6 route takes TTL 1 only (protocol/schema.ts toRoute).
    if (familyOf(group) === 6 && oifs.some((o) => o.ttl !== 1)) return undefined;
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
    const text = this.bytes.toString("latin1", from, close);
    const value = check(text);
    if (value === undefined) return undefined;
    if (value !== text) this.verbatim = false;
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
    const text = this.bytes.toString("latin1", from, close);
    const value = check(text);
    if (value !== undefined && value !== text) this.verbatim = false;
    return value;
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
  if (s.length > MAX_ADDRESS) return undefined;
  try {
    return check(s);
  } catch {
    return undefined;
  }
}
const checkSourceText = (s: string): string | undefined => checked(checkSource, s);
const checkGroupText = (s: string): string | undefined => checked(checkRouteGroup, s);
const checkIfName = (s: string): string | undefined => (ifNameProblem(s) === undefined ? s : undefined);
