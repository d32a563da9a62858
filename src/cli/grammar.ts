/**
 * The CLI grammar of SPEC §4 as one table: the parser and `mfc help` both read it, so help cannot
 * drift from behaviour. Pure: words in, a request (or a UsageError) out.
 */
import { READ_ACTIONS, type Action, type Response } from "../protocol/messages.js";

export class UsageError extends Error {
  constructor(message: string, readonly synopsis?: string) {
    super(message);
  }
}

export interface ParsedCommand {
  /** IMPORT: done by the CLI alone (`mfc import`), no request is sent. */
  action: Action | "IMPORT";
  payload: Record<string, unknown>;
  /** batch/apply read a file (or "-" for stdin) before the request can be built; import reads one. */
  file?: { kind: "batch" | "apply" | "import"; path: string };
  /** `show stats`: the SHOW answer summarised (view/model.ts summarizeShow) instead of listed. */
  summary?: true;
}

interface CommandSpec {
  words: string[];
  synopsis: string;
  summary: string;
  parse(args: string[]): ParsedCommand;
}

const ROUTE_SYNOPSIS = "[source|from S] group|to G iif IF oif IF [ttl N] [IF [ttl N]...]";

function takeValue(args: string[], i: number, keyword: string): string {
  const v = args[i + 1];
  if (v === undefined) throw new UsageError(`'${keyword}' needs a value`);
  return v;
}

/** A TTL or threshold: 1-255, as the daemon (and the kernel's u8) takes it. */
function takeTtl(args: string[], i: number, keyword: string): number {
  const n = takeValue(args, i, keyword);
  if (!/^\d+$/.test(n) || Number(n) < 1 || Number(n) > 255) throw new UsageError(`'${keyword}' must be a number 1-255, got '${n}'`);
  return Number(n);
}

/**
 * Each keyword once: a second `to` (or `group` after `to`: synonyms are one keyword) would silently
 * win over the first, so it is a usage error naming both.
 */
class Seen {
  private readonly first = new Map<string, string>();
  once(keyword: string, word: string, value?: string): void {
    const earlier = this.first.get(keyword);
    const here = value === undefined ? word : `${word} ${value}`;
    if (earlier !== undefined) throw new UsageError(`'${word}' given twice ('${earlier}', then '${here}'): give each keyword once`);
    this.first.set(keyword, here);
  }
}

function parseRouteKey(args: string[], allowMore: boolean): { key: { source: string | null; group?: string }; rest: string[] } {
  const key: { source: string | null; group?: string } = { source: null };
  const seen = new Seen();
  let i = 0;
  const rest: string[] = [];
  while (i < args.length) {
    const w = args[i] as string;
    if (w === "source" || w === "from") { const s = takeValue(args, i, w); seen.once("source", w, s); key.source = s === "*" ? null : s; i += 2; }
    else if (w === "group" || w === "to") { key.group = takeValue(args, i, w); seen.once("group", w, key.group); i += 2; }
    else if (allowMore) { rest.push(...args.slice(i)); break; }
    else throw new UsageError(`unexpected word '${w}'`);
  }
  return { key, rest };
}

