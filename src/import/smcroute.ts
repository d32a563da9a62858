/**
 * smcroute.conf -> the document `mfc apply` takes (SPEC §7 "Import"). Pure: text in, the document
 * and per-line problems out; the CLI (`mfc import smcroute FILE`) reads the file and prints.
 *
 * The grammar is the one smcrouted's parser reads (smcroute.conf(5); facts from its conf.c):
 * whitespace-separated words, a word starting with '#' starts a comment, no line continuation,
 * keywords compared by prefix (`groups` is `group`), any order, the last of a repeated keyword
 * wins, unknown words ignored, `to` takes every word after it.
 *
 * What smcrouted does that mfc cannot (interface wildcards, mrdisc, include, two (*,G) rules for
 * one group from different inputs, large ranges, IPv6 ranges) is left out and reported as an error
 * of its line; what mfc expresses in another way (ranges expanded, duplicates merged) is a note.
 * IPv6 lines with single addresses are imported like IPv4 ones (SPEC §7: one model for both).
 */
import { ifNameProblem } from "../model/ifname.js";
import { checkGroup, checkSource, formatIpv4, parseIpv4 } from "../model/ipv4.js";
import { checkGroup6, checkSource6, parseIpv6 } from "../model/ipv6.js";

/**
 * A group or source range becomes one exact route (or join) per address: the imported document
 * says exactly what is forwarded. Up to this many per line (a /22 of groups): more is reported,
 * not imported (a group range can be written as a template by hand: `mfc add group G/LEN ...`).
 */
export const MAX_EXPANSION = 1024;
/** The kernel's limit of output interfaces (and VIFs) per table. */
const MAX_OIFS = 32;

export interface ImportedVif { ifname: string; threshold: number }
export interface ImportedRoute { source: string | null; group: string; iif: string; oifs: string[] }
export interface ImportedJoin { ifname: string; group: string; source: string | null }
/** `joins` only when the file joins groups: a daemon without joins refuses the key. */
export interface ApplyDocument { vifs: ImportedVif[]; routes: ImportedRoute[]; joins?: ImportedJoin[] }

/** `error`: (part of) the line is not in the document. `note`: it is, in a form worth knowing. */
export interface ImportProblem { line: number; severity: "error" | "note"; message: string }
export interface ImportResult { document: ApplyDocument; problems: ImportProblem[] }

interface Directive {
  command: "phyint" | "mroute" | "mgroup" | "include";
  ifname?: string; source?: string; group?: string; oifs?: string[];
  enable?: boolean; mrdisc: boolean; ttl?: string;
}

/** One (source, group) of a line, with where it came from. */
interface Candidate {
  route: ImportedRoute; line: number;
  /** An exact (S,G) line: smcrouted installs it at once and it wins over (*,G)/range rules. */
  exact: boolean;
  /** The rule as smcrouted keys it (iif, source/len, group/len): same rule = outputs added together. */
  rule: string;
}

const COMMANDS = ["mgroup", "ssmgroup", "mroute", "phyint", "include"] as const;

/** smcrouted compares a word with a keyword by the keyword's length: `tos` is `to`. */
const is = (word: string, keyword: string): boolean => word.startsWith(keyword);

function parseLine(words: string[], problem: (severity: "error" | "note", message: string) => void): Directive | undefined {
  const first = words[0] as string;
  const command = COMMANDS.find((c) => is(first, c));
  if (command === undefined) { problem("error", `unknown command '${first}' (smcrouted skips it too)`); return undefined; }
  const d: Directive = { command: command === "ssmgroup" ? "mgroup" : command, mrdisc: false };
  const seen = new Set<string>();
  const once = (keyword: string): void => {
    if (seen.has(keyword)) problem("note", `'${keyword}' given twice: the last one counts, as in smcrouted`);
    seen.add(keyword);
  };
  let i = 1;
  if (d.command === "phyint" || d.command === "include") {
    d.ifname = words[i++];
    if (d.command === "include") return d;
  }
  for (; i < words.length; i++) {
    const w = words[i] as string;
    if (is(w, "from")) { once("from"); d.ifname = words[++i]; }
    else if (is(w, "source")) { once("source"); d.source = words[++i]; }
    else if (is(w, "group")) { once("group"); d.group = words[++i]; }
    else if (is(w, "to")) { d.oifs = words.slice(i + 1); break; }
    else if (is(w, "enable")) d.enable = true;
    else if (is(w, "disable")) d.enable = false;
    else if (is(w, "mrdisc")) d.mrdisc = true;
    else if (is(w, "ttl-threshold")) { once("ttl-threshold"); d.ttl = words[++i]; }
    else problem("note", `unknown word '${w}' ignored (smcrouted ignores it too)`);
  }
  return d;
}

