#!/usr/bin/env node
/** mfc: the operator's CLI. Exit 0 ok, 1 daemon refused/failed, 2 usage error, 3 daemon unreachable. */
// Start-up is most of what a single `mfc add` costs (docs/performance.md, "The CLI's start-up"):
// this file and what it imports statically are only what every command needs; printing answers,
// error codes and the config file reader are loaded on first use (lazy.ts). Nothing here does work
// at module load.
import { isUtf8 } from "node:buffer";
import { existsSync, fstatSync, readFileSync } from "node:fs";
import type { Response } from "../protocol/messages.js";
import type { ApplySummaryView, FindingView } from "../view/render.js";
import { VERSION } from "../version.js";
import type { StreamedLine } from "./client.js";
import { JsonLineCheck, toJsonLine } from "./json_line.js";
import { UsageError, helpRequest, jsonOutput, parseBatchFile, parseCommand, withFamily, type ParsedCommand } from "./grammar.js";
import { parseGlobals, type Globals } from "./globals.js";
import { loadConfigFile, loadImporter, loadOutput } from "./lazy.js";
import type { AnswerHandling, Output } from "./pass_result.js";

const EXIT = { ok: 0, refused: 1, usage: 2, unreachable: 3 } as const;

function readInputBytes(path: string): Buffer {
  return readFileSync(path === "-" ? 0 : path);
}

const readInput = (path: string): string => readInputBytes(path).toString("utf8");

/**
 * --socket, else socket_path of --config (or of the default config file if it exists). With
 * --instance: of that instance's config (which must exist: its daemon cannot start without it),
 * or of --config, where keys left out take the instance's defaults, as in the daemon.
 */
async function socketPath(g: Globals): Promise<string> {
  if (g.socket) return g.socket;
  const { DEFAULTS, DEFAULT_CONFIG_PATH, instancePaths, loadConfig } = await loadConfigFile();
  if (g.instance !== undefined) return loadConfig(g.config ?? instancePaths(g.instance).config, g.instance).socketPath;
  const config = g.config ?? DEFAULT_CONFIG_PATH;
  if (g.config || existsSync(config)) return loadConfig(config).socketPath;
  return DEFAULTS.socketPath;
}

/** What goes to the daemon: the NDJSON line (no newline), and the request it carries. */
interface Built {
  /** The request line without its newline: a string, the pieces of a big one, sent in order, or pieces checked as they are sent. */
  line: string | readonly Uint8Array[] | StreamedLine;
  /** A file checked as it is sent (`line` streamed): the rest of the check now, throwing its UsageError. */
  verify?: () => void;
  action: string;
  /** The request as an object (for -v); an apply's file is parsed only when this is called. */
  request(): Record<string, unknown>;
  /** Entries the request holds, for the progress line: 0 where none is shown (see startProgress). */
  count(): number;
  batchLines?: number[];
  /**
   * The line without `"changes": false`, where it has that field: a daemon from before the field
   * refuses it (E_INVALID_ARGUMENT on `request.changes`), as one not yet restarted after an
   * upgrade does; the CLI then asks again with this line.
   */
  legacyLine?: () => string | readonly Uint8Array[];
}

/** Fewer bytes than 1000 routes take (the smallest: `{"group":"ff3e::","iif":"a"},`, 30 bytes). */
const BYTES_OF_1000_ROUTES = 29_000;

function buildRequest(cmd: ParsedCommand, g: Globals): Built {
  if (cmd.file?.kind === "apply") return buildApply(cmd.file.path, cmd, g);
  let payload = cmd.payload;
  let batchLines: number[] | undefined;
  if (cmd.file?.kind === "batch") {
    const parsed = parseBatchFile(readInput(cmd.file.path), g.family);
    payload = { operations: parsed.operations };
    batchLines = parsed.lines;
  }
  const legacy = { action: cmd.action, dry_run: g.dryRun, payload };
  const skip = !readsChanges(cmd, g);
  const request = skip ? { ...legacy, changes: false } : legacy;
  const count = (payload as { operations?: unknown[] }).operations?.length ?? 0;
  return {
    line: JSON.stringify(request), action: cmd.action, request: () => request, count: () => count, batchLines,
    ...(skip ? { legacyLine: () => JSON.stringify(legacy) } : {}),
  };
}

