#!/usr/bin/env -S node --expose-gc --max-semi-space-size=2
/**
 * mfc_daemon entrypoint: parse arguments, build MfcDaemon, run mainEntrypoint(). Run directly
 * (`dist/daemon_main.js`), the shebang passes --expose-gc, which daemon/memory.ts needs for its
 * forced GC after large requests (without it the GC is skipped); the wrappers pass it themselves.
 */
import { parseArgs } from "node:util";
import { ConfigError, DEFAULT_CONFIG_PATH, configProblem, loadConfig, tableProblem, type DaemonConfig } from "./config/config.js";
import { INSTANCE_CONFIG_DIR, instanceNameProblem, instancePaths, instanceTableProblem, instanceTableWarning } from "./config/instance.js";
import { MfcDaemon } from "./daemon/daemon.js";
import { LOG, flushLog, log } from "./daemon/log.js";
import { emptyConfig } from "./model/types.js";
import { configToJson } from "./state/format.js";
import { FileStateStore } from "./state/store.js";
import { VERSION } from "./version.js";

const USAGE = `usage: mfc_daemon [--instance NAME] [--config PATH] [--socket PATH] [--state-file PATH] [--table N] [--version] [--help]

Owns the kernel's IPv4 multicast routing table and serves the mfc CLI.
  -i, --instance NAME    run as instance NAME beside other daemons (own table, socket and
                         state file): reads ${INSTANCE_CONFIG_DIR}/NAME.conf, which must set table;
                         socket_path defaults to ${instancePaths("NAME").socketPath}
                         and state_file to ${instancePaths("NAME").stateFile}
  -c, --config PATH      config file (default ${DEFAULT_CONFIG_PATH}; with --instance, that instance's)
  -s, --socket PATH      override socket_path
      --state-file PATH  override state_file
      --table N          override table (MRT_TABLE id, 0-999999999)
      --dump-state       print the durable state (snapshot + journal) as JSON and exit;
                         safe while a daemon runs; exit 1 if the state file is unusable
`;

function main(argv: string[]): Promise<number> | number {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        instance: { type: "string", short: "i" },
        config: { type: "string", short: "c" },
        socket: { type: "string", short: "s" },
        "state-file": { type: "string" },
        table: { type: "string" },
        "dump-state": { type: "boolean" },
        version: { type: "boolean", short: "V" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    process.stderr.write(`mfc_daemon: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args.help) { process.stdout.write(USAGE); return 0; }
  if (args.version) { process.stdout.write(`mfc_daemon ${VERSION}\n`); return 0; }
  let config: DaemonConfig;
  const instance = args.instance;
  try {
    const nameProblem = instance === undefined ? undefined : instanceNameProblem(instance);
    if (nameProblem) throw new ConfigError(`--instance: ${nameProblem}`);
    const file = args.config ?? (instance === undefined ? DEFAULT_CONFIG_PATH : instancePaths(instance).config);
    config = loadConfig(file, instance);
    if (args.socket) config.socketPath = args.socket;
    if (args["state-file"]) config.stateFile = args["state-file"];
    if (args.table !== undefined) {
      const problem = tableProblem(args.table);
      if (problem) throw new ConfigError(`--table ${problem} (got '${args.table}')`);
      config.table = Number(args.table);
    }
    // Again with the overrides in: --socket or --state-file may clash or be too long.
    const problem = configProblem(config);
    if (problem) throw new ConfigError(problem);
    // Only for a daemon that takes a table: --dump-state of any instance is fine.
    const tableClash = instance === undefined || args["dump-state"] ? undefined : instanceTableProblem(instance, file, config.table);
    if (tableClash) throw new ConfigError(tableClash);
    const tableWarning = instance === undefined || args["dump-state"] ? undefined : instanceTableWarning(instance, file, config.table);
    if (tableWarning) log(LOG.warning, `mfc_daemon: warning: ${tableWarning}`);
  } catch (err) {
    process.stderr.write(`mfc_daemon: ${(err as Error).message}\n`);
    return 2;
  }
  if (args["dump-state"]) return dumpState(config.stateFile);
  return new MfcDaemon(config).mainEntrypoint();
}

async function dumpState(file: string): Promise<number> {
  try {
    const config = (await new FileStateStore(file).load()) ?? emptyConfig();
    // The shape `mfc apply` takes, so a dump can be edited and re-applied.
    const { vifs, routes, joins } = configToJson(config, 0);
    // Wait until it is written: main() ends in process.exit(), which would cut a pipe's output
    // short (a 100 000-route dump reached `| jq` as its first 128 KiB).
    await new Promise<void>((resolve, reject) => {
      process.stdout.write(JSON.stringify({ vifs, routes, joins }, null, 2) + "\n", (err) => (err ? reject(err) : resolve()));
    });
    return 0;
  } catch (err) {
    process.stderr.write(`mfc_daemon: ${(err as Error).message}\n`);
    return 1;
  }
}

Promise.resolve(main(process.argv.slice(2))).then(
  (code) => process.exit(code),
  (err: unknown) => {
    flushLog(); // audit lines of the turn that failed come first
    process.stderr.write(`mfc_daemon: fatal: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(70);
  },
);