interface Prefix { base: number; len: number; text: string }

/** ADDR[/LEN] as smcrouted reads it (LEN 0 or none: one address), or why mfc cannot take it. */
function parsePrefix(text: string, what: string): Prefix | string {
  const slash = text.indexOf("/");
  const addr = slash < 0 ? text : text.slice(0, slash);
  const lenText = slash < 0 ? "0" : text.slice(slash + 1);
  const n = parseIpv4(addr);
  if (n === undefined) return `${what} '${text}' is not an IPv4 address`;
  if (!/^\d{1,2}$/.test(lenText) || Number(lenText) > 32) return `${what} '${text}': the prefix length must be 0-32`;
  const len = Number(lenText) === 0 ? 32 : Number(lenText);
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return { base: (n & mask) >>> 0, len, text };
}

const rangeText = (p: Prefix): string => `${formatIpv4(p.base)}/${p.len}`;

/** Whether check() accepts `text` (model/ipv4.ts: the daemon's own rules). */
function accepted(check: (text: string) => string, text: string): boolean {
  try { check(text); return true; } catch { return false; }
}

/**
 * The (source, group) pairs of `[source S[/LEN]] group G[/LEN]`, expanded (`what`: routes or joins),
 * or the reason they cannot be imported. `exact`: one source and one group, no range (smcrouted
 * installs such an mroute at once; the rest are rules it matches new flows against).
 */
function expand(source: string | undefined, group: string, what: string, note: (m: string) => void): { pairs: [string | null, string][]; exact: boolean } | string {
  if (group.includes(":") || source?.includes(":") === true) return expand6(source, group);
  const g = parsePrefix(group, "group");
  if (typeof g === "string") return g;
  if (g.len < 4 || g.base >>> 28 !== 0xe) return `group '${group}' is not a multicast ${g.len < 32 ? "range (inside 224.0.0.0/4)" : "address"}`;
  let s: Prefix | undefined;
  if (source !== undefined) {
    const p = parsePrefix(source, "source");
    if (typeof p === "string") return p;
    // 0.0.0.0 (with any length) is smcroute's any-source.
    if (p.base !== 0) s = p;
  }
  for (const p of [g, s]) {
    if (p === undefined) continue;
    if (/\/0+$/.test(p.text)) note(`'${p.text}' is the single address ${formatIpv4(p.base)} (to smcrouted, length 0 means no range)`);
    else if (p.len < 32 && !p.text.startsWith(`${rangeText(p)}`)) note(`'${p.text}' is the range ${rangeText(p)} (the host bits are ignored, as by smcrouted)`);
  }
  const groupCount = 2 ** (32 - g.len);
  const sourceCount = s === undefined ? 1 : 2 ** (32 - s.len);
  if (groupCount * sourceCount > MAX_EXPANSION) {
    return `${groupCount * sourceCount} ${what}: ranges are expanded into one exact entry per address, at most ${MAX_EXPANSION} per line` +
      "; split the range, list the groups that are used, or add a template by hand (mfc add group G/LEN iif ... oif ...)";
  }
  const groups: string[] = [];
  for (let i = 0; i < groupCount; i++) groups.push(formatIpv4(g.base + i));
  const forwarded = groups.filter((x) => accepted(checkGroup, x));
  if (forwarded.length === 0) {
    return `group '${group}' is link-local (224.0.0.0/24): the kernel never forwards it and mfc refuses it`;
  }
  if (forwarded.length < groups.length) note(`the ${groups.length - forwarded.length} link-local groups of ${rangeText(g)} (224.0.0.0/24, never forwarded) left out`);
  let sources: (string | null)[] = [null];
  if (s !== undefined) {
    const all: string[] = [];
    for (let i = 0; i < sourceCount; i++) all.push(formatIpv4(s.base + i));
    sources = all.filter((x) => accepted(checkSource, x));
    if (sources.length === 0) return `source '${s.text}' is not a unicast host address (mfc refuses loopback, multicast and reserved sources)`;
    if (sources.length < all.length) note(`the ${all.length - sources.length} addresses of ${rangeText(s)} that are not unicast host addresses left out`);
  }
  const pairs: [string | null, string][] = [];
  for (const src of sources) for (const grp of forwarded) pairs.push([src, grp]);
  const ranges = [g.len < 32 ? `group range ${rangeText(g)}` : "", s !== undefined && s.len < 32 ? `source range ${rangeText(s)}` : ""].filter((r) => r !== "");
  if (ranges.length > 0) note(`${ranges.join(" and ")} expanded into ${pairs.length} exact ${what}`);
  return { pairs, exact: g.len === 32 && s?.len === 32 };
}