/** From this size on, `mfc apply` sends the part of the file already checked while it checks the rest. */
const STREAM_FROM = 1024 * 1024;
/** Bytes checked (whole values) between two turns of the event loop, in which the socket takes what was written. */
const CHECK_STEP = 512 * 1024;

/**
 * `mfc apply FILE`: the file's own bytes go on the wire, checked to be JSON without parsing them
 * (json_line.ts; 100 000 routes: ~300 ms less than decoding, parsing and re-serialising them). A
 * large file is checked as it is sent: the daemon receives the part checked while the CLI checks
 * the rest (a 9 MB file: ~40 ms of checking that no longer precede the daemon's receipt), and the
 * newline that makes it a request goes only once all of it is JSON; a file that is not is still a
 * usage error, and the daemon saw no request (docs/performance.md, "Sixth round").
 */
function buildApply(path: string, cmd: ParsedCommand, g: Globals): Built {
  const bytes = readInputBytes(path);
  // Checked first, as a small file: with -v (it prints the request, parsed, before sending it), and
  // when stderr may be a terminal (the progress line counts the routes before anything is sent;
  // node:tty would load node:net here, ~6 ms, so any character device counts).
  const streamed = bytes.length >= STREAM_FROM && !g.verbose && !stderrMayBeTerminal();
  if (!streamed && !toJsonLine(bytes)) throw notJson(path, bytes);
  const family = cmd.payload.family === 4 || cmd.payload.family === 6 ? `"family":${cmd.payload.family},` : "";
  const changes = readsChanges(cmd, g) ? "" : `"changes":false,`;
  // In pieces: the file's bytes are sent as they are, never copied into one ~10 MB line.
  const lineWith = (field: string): Buffer[] =>
    [Buffer.from(`{"action":"APPLY","dry_run":${String(g.dryRun)},${field}"payload":{${family}"state":`), bytes, Buffer.from("}}")];
  let request: Record<string, unknown> | undefined;
  const parse = (): Record<string, unknown> =>
    (request ??= { action: cmd.action, dry_run: g.dryRun, ...(changes === "" ? {} : { changes: false }), payload: { ...cmd.payload, state: JSON.parse(bytes.toString("utf8")) as unknown } });
  const count = (): number => {
    // Parsed only for a terminal, and only when the file can hold 1000 routes.
    if (bytes.length < BYTES_OF_1000_ROUTES || !process.stderr.isTTY) return 0;
    const routes = ((parse().payload as { state?: { routes?: unknown } }).state)?.routes;
    return Array.isArray(routes) ? routes.length : 0;
  };
  const legacy = changes === "" ? {} : { legacyLine: () => lineWith("") };
  if (!streamed) return { line: lineWith(changes), action: cmd.action, request: parse, count, ...legacy };
  const check = new JsonLineCheck(bytes);
  // Made once: the sender and verify() both throw it (JSON.parse of the whole file says why).
  let problem: UsageError | undefined;
  const refused = (): UsageError => (problem ??= notJson(path, bytes));
  const [head, , tail] = lineWith(changes) as [Buffer, Buffer, Buffer];
  const parts = async (write: (piece: Uint8Array) => void): Promise<void> => {
    write(head);
    for (let end = 0; end < bytes.length;) {
      const next = check.advance(end + CHECK_STEP);
      if (next < 0) throw refused();
      if (next > end) write(bytes.subarray(end, next));
      end = next;
      if (end < bytes.length) await new Promise((resolve) => setImmediate(resolve));
    }
    write(tail);
  };
  const verify = (): void => {
    if (check.advance(bytes.length) < 0) throw refused();
  };
  return { line: { parts }, verify, action: cmd.action, request: parse, count, ...legacy };
}