function parseRoute(action: "ADD_MFC" | "REPLACE_MFC", args: string[]): ParsedCommand {
  const payload: Record<string, unknown> = { source: null };
  const oifs: (string | { ifname: string; ttl: number })[] = [];
  const seen = new Seen();
  let mode: "none" | "oif" = "none";
  for (let i = 0; i < args.length; i++) {
    const w = args[i] as string;
    if (w === "source" || w === "from") { const s = takeValue(args, i++, w); seen.once("source", w, s); payload.source = s === "*" ? null : s; mode = "none"; }
    else if (w === "group" || w === "to") { payload.group = takeValue(args, i++, w); seen.once("group", w, payload.group as string); mode = "none"; }
    else if (w === "iif") { payload.iif = takeValue(args, i++, w); seen.once("iif", w, payload.iif as string); mode = "none"; }
    else if (w === "oif") { seen.once("oif", w); mode = "oif"; }
    else if (w === "ttl" && mode === "oif" && oifs.length > 0) {
      const last = oifs.pop() as string | { ifname: string; ttl: number };
      if (typeof last !== "string") throw new UsageError(`'ttl' given twice for ${last.ifname} ('ttl ${last.ttl}', then 'ttl ${args[i + 1] ?? ""}'): give each keyword once`);
      oifs.push({ ifname: last, ttl: takeTtl(args, i++, w) });
    } else if (w === "ttl" && mode === "oif") throw new UsageError("'ttl N' must follow an interface name after 'oif'");
    // After `oif` every other word is an interface name: `help` too (only the keywords above are reserved).
    else if (mode === "oif") oifs.push(w);
    else throw new UsageError(`unexpected word '${w}'`);
  }
  if (payload.group === undefined) throw new UsageError("missing 'group G'");
  if (payload.iif === undefined) throw new UsageError("missing 'iif IF'");
  if (oifs.length === 0) throw new UsageError("missing 'oif IF [IF...]'");
  payload.oifs = oifs;
  return { action, payload };
}

function noArgs(args: string[]): void {
  if (args.length > 0) throw new UsageError(`unexpected word '${args[0]}'`);
}

function fileArg(kind: "batch" | "apply" | "import", args: string[]): ParsedCommand {
  if (args.length !== 1) throw new UsageError(args.length === 0 ? "missing FILE (or - for stdin)" : `unexpected word '${args[1]}'`);
  const action = kind === "batch" ? "BATCH" : kind === "apply" ? "APPLY" : "IMPORT";
  return { action, payload: {}, file: { kind, path: args[0] as string } };
}

/** `join`/`leave dev IF group G [source S]` (SPEC §7); source `*` or none: any source. */
function parseJoin(action: "JOIN" | "LEAVE", args: string[]): ParsedCommand {
  const payload: Record<string, unknown> = { source: null };
  const seen = new Seen();
  for (let i = 0; i < args.length; i++) {
    const w = args[i] as string;
    if (w === "dev") { payload.ifname = takeValue(args, i++, w); seen.once("dev", w, payload.ifname as string); }
    else if (w === "group") { payload.group = takeValue(args, i++, w); seen.once("group", w, payload.group as string); }
    else if (w === "source") { const s = takeValue(args, i++, w); seen.once("source", w, s); payload.source = s === "*" ? null : s; }
    else throw new UsageError(`unexpected word '${w}'`);
  }
  if (payload.ifname === undefined) throw new UsageError("missing 'dev IF'");
  if (payload.group === undefined) throw new UsageError("missing 'group G'");
  return { action, payload: { ifname: payload.ifname, group: payload.group, source: payload.source } };
}

function vifDev(args: string[], allowThreshold: boolean): Record<string, unknown> {
  const payload: Record<string, unknown> = {};
  const seen = new Seen();
  for (let i = 0; i < args.length; i++) {
    const w = args[i] as string;
    if (w === "dev") { payload.ifname = takeValue(args, i++, w); seen.once("dev", w, payload.ifname as string); }
    else if (w === "threshold" && allowThreshold) { payload.threshold = takeTtl(args, i++, w); seen.once("threshold", w, String(payload.threshold)); }
    else throw new UsageError(`unexpected word '${w}'`);
  }
  if (payload.ifname === undefined) throw new UsageError("missing 'dev IF'");
  return payload;
}