/**
 * An IPv6 line: single addresses only (no length, /0 or /128, as smcrouted reads them); `::` is
 * smcroute's any-source. A range is not expanded (2^(128-LEN) groups): mfc takes it as a template.
 */
function expand6(source: string | undefined, group: string): { pairs: [string | null, string][]; exact: boolean } | string {
  const single = (text: string, what: string): string => {
    const [addr = "", len] = text.split("/");
    if (!addr.includes(":")) throw new Error(`${what} '${text}' is IPv4 and the other address of the line IPv6: one family per line`);
    if (parseIpv6(addr) === undefined) throw new Error(`${what} '${text}' is not an IPv6 address`);
    if (len !== undefined && len !== "0" && len !== "128") {
      throw new Error(`${what} '${text}' is an IPv6 range: mfc does not expand it; add a template by hand (mfc add group ${text} iif ... oif ...)`);
    }
    return addr;
  };
  try {
    const g = checkGroup6(single(group, "group"));
    const s = source === undefined ? "::" : single(source, "source");
    const src = parseIpv6(s)?.every((b) => b === 0) === true ? null : checkSource6(s);
    return { pairs: [[src, g]], exact: src !== null };
  } catch (err) {
    return (err as Error).message.replace(/^Validation failed: /, "");
  }
}

/** Why an interface name (IIF or OIF) cannot be imported, if it cannot. */
function ifnameProblem(name: string, role: string): string | undefined {
  if (name.endsWith("+")) return `${role} '${name}' is an interface wildcard: mfc names each interface (list them)`;
  const p = ifNameProblem(name);
  return p === undefined ? undefined : `${role} '${name}' ${p}`;
}

const sgKey = (r: { source: string | null; group: string }): string => `${r.source ?? "*"},${r.group}`;
const sgText = (r: { source: string | null; group: string }): string => `(${r.source ?? "*"}, ${r.group})`;

