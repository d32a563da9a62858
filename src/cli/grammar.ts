/**
 * The CLI grammar of SPEC §4 as one table: the parser and `mfc help` both read it, so help cannot
 * drift from behaviour. Pure: words in, a request (or a UsageError) out.
 */
import { READ_ACTIONS, type Action } from "../protocol/messages.js";

export class UsageError extends Error {
  constructor(message: string, readonly synopsis?: string) {
    super(message);
  }
}

export interface ParsedCommand {
  action: Action;
  payload: Record<string, unknown>;
  /** batch/apply read a file (or "-" for stdin) before the request can be built. */
  file?: { kind: "batch" | "apply"; path: string };
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

function parseRouteKey(args: string[], allowMore: boolean): { key: { source: string | null; group?: string }; rest: string[] } {
  const key: { source: string | null; group?: string } = { source: null };
  let i = 0;
  const rest: string[] = [];
  while (i < args.length) {
    const w = args[i] as string;
    if (w === "source" || w === "from") { const s = takeValue(args, i, w); key.source = s === "*" ? null : s; i += 2; }
    else if (w === "group" || w === "to") { key.group = takeValue(args, i, w); i += 2; }
    else if (allowMore) { rest.push(...args.slice(i)); break; }
    else throw new UsageError(`unexpected word '${w}'`);
  }
  return { key, rest };
}

function parseRoute(action: "ADD_MFC" | "REPLACE_MFC", args: string[]): ParsedCommand {
  const payload: Record<string, unknown> = { source: null };
  const oifs: (string | { ifname: string; ttl: number })[] = [];
  let mode: "none" | "oif" = "none";
  for (let i = 0; i < args.length; i++) {
    const w = args[i] as string;
    if (w === "source" || w === "from") { const s = takeValue(args, i++, w); payload.source = s === "*" ? null : s; mode = "none"; }
    else if (w === "group" || w === "to") { payload.group = takeValue(args, i++, w); mode = "none"; }
    else if (w === "iif") { payload.iif = takeValue(args, i++, w); mode = "none"; }
    else if (w === "oif") { mode = "oif"; }
    else if (w === "ttl" && mode === "oif" && oifs.length > 0) {
      const n = takeValue(args, i++, w);
      if (!/^\d+$/.test(n)) throw new UsageError(`'ttl' needs a number, got '${n}'`);
      const last = oifs.pop() as string | { ifname: string };
      oifs.push({ ifname: typeof last === "string" ? last : last.ifname, ttl: Number(n) });
    } else if (w === "ttl" && mode === "oif") throw new UsageError("'ttl N' must follow an interface name after 'oif'");
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

function fileArg(kind: "batch" | "apply", args: string[]): ParsedCommand {
  if (args.length !== 1) throw new UsageError(args.length === 0 ? "missing FILE (or - for stdin)" : `unexpected word '${args[1]}'`);
  return { action: kind === "batch" ? "BATCH" : "APPLY", payload: {}, file: { kind, path: args[0] as string } };
}

function vifDev(args: string[], allowThreshold: boolean): Record<string, unknown> {
  const payload: Record<string, unknown> = {};
  for (let i = 0; i < args.length; i++) {
    const w = args[i] as string;
    if (w === "dev") payload.ifname = takeValue(args, i++, w);
    else if (w === "threshold" && allowThreshold) {
      const n = takeValue(args, i++, w);
      if (!/^\d+$/.test(n)) throw new UsageError(`'threshold' needs a number, got '${n}'`);
      payload.threshold = Number(n);
    } else throw new UsageError(`unexpected word '${w}'`);
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
    words: ["show"], synopsis: "show [routes|vifs|stats]", summary: "show routes and VIFs with counters, or totals (stats)",
    parse: (a) => {
      const known = (w: string | undefined): boolean => w === "routes" || w === "vifs" || w === "stats";
      if (a.length > 1 || (a[0] !== undefined && !known(a[0]))) throw new UsageError(`unexpected word '${a[known(a[0]) ? 1 : 0]}'`);
      if (a[0] === "stats") return { action: "SHOW", payload: { what: "all" }, summary: true };
      return { action: "SHOW", payload: { what: a[0] ?? "all" } };
    },
  },
  { words: ["vif", "add"], synopsis: "vif add dev IF [threshold N]", summary: "pin a VIF on an interface", parse: (a) => ({ action: "ADD_VIF", payload: vifDev(a, true) }) },
  { words: ["vif", "del"], synopsis: "vif del dev IF", summary: "remove a pinned VIF", parse: (a) => ({ action: "DEL_VIF", payload: vifDev(a, false) }) },
  { words: ["vif", "show"], synopsis: "vif show", summary: "show VIFs with counters", parse: (a) => { noArgs(a); return { action: "SHOW", payload: { what: "vifs" } }; } },
  { words: ["flush"], synopsis: "flush", summary: "remove every route and VIF", parse: (a) => { noArgs(a); return { action: "FLUSH", payload: {} }; } },
  { words: ["batch"], synopsis: "batch FILE|-", summary: "run commands from FILE (one per line) as one transaction", parse: (a) => fileArg("batch", a) },
  { words: ["apply"], synopsis: "apply FILE|-", summary: "make the desired state in FILE (JSON) current, as one transaction", parse: (a) => fileArg("apply", a) },
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

export const GLOBAL_SYNOPSIS = "GLOBAL: -n|--dry-run  -v|--verbose  -o|--output text|json  -j  -s|--socket PATH  -c|--config PATH  -h|--help  -V|--version";

export function helpText(prefix: string[] = []): string {
  const cmds = COMMANDS.filter((c) => prefix.every((w, i) => c.words[i] === w));
  const lines = ["usage: mfc [GLOBAL...] COMMAND", ""];
  for (const c of cmds.length ? cmds : COMMANDS) lines.push(`  mfc ${c.synopsis.padEnd(64)} ${c.summary}`);
  lines.push("", GLOBAL_SYNOPSIS);
  return lines.join("\n") + "\n";
}

/** Words (global options already removed) -> command. */
export function parseCommand(words: string[]): ParsedCommand {
  if (words.length === 0) throw new UsageError("missing command", helpText());
  const spec = COMMANDS.find((c) => c.words.every((w, i) => words[i] === w));
  if (!spec) {
    const group = COMMANDS.filter((c) => c.words.length > 1 && c.words[0] === words[0]);
    if (group.length > 0) throw new UsageError(words[1] === undefined ? `'${words[0]}' needs a subcommand` : `unknown subcommand '${words[1]}'`, helpText([words[0] as string]));
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
export function parseBatchFile(text: string): { operations: { action: Action; payload: Record<string, unknown> }[]; lines: number[] } {
  const operations: { action: Action; payload: Record<string, unknown> }[] = [];
  const lines: number[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/#.*/, "").trim();
    if (line === "") return;
    let cmd: ParsedCommand;
    try {
      cmd = parseCommand(line.split(/\s+/));
    } catch (err) {
      throw new UsageError(`line ${i + 1}: ${(err as Error).message}`);
    }
    if (cmd.file || (READ_ACTIONS as readonly string[]).includes(cmd.action)) throw new UsageError(`line ${i + 1}: '${line.split(/\s+/)[0]}' cannot be used in a batch`);
    operations.push({ action: cmd.action, payload: cmd.payload });
    lines.push(i + 1);
  });
  return { operations, lines };
}