export const COMMANDS: CommandSpec[] = [
  { words: ["add"], synopsis: `add ${ROUTE_SYNOPSIS}`, summary: "add a route (error if it exists)", parse: (a) => parseRoute("ADD_MFC", a) },
  { words: ["replace"], synopsis: `replace ${ROUTE_SYNOPSIS}`, summary: "add a route or replace the existing one", parse: (a) => parseRoute("REPLACE_MFC", a) },
  {
    words: ["del"], synopsis: "del [source|from S] group|to G", summary: "delete a route",
    parse: (a) => {
      const { key } = parseRouteKey(a, false);
      if (key.group === undefined) throw new UsageError("missing 'group G'");
      return { action: "DEL_MFC", payload: key };
    },
  },
  {
    words: ["show"], synopsis: "show [routes|vifs|joins|stats]", summary: "show routes, VIFs and joins with counters, or totals (stats)",
    parse: (a) => {
      const known = (w: string | undefined): boolean => w === "routes" || w === "vifs" || w === "joins" || w === "stats";
      if (a.length > 1 || (a[0] !== undefined && !known(a[0]))) throw new UsageError(`unexpected word '${a[known(a[0]) ? 1 : 0]}'`);
      if (a[0] === "stats") return { action: "SHOW", payload: { what: "all" }, summary: true };
      return { action: "SHOW", payload: { what: a[0] ?? "all" } };
    },
  },
  { words: ["vif", "add"], synopsis: "vif add dev IF [threshold N]", summary: "pin a VIF on an interface (-6: a MIF)", parse: (a) => ({ action: "ADD_VIF", payload: vifDev(a, true) }) },
  { words: ["vif", "del"], synopsis: "vif del dev IF", summary: "remove a pinned VIF", parse: (a) => ({ action: "DEL_VIF", payload: vifDev(a, false) }) },
  { words: ["vif", "show"], synopsis: "vif show", summary: "show VIFs with counters", parse: (a) => { noArgs(a); return { action: "SHOW", payload: { what: "vifs" } }; } },
  { words: ["join"], synopsis: "join dev IF group G [source S]", summary: "join a group on an interface (kept like a route)", parse: (a) => parseJoin("JOIN", a) },
  { words: ["leave"], synopsis: "leave dev IF group G [source S]", summary: "leave a group joined with join", parse: (a) => parseJoin("LEAVE", a) },
  { words: ["flush"], synopsis: "flush", summary: "remove every route, VIF and join", parse: (a) => { noArgs(a); return { action: "FLUSH", payload: {} }; } },
  { words: ["batch"], synopsis: "batch FILE|-", summary: "run commands from FILE (one per line) as one transaction", parse: (a) => fileArg("batch", a) },
  { words: ["apply"], synopsis: "apply FILE|-", summary: "make the desired state in FILE (JSON) current, as one transaction", parse: (a) => fileArg("apply", a) },
  {
    words: ["import", "smcroute"], synopsis: "import smcroute FILE|-", summary: "print the apply document of an smcroute.conf (no daemon needed)",
    parse: (a) => fileArg("import", a),
  },
  { words: ["status"], synopsis: "status", summary: "daemon health", parse: (a) => { noArgs(a); return { action: "STATUS", payload: {} }; } },
  {
    words: ["check"], synopsis: "check [[source|from S] group|to G]", summary: "explain why routes may not forward (rp_filter, link state, TTL, VIF limit)",
    parse: (a) => {
      const { key } = parseRouteKey(a, false);
      if (key.group === undefined && a.length > 0) throw new UsageError("missing 'group G'");
      return { action: "CHECK", payload: key.group === undefined ? {} : key };
    },
  },
];

/** Commands whose first argument is a FILE, not a keyword. */
/**
 * `-4` / `-6` (SPEC §7): `show`, `check`, `vif`, `flush` and `apply` act on that family alone (an
 * apply leaves the other family's routes, VIFs and joins as they are); a route or join of the
 * other family is a usage error (its addresses already say its family); `batch` applies this to
 * each of its lines.
 */
export function withFamily(cmd: ParsedCommand, family: 4 | 6 | undefined): ParsedCommand {
  if (family === undefined) return cmd;
  const name = family === 6 ? "IPv6" : "IPv4";
  const check = (p: Record<string, unknown>): void => {
    for (const field of ["group", "source"]) {
      const value = p[field];
      if (typeof value === "string" && value.includes(":") !== (family === 6)) throw new UsageError(`-${family}: ${field} '${value}' is not an ${name} address`);
    }
  };
  switch (cmd.action) {
    case "SHOW": case "CHECK": case "ADD_VIF": case "DEL_VIF": case "FLUSH": case "APPLY":
      check(cmd.payload);
      return { ...cmd, payload: { ...cmd.payload, family } };
    case "BATCH":
      return cmd; // each line, as the file is read (parseBatchFile)
    case "ADD_MFC": case "REPLACE_MFC": case "DEL_MFC": case "JOIN": case "LEAVE":
      check(cmd.payload);
      return cmd;
    default:
      throw new UsageError(`-${family} does not apply to this command (its input names each address, and so its family)`);
  }
}