export function importSmcroute(text: string): ImportResult {
  const problems: ImportProblem[] = [];
  const candidates: Candidate[] = [];
  const vifs = new Map<string, ImportedVif & { line: number }>();
  const joins = new Map<string, ImportedJoin & { line: number }>();
  /** The first line that sends out of an interface: a later ttl-threshold does not apply to it in smcrouted. */
  const firstOut = new Map<string, number>();
  let joinLines = 0;

  text.split("\n").forEach((raw, index) => {
    const line = index + 1;
    const problem = (severity: "error" | "note", message: string): void => { problems.push({ line, severity, message }); };
    const words = raw.split(/[ \t\r\v\f]+/).filter((w) => w !== "");
    const comment = words.findIndex((w) => w.startsWith("#"));
    if (comment >= 0) words.length = comment;
    if (words.length === 0) return;
    const d = parseLine(words, problem);
    if (d === undefined) return;

    if (d.command === "include") {
      problem("error", `include ${d.ifname ?? ""}: not followed; to import those files too, give them together: cat THIS_FILE ${d.ifname ?? "FILES"} | mfc import smcroute -`);
      return;
    }
    if (d.ifname === undefined) { problem("error", `${d.command} without an interface ('${d.command === "phyint" ? "phyint IF" : "from IF"}')`); return; }

    if (d.command === "phyint") {
      const wild = ifnameProblem(d.ifname, "phyint");
      if (d.mrdisc) problem("error", "mrdisc: mfc sends no multicast router discovery (RFC 4286) announcements");
      let threshold = 1;
      if (d.ttl !== undefined) {
        if (/^\d+$/.test(d.ttl) && Number(d.ttl) >= 1 && Number(d.ttl) <= 255) threshold = Number(d.ttl);
        else problem("error", `ttl-threshold '${d.ttl}' is not 1-255 (smcrouted ignores it too)`);
      }
      // enable is the default (smcrouted without -N); disable, or no threshold: no VIF to pin.
      const pin = d.enable !== false && threshold > 1;
      if (wild !== undefined) { if (pin) problem("error", `${wild}; its ttl-threshold ${threshold} is not imported`); return; }
      if (vifs.has(d.ifname)) problem("note", `phyint ${d.ifname} again (line ${vifs.get(d.ifname)?.line ?? 0}): this line counts`);
      vifs.delete(d.ifname);
      if (!pin) return;
      vifs.set(d.ifname, { ifname: d.ifname, threshold, line });
      const used = firstOut.get(d.ifname);
      if (used !== undefined) {
        problem("note", `ttl-threshold ${threshold} comes after line ${used} sends out of ${d.ifname}: smcrouted applies it only to later ` +
          `mroute lines, mfc to every route out of ${d.ifname}`);
      }
      return;
    }

    const iifProblem = ifnameProblem(d.ifname, "from");
    if (iifProblem !== undefined) { problem("error", iifProblem); return; }
    if (d.group === undefined) { problem("error", `${d.command} without 'group GROUP'`); return; }
    const notes: string[] = [];
    const expanded = expand(d.source, d.group, d.command === "mgroup" ? "joins" : "routes", (m) => notes.push(m));
    if (typeof expanded === "string") { problem("error", expanded); return; }

    if (d.command === "mgroup") {
      joinLines++;
      let dup = 0;
      for (const [source, group] of expanded.pairs) {
        const join = { ifname: d.ifname, group, source };
        const key = `${d.ifname}|${sgKey(join)}`;
        if (joins.has(key)) dup++;
        else joins.set(key, { ...join, line });
      }
      for (const n of notes) problem("note", n);
      if (dup > 0) problem("note", `${dup} of its joins ${dup === 1 ? "is" : "are"} already made by an earlier line`);
      return;
    }

    // mroute
    if (d.oifs === undefined || d.oifs.length === 0) {
      problem("error", "mroute without output interfaces ('to OIF ...'): nothing is forwarded, and an mfc route needs at least one");
      return;
    }
    for (const oif of d.oifs) {
      const p = ifnameProblem(oif, "to");
      if (p !== undefined) { problem("error", p); return; }
    }
    let oifs = [...new Set(d.oifs)];
    if (oifs.includes(d.ifname)) {
      oifs = oifs.filter((o) => o !== d.ifname);
      if (oifs.length === 0) { problem("error", `the only output interface is the input interface ${d.ifname}: mfc refuses routes that send back out of their input`); return; }
      problem("error", `${d.ifname} is the input and an output interface: mfc refuses that (a loop); imported without output ${d.ifname}`);
    }
    if (oifs.length > MAX_OIFS) { problem("error", `${oifs.length} output interfaces: the kernel takes at most ${MAX_OIFS}`); return; }
    for (const n of notes) problem("note", n);
    for (const o of oifs) if (!firstOut.has(o)) firstOut.set(o, line);
    const rule = `${d.ifname} ${d.source ?? "*"} ${d.group}`;
    for (const [source, group] of expanded.pairs) candidates.push({ route: { source, group, iif: d.ifname, oifs }, line, exact: expanded.exact, rule });
  });

  const routes = resolveRoutes(candidates, problems);
  const document: ApplyDocument = {
    vifs: [...vifs.values()].map(({ ifname, threshold }) => ({ ifname, threshold })),
    routes,
  };
  if (joinLines > 0) document.joins = [...joins.values()].map(({ ifname, group, source }) => ({ ifname, group, source }));
  problems.sort((a, b) => a.line - b.line);
  return { document, problems };
}