function stderrMayBeTerminal(): boolean {
  try {
    return fstatSync(2).isCharacterDevice();
  } catch {
    return false;
  }
}

/** Why a file the check refused is not JSON, as a usage error (its bytes as they were). */
function notJson(path: string, bytes: Buffer): UsageError {
  // The daemon refuses a line that is not UTF-8 (E_BAD_REQUEST, naming no file): say it here.
  if (!isUtf8(bytes)) return new UsageError(`${path}: not valid JSON (the file is not UTF-8 text)`);
  // JSON.parse says why (the same message as ever).
  try {
    JSON.parse(bytes.toString("utf8"));
  } catch (err) {
    return new UsageError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  return new UsageError(`${path}: the JSON check refused a text JSON.parse takes`);
}

async function printResult(cmd: ParsedCommand, res: Response & { status: "ok" }, g: Globals): Promise<void> {
  const warnings = (res.result.warnings ?? []) as FindingView[];
  if (!cmd.summary && g.output === "json") {
    printJson(jsonOutput(cmd, res));
    return;
  }
  // A change that is neither a dry run nor an apply prints nothing but its warnings (see
  // renderTransaction): the common `mfc add` loads no rendering code at all.
  const silent = !cmd.summary && warnings.length === 0 && !g.dryRun && !isSummary(res.result.routes) &&
    cmd.action !== "SHOW" && cmd.action !== "CHECK" && cmd.action !== "STATUS";
  if (silent) return;
  const { renderCheck, renderFinding, renderShow, renderStats, renderStatus, renderTransaction, summarizeShow } = await loadOutput();
  if (cmd.summary) {
    const stats = summarizeShow(res.result);
    if (g.output === "json") printJson(stats);
    else stdout().write(renderStats(stats) + "\n");
    return;
  }
  // Each finding as `mfc check` prints it (it starts with its severity: `warning: ...`).
  for (const w of warnings) process.stderr.write(`mfc: ${renderFinding(w)}\n`);
  let text: string | undefined;
  if (cmd.action === "SHOW") text = renderShow(res.result);
  else if (cmd.action === "CHECK") text = renderCheck(Number(res.result.routes_checked), (res.result.findings ?? []) as FindingView[]);
  else if (cmd.action === "STATUS") text = renderStatus(res.result);
  else text = renderTransaction(res.changes ?? [], g.dryRun, isSummary(res.result.routes) ? res.result.routes : undefined);
  if (text !== undefined) stdout().write(text + "\n");
}

/**
 * For thousands of operations on a terminal: say what is happening while the daemon works, and
 * how long it took. Silent otherwise, so scripts and pipes see only the result.
 */
function startProgress(built: Built): () => void {
  const count = built.count();
  // The count first: process.stderr is created on first access (a pipe: a whole net.Socket).
  if (count < 1000 || !process.stderr.isTTY) return () => undefined;
  const started = Date.now();
  process.stderr.write(`mfc: ${built.action.toLowerCase()} of ${count} entries: validating, programming the kernel, saving...`);
  const timer = setInterval(() => process.stderr.write("."), 1000);
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    process.stderr.write(` ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  };
}

/**
 * How the answer is read (client.ts, pass_result.ts) where that prints the same bytes as parsing
 * it whole: into a pipe, `show -j` prints the result and other `-j` commands the response as they
 * arrive; text output without --dry-run never prints the changes (an apply of 100 000 routes:
 * ~11 MB), so they are not parsed. -v prints the whole response, and -j to a terminal indents it.
 */
function answerHandling(cmd: ParsedCommand, g: Globals): (AnswerHandling & { out?: Output }) | undefined {
  if (g.verbose) return undefined;
  if (g.output === "json") {
    // stdout only here: text output of `mfc add` never creates it.
    if (cmd.summary || stdout().isTTY === true) return undefined;
    return cmd.action === "SHOW" ? { out: stdout(), pass: "result" } : { out: stdout(), pass: "line", skipChanges: true };
  }
  return g.dryRun ? undefined : { skipChanges: true };
}

/** A daemon from before the request field `changes` refused it (nothing of the request ran). */
function refusesChangesField(res: Response): boolean {
  return res.status === "error" && res.error_code === "E_INVALID_ARGUMENT" && res.details?.field === "request.changes";
}

/**
 * Whether the answer's kernel steps are printed: not for text output without --dry-run or -v
 * (answerHandling skips them), so the request asks the daemon to leave them out (`changes: false`).
 */
function readsChanges(cmd: ParsedCommand, g: Globals): boolean {
  const h = answerHandling(cmd, g);
  return h?.skipChanges !== true || h.out !== undefined;
}

/** Indented for a person at a terminal; one compact line for pipes (100 000 routes: ~80 ms less). */
function printJson(value: unknown): void {
  stdout().write(JSON.stringify(value, null, stdout().isTTY ? 2 : undefined) + "\n");
}

function isSummary(x: unknown): x is ApplySummaryView {
  return typeof x === "object" && x !== null && "added" in x && "unchanged" in x;
}

/**
 * `mfc import smcroute FILE|-`: the CLI alone, no daemon. The document goes to stdout, each line
 * that is not (fully) imported and each note to stderr. Exit 0: everything imported; 1: something
 * left out (the document has the rest); a file that cannot be read is a usage error (2).
 */
async function runImport(path: string): Promise<number> {
  const text = readInput(path);
  // Loaded here: no other command needs the converter.
  const { formatDocument, importSmcroute } = await loadImporter();
  const { document, problems } = importSmcroute(text);
  const name = path === "-" ? "stdin" : path;
  for (const p of problems) process.stderr.write(`mfc: ${name}:${p.line}: ${p.severity}: ${p.message}\n`);
  stdout().write(formatDocument(document));
  const left = new Set(problems.filter((p) => p.severity === "error").map((p) => p.line)).size;
  if (left === 0) return EXIT.ok;
  process.stderr.write(`mfc: ${name}: ${left} line(s) not imported or imported in part (errors above); the document has the rest\n`);
  return EXIT.refused;
}

/** What the rest of a streamed file's check finds wrong with it (undefined: nothing, or no such file). */
function fileProblem(built: Built): Error | undefined {
  try {
    built.verify?.();
    return undefined;
  } catch (err) {
    return err as Error;
  }
}

/** A usage problem found by the CLI (the daemon is not asked): one line, JSON too when asked. */
function usageError(g: Globals, err: unknown): number {
  const message = (err as Error).message;
  if (g.output === "json") stdout().write(JSON.stringify({ status: "error", error_code: "E_USAGE", message }) + "\n");
  process.stderr.write(`mfc: E_USAGE: ${message}\n`);
  if (err instanceof UsageError && err.synopsis) process.stderr.write(err.synopsis.endsWith("\n") ? err.synopsis : `${err.synopsis}\n`);
  return EXIT.usage;
}

async function run(argv: string[]): Promise<number> {
  const g = parseGlobals(argv);
  let cmd: ParsedCommand;
  let built: ReturnType<typeof buildRequest>;
  try {
    if (g.problem !== undefined) throw new UsageError(g.problem);
    if (g.version) { stdout().write(`mfc ${VERSION}\n`); return EXIT.ok; }
    // `mfc help [CMD]`, `mfc CMD help`, `mfc CMD --help`: the table-generated help; `help` elsewhere
    // is a value (an interface may be called help), and help on a non-command is a usage error.
    const help = helpRequest(g.words, g.help);
    if (help !== undefined) {
      stdout().write(help);
      return EXIT.ok;
    }
    cmd = withFamily(parseCommand(g.words), g.family);
    if (cmd.file?.kind === "import") return await runImport(cmd.file.path);
    built = buildRequest(cmd, g);
  } catch (err) {
    return usageError(g, err);
  }
  if (g.verbose) process.stderr.write(`> ${JSON.stringify(built.request())}\n`);
  let socket: string;
  try {
    socket = await socketPath(g);
  } catch (err) {
    // A file that is not JSON is reported first, as when it was checked before anything else.
    return usageError(g, fileProblem(built) ?? err);
  }
  // Here, not at the top: node:net (with all of node:stream) is the largest part of start-up and
  // --version, help and usage errors do not need it. The bundle keeps client.ts inline, run on first use.
  const { call, UnreachableError } = await import("./client.js");
  let res: Response;
  const handling = answerHandling(cmd, g);
  const printed = handling?.pass !== undefined;
  // Started only once the request is ready to go (a bad -c file is a usage error without dots), and
  // stopped on every way out of the call.
  const progress = startProgress(built);
  try {
    res = await call(socket, built.line, handling);
    if (built.legacyLine && refusesChangesField(res)) res = await call(socket, built.legacyLine(), handling);
  } catch (err) {
    progress();
    // A file checked as it was sent and found not JSON (the daemon got no request), or one whose
    // check a failed connection cut short: a usage error, as when it was checked first.
    const problem = fileProblem(built);
    if (problem) return usageError(g, problem);
    const message = (err as Error).message;
    const code = err instanceof UnreachableError ? "E_UNREACHABLE" : "E_INTERNAL";
    if (g.output === "json") stdout().write(JSON.stringify({ status: "error", error_code: code, message }) + "\n");
    process.stderr.write(`mfc: ${code}: ${message}\n`);
    return err instanceof UnreachableError ? EXIT.unreachable : EXIT.refused;
  } finally {
    progress();
  }
  // An answer that came before all of a file checked as it is sent was out (E_PERMISSION_DENIED at
  // once, E_TOO_LARGE past the limit): a file that is not JSON is still the usage error it was.
  const problem = fileProblem(built);
  if (problem) return usageError(g, problem);
  if (g.verbose) process.stderr.write(`< ${JSON.stringify(res)}\n`);
  if (res.status === "ok") {
    if (!printed) await printResult(cmd, res, g);
    return EXIT.ok;
  }
  if (g.output === "json" && handling?.pass !== "line") printJson(jsonOutput(cmd, res));
  const op = res.details?.operation;
  const where = typeof op === "number" && built.batchLines?.[op] !== undefined ? `line ${built.batchLines[op]}: ` : "";
  process.stderr.write(`mfc: ${res.error_code}: ${where}${res.message}\n`);
  const { ERROR_CODES, isErrorCode } = await loadOutput();
  return isErrorCode(res.error_code) ? ERROR_CODES[res.error_code].exit : EXIT.refused;
}

/** 128 + SIGPIPE: what a shell reports for a tool that SIGPIPE ended. */
const EXIT_BROKEN_PIPE = 141;
let stdoutWatched = false;

/**
 * process.stdout (created on first use), ended quietly when its reader goes away first (`mfc show |
 * head`): Node ignores SIGPIPE and reports EPIPE as an error, which would print a stack trace.
 */
function stdout(): NodeJS.WriteStream {
  if (!stdoutWatched) {
    stdoutWatched = true;
    process.stdout.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code !== "EPIPE") throw err;
      process.exit(EXIT_BROKEN_PIPE);
    });
  }
  return process.stdout;
}

/**
 * Ends the process with `code` once its output is out. With nothing left to write, at once: the
 * natural exit tears the event loop down first, ~2-4 ms of a ~60 ms `mfc add` (docs/performance.md,
 * "Fifth round"). Otherwise naturally, which writes first what a pipe has not taken yet
 * (`process.exit()` would cut it short).
 */
function exitOnceWritten(code: number): void {
  process.exitCode = code;
  if (process.stdout.writableLength === 0 && process.stderr.writableLength === 0) process.exit(code);
}

run(process.argv.slice(2)).then(exitOnceWritten, (err: unknown) => {
  process.stderr.write(`mfc: E_INTERNAL: ${(err as Error).message}\n`);
  exitOnceWritten(1);
});