const FILE_COMMANDS = new Set(COMMANDS.filter((c) => c.synopsis.startsWith(`${c.words.join(" ")} FILE`)));

export const GLOBAL_SYNOPSIS = "GLOBAL: -4|-6  -n|--dry-run  -v|--verbose  -o|--output text|json  -j  -s|--socket PATH  -c|--config PATH  -i|--instance NAME  -h|--help  -V|--version";

/** `mfc help` fits an 80-column terminal. */
export const HELP_WIDTH = 80;
/** Synopses up to this long share their line with the summary; longer ones get lines of their own. */
const SYNOPSIS_COLUMN = 30;

/** `words` joined by `sep` in lines of at most `width` characters (a longer word gets a line alone). */
function wrap(words: string[], width: number, sep = " "): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of words) {
    if (line !== "" && line.length + sep.length + word.length > width) { lines.push(line); line = word; }
    else line = line === "" ? word : `${line}${sep}${word}`;
  }
  if (line !== "") lines.push(line);
  return lines;
}

/** A synopsis's words, split at the spaces outside brackets (`[IF [ttl N]...]` stays whole). */
function synopsisWords(synopsis: string): string[] {
  const words: string[] = [];
  let depth = 0;
  let word = "";
  for (const ch of synopsis) {
    if (ch === " " && depth === 0) { words.push(word); word = ""; continue; }
    if (ch === "[") depth++;
    else if (ch === "]") depth--;
    word += ch;
  }
  return [...words, word];
}

export function helpText(prefix: string[] = []): string {
  const cmds = COMMANDS.filter((c) => prefix.every((w, i) => c.words[i] === w));
  const lines = ["usage: mfc [GLOBAL...] COMMAND", ""];
  const column = " ".repeat(2 + "mfc ".length + SYNOPSIS_COLUMN + 2);
  for (const c of cmds.length ? cmds : COMMANDS) {
    const summary = wrap(c.summary.split(" "), HELP_WIDTH - column.length).map((l) => column + l);
    if (c.synopsis.length <= SYNOPSIS_COLUMN) {
      summary[0] = `  mfc ${c.synopsis}`.padEnd(column.length) + (summary[0] ?? "").trimStart();
    } else {
      // A long synopsis wraps under its first argument; the summary follows on lines of its own.
      const name = `  mfc ${c.words.join(" ")} `;
      const args = wrap(synopsisWords(c.synopsis).slice(c.words.length), HELP_WIDTH - name.length);
      lines.push(...args.map((l, i) => (i === 0 ? name : " ".repeat(name.length)) + l));
    }
    lines.push(...summary);
  }
  const label = "GLOBAL: ";
  const options = wrap(GLOBAL_SYNOPSIS.slice(label.length).split("  "), HELP_WIDTH - label.length, "  ");
  lines.push("", ...options.map((l, i) => (i === 0 ? label : " ".repeat(label.length)) + l));
  return lines.join("\n") + "\n";
}

/** The command `words` start with (its words, then its arguments), if any. */
function findCommand(words: string[]): CommandSpec | undefined {
  return COMMANDS.find((c) => c.words.every((w, i) => words[i] === w));
}

/** The commands of a group (`vif`) when `word` names one. */
function groupOf(word: string | undefined): CommandSpec[] {
  return COMMANDS.filter((c) => c.words.length > 1 && c.words[0] === word);
}

/**
 * The help `topic` asks for; a topic that is not a command is a usage error, as `mfc frob` is.
 * With `args` (from -h/--help) the words after the command are its arguments and ignored.
 */