/**
 * One route per (source, group), as mfc keys them, chosen as smcrouted would forward:
 * - exact (S,G) lines are installed at once and win over (*,G) and range rules for that flow;
 *   a later exact line for the same flow from another input replaces it (the kernel keeps one);
 * - the same rule twice adds the output interfaces together;
 * - of two (*,G)/range rules from one input, smcrouted uses the first for a new flow;
 * - (*,G)/range rules for one flow from two inputs both work in smcrouted: mfc keeps the first.
 */
function resolveRoutes(candidates: Candidate[], problems: ImportProblem[]): ImportedRoute[] {
  const chosen = new Map<string, Candidate>();
  // Per line and message: how many routes it concerns, reported once per line.
  const tally = new Map<string, { line: number; severity: "error" | "note"; count: number; message: (n: number) => string }>();
  const report = (c: Candidate, severity: "error" | "note", id: string, message: (n: number) => string): void => {
    const key = `${c.line} ${id}`;
    const t = tally.get(key);
    if (t) t.count++;
    else tally.set(key, { line: c.line, severity, count: 1, message });
  };
  const entries = (n: number, sg: string): string => (n === 1 ? sg : `${n} of its routes`);

  const merge = (into: Candidate, c: Candidate): void => {
    into.route = { ...into.route, oifs: [...new Set([...into.route.oifs, ...c.route.oifs])] };
    report(c, "note", `merge ${into.line}`, () => `same rule as line ${into.line}: the output interfaces are added together, as smcrouted does`);
  };

  for (const c of candidates.filter((x) => x.exact)) {
    const key = sgKey(c.route);
    const earlier = chosen.get(key);
    if (earlier && earlier.route.iif === c.route.iif) { merge(earlier, c); continue; }
    if (earlier) {
      report(c, "note", `replace ${earlier.line}`, () => `replaces line ${earlier.line}'s ${sgText(c.route)} from ${earlier.route.iif}: ` +
        "the kernel keeps one route per (source, group), and smcrouted installs the last one too");
    }
    chosen.set(key, c);
  }
  for (const c of candidates.filter((x) => !x.exact)) {
    const key = sgKey(c.route);
    const earlier = chosen.get(key);
    if (earlier === undefined) { chosen.set(key, c); continue; }
    const sg = sgText(c.route);
    if (earlier.exact) {
      report(c, "note", `exact ${earlier.line}`, (n) => `${entries(n, sg)}: line ${earlier.line} routes that flow exactly, which wins in smcrouted too`);
    } else if (earlier.rule === c.rule) {
      merge(earlier, c);
    } else if (earlier.route.iif === c.route.iif) {
      report(c, "note", `first ${earlier.line}`, (n) => `${entries(n, sg)}: line ${earlier.line} matches first, and smcrouted uses the first matching rule`);
    } else {
      report(c, "error", `iif ${earlier.line}`, (n) => `${entries(n, sg)} not imported: line ${earlier.line} routes it from ${earlier.route.iif}, ` +
        `and mfc keeps one input interface per (source, group) (smcrouted takes it from ${earlier.route.iif} and ${c.route.iif})`);
    }
  }
  for (const t of tally.values()) problems.push({ line: t.line, severity: t.severity, message: t.message(t.count) });
  return [...chosen.values()].sort((a, b) => a.line - b.line).map((c) => c.route);
}

/** The document as `mfc import` prints it: valid JSON, one VIF, route or join per line (easy to review and diff). */
export function formatDocument(doc: ApplyDocument): string {
  const list = (items: unknown[]): string => (items.length === 0 ? "[]" : `[\n${items.map((x) => `    ${JSON.stringify(x)}`).join(",\n")}\n  ]`);
  const parts = [`  "vifs": ${list(doc.vifs)}`, `  "routes": ${list(doc.routes)}`];
  if (doc.joins !== undefined) parts.push(`  "joins": ${list(doc.joins)}`);
  return `{\n${parts.join(",\n")}\n}\n`;
}