function helpFor(topic: string[], args: boolean): string {
  if (topic.length === 0) return helpText();
  const spec = findCommand(topic);
  if (spec) {
    const extra = topic[spec.words.length];
    if (!args && extra !== undefined) throw new UsageError(`unexpected word '${extra}' after 'help ${spec.words.join(" ")}'`, helpText(spec.words));
    return helpText(spec.words);
  }
  const head = topic[0] as string;
  if (groupOf(head).length > 0) {
    if (topic.length === 1) return helpText([head]);
    throw new UsageError(`unknown subcommand '${topic[1]}'`, helpText([head]));
  }
  throw new UsageError(`unknown command '${head}'`, helpText());
}

/**
 * The help text when `words` ask for help, else undefined. Help is `-h`/`--help` anywhere
 * (`flag`), `mfc help [COMMAND]`, and `help` right after a command or group name (`mfc add help`,
 * `mfc vif help`), the one place where a keyword, never a value, is expected. Anywhere else `help`
 * is a value: `oif help` names an interface called help, `batch help` reads a file called help.
 * Throws a UsageError for help on something that is not a command (`mfc help frob`).
 */
export function helpRequest(words: string[], flag: boolean): string | undefined {
  if (words[0] === "help") return helpFor(words.slice(1), false);
  if (flag) return helpFor(words, true);
  const spec = findCommand(words);
  if (spec) {
    const first = spec.words.length;
    if (words[first] === "help" && !FILE_COMMANDS.has(spec)) return helpFor([...spec.words, ...words.slice(first + 1)], false);
    return undefined;
  }
  if (groupOf(words[0]).length > 0 && words[1] === "help") return helpFor([words[0] as string, ...words.slice(2)], false);
  return undefined;
}

/**
 * What `-j` prints for the daemon's answer, one rule (README "Output, errors, exit status",
 * mfc(8)): the response as the daemon sent it (`{status, dry_run, changes, result}`, or the error
 * object) for every command except `show` and `vif show`, which print the view `{vifs, routes}`
 * (SPEC §4: the document `apply` takes back). `show stats` prints its totals (main.ts).
 */
export function jsonOutput(cmd: ParsedCommand, res: Response): unknown {
  return res.status === "ok" && cmd.action === "SHOW" ? res.result : res;
}

/** Words (global options already removed) -> command. */
export function parseCommand(words: string[]): ParsedCommand {
  if (words.length === 0) throw new UsageError("missing command", helpText());
  const spec = findCommand(words);
  if (!spec) {
    if (groupOf(words[0]).length > 0) throw new UsageError(words[1] === undefined ? `'${words[0]}' needs a subcommand` : `unknown subcommand '${words[1]}'`, helpText([words[0] as string]));
    throw new UsageError(`unknown command '${words[0]}'`, helpText());
  }
  try {
    return spec.parse(words.slice(spec.words.length));
  } catch (err) {
    if (err instanceof UsageError) throw new UsageError(err.message, `usage: mfc ${spec.synopsis}`);
    throw err;
  }
}

/** A batch file: one command per line, same grammar, '#' comments and blank lines skipped. */
/** `family`: `mfc -4|-6 batch`: each line as withFamily() takes it. */
export function parseBatchFile(text: string, family?: 4 | 6): { operations: { action: Action; payload: Record<string, unknown> }[]; lines: number[] } {
  const operations: { action: Action; payload: Record<string, unknown> }[] = [];
  const lines: number[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/#.*/, "").trim();
    if (line === "") return;
    let cmd: ParsedCommand;
    try {
      cmd = parseCommand(line.split(/\s+/));
      if (!cmd.file && cmd.action !== "IMPORT") cmd = withFamily(cmd, family);
    } catch (err) {
      throw new UsageError(`line ${i + 1}: ${(err as Error).message}`);
    }
    if (cmd.file || cmd.action === "IMPORT" || (READ_ACTIONS as readonly string[]).includes(cmd.action)) throw new UsageError(`line ${i + 1}: '${line.split(/\s+/)[0]}' cannot be used in a batch`);
    operations.push({ action: cmd.action, payload: cmd.payload });
    lines.push(i + 1);
  });
  return { operations, lines };
}
