/**
 * The daemon's INI config, section [daemon]: its keys, defaults and checks, and the reader. Shared:
 * the daemon reads it at start, the CLI (lazily, src/cli/config_file.ts) for socket_path, so it
 * imports nothing of either. Values arrive as strings (ini@6); each is checked here and unknown
 * keys are refused, both reported with their line number.
 */
import { readFileSync } from "node:fs";
import { basename, dirname, isAbsolute, resolve } from "node:path";
import { parse } from "ini";
import { DEFAULT_MAX_REQUEST_BYTES } from "../protocol/messages.js";
import { instancePaths } from "./instance.js";

export interface DaemonConfig {
  socketPath: string;
  stateFile: string;
  /** Empty: leave the socket's group as created (useful for a checkout run as root). */
  socketGroup: string;
  /** MRT_TABLE id, or undefined for the kernel's default table. */
  table: number | undefined;
  maxRequestBytes: number;
  maxConnections: number;
  clientTimeoutMs: number;
  /** A template's flow without a new packet for this long is removed (SPEC §7, template_idle_s). */
  templateIdleMs: number;
  /** Longest a client may take to send one whole request, first byte to newline. */
  requestTimeoutMs: number;
}

export const DEFAULT_CONFIG_PATH = "/etc/mfc_daemon.conf";

export const DEFAULTS: DaemonConfig = {
  socketPath: "/var/run/mfc_daemon.sock",
  stateFile: "/var/lib/mfc_daemon/state.json",
  socketGroup: "mfc_admin",
  table: undefined,
  maxRequestBytes: DEFAULT_MAX_REQUEST_BYTES,
  maxConnections: 64,
  clientTimeoutMs: 60_000,
  templateIdleMs: 300_000,
  requestTimeoutMs: 10_000,
};

export class ConfigError extends Error {}

/**
 * MRT_TABLE ids the kernel accepts: a u32, but ipmr_new_table() (net/ipv4/ipmr.c) refuses
 * 1 000 000 000 and more with EINVAL ("pimreg%u" must fit IFNAMSIZ), except RT_TABLE_DEFAULT
 * (253), which is below anyway.
 */
export const TABLE_MAX = 999_999_999;
/** sun_path is 108 bytes including the terminating NUL; Node silently truncates a longer path. */
export const SOCKET_PATH_MAX_BYTES = 107;

/** Why `value` is not a table id the kernel accepts, or undefined with `value` valid. */
export function tableProblem(value: string): string | undefined {
  const range = `must be an integer 0-${TABLE_MAX} (the kernel refuses MRT_TABLE ids of 1000000000 and more)`;
  if (!/^\d+$/.test(value)) return range;
  return Number(value) > TABLE_MAX ? range : undefined;
}

/** Why `path` cannot be a Unix socket's path, or undefined. */
export function socketPathProblem(path: string): string | undefined {
  const bytes = Buffer.byteLength(path);
  if (bytes > SOCKET_PATH_MAX_BYTES) {
    return `socket_path ${path} is ${bytes} bytes long; a Unix socket path may have at most ${SOCKET_PATH_MAX_BYTES} (sun_path): choose a shorter one`;
  }
  return undefined;
}

/**
 * Checks across keys, once every value (and every command-line override) is in: the socket must
 * not take the name of a file the state store owns (the snapshot, its journal, its lock, its temp
 * files): the daemon would find its own state where its socket goes and refuse to start, or a
 * save would rename over the socket. Paths are compared as written (resolved, not through
 * symlinks); an alias through a symlink is caught when the daemon finds a non-socket there.
 */
export function configProblem(c: DaemonConfig): string | undefined {
  const socket = resolve(c.socketPath);
  const state = resolve(c.stateFile);
  const owned = [[state, "state_file"], [`${state}.journal`, "its journal"], [`${state}.lock`, "its lock file"]] as const;
  for (const [file, what] of owned) {
    if (socket === file) return `socket_path and state_file clash: ${c.socketPath} is ${what === "state_file" ? "the state file" : `${what} (${file})`}; give the socket its own path`;
  }
  const tmp = new RegExp(`^\\.${basename(state).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\.\\d+\\.tmp$`);
  if (dirname(socket) === dirname(state) && tmp.test(basename(socket))) {
    return `socket_path ${c.socketPath} has the name of a temp file of state_file ${c.stateFile}; give the socket its own path`;
  }
  return socketPathProblem(c.socketPath);
}

type Setter = (c: DaemonConfig, value: string, base: string) => string | undefined;

/** One key of [daemon]: the setting it sets, and how a value is checked and stored. */
export interface ConfigKey {
  field: keyof DaemonConfig;
  /** Checks `value` (trimmed) and stores it in `c`; returns why it is wrong, or undefined. */
  set: Setter;
}

function path(field: "socketPath" | "stateFile"): ConfigKey {
  return {
    field,
    set: (c, value, base) => {
      if (value === "") return "must not be empty";
      // Relative paths are relative to the config file, so a checkout's config works from anywhere.
      c[field] = isAbsolute(value) ? value : resolve(base, value);
      return undefined;
    },
  };
}

function int(field: "maxRequestBytes" | "maxConnections" | "clientTimeoutMs" | "requestTimeoutMs" | "templateIdleMs", min: number, max: number, scale = 1): ConfigKey {
  return {
    field,
    set: (c, value) => {
      if (!/^\d+$/.test(value)) return `must be an integer ${min}-${max}`;
      const n = Number(value);
      if (n < min || n > max) return `must be an integer ${min}-${max}`;
      c[field] = n * scale;
      return undefined;
    },
  };
}

/** Every key of [daemon], the only source of the list (docs and man page tests read it). */
export const CONFIG_KEYS: Readonly<Record<string, ConfigKey>> = {
  socket_path: path("socketPath"),
  state_file: path("stateFile"),
  socket_group: {
    field: "socketGroup",
    set: (c, value) => {
      if (value !== "" && !/^[a-z_][a-z0-9_-]*\$?$/i.test(value)) return "is not a valid group name";
      c.socketGroup = value;
      return undefined;
    },
  },
  table: {
    field: "table",
    set: (c, value) => {
      if (value === "") { c.table = undefined; return undefined; }
      const problem = tableProblem(value);
      if (problem) return problem;
      c.table = Number(value);
      return undefined;
    },
  },
  max_request_bytes: int("maxRequestBytes", 1024, 1024 * 1024 * 1024),
  max_connections: int("maxConnections", 1, 10_000),
  client_timeout_s: int("clientTimeoutMs", 1, 86_400, 1000),
  request_timeout_s: int("requestTimeoutMs", 1, 86_400, 1000),
  template_idle_s: int("templateIdleMs", 1, 86_400, 1000),
};

function lineOf(text: string, key: string, section?: string): number {
  const lines = text.split("\n");
  const re = section !== undefined ? new RegExp(`^\\s*\\[\\s*${section.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\s*\\]`) : new RegExp(`^\\s*${key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\s*(=|$)`);
  const i = lines.findIndex((l) => re.test(l));
  return i + 1;
}

/** The defaults of an instance (its own socket and state file), or of the main daemon. */
export function defaultsFor(instance?: string): DaemonConfig {
  if (instance === undefined) return { ...DEFAULTS };
  const { socketPath, stateFile } = instancePaths(instance);
  return { ...DEFAULTS, socketPath, stateFile };
}

export function parseConfig(text: string, file: string, instance?: string): DaemonConfig {
  const config = defaultsFor(instance);
  const parsed = parse(text) as Record<string, unknown>;
  const base = dirname(resolve(file));
  for (const [name, value] of Object.entries(parsed)) {
    if (name !== "daemon" || typeof value !== "object" || value === null) {
      throw new ConfigError(`${file}:${lineOf(text, name, typeof value === "object" ? name : undefined)}: unknown ${typeof value === "object" ? "section" : "key outside [daemon]"} '${name}'`);
    }
    for (const [key, raw] of Object.entries(value as Record<string, unknown>)) {
      const spec = Object.hasOwn(CONFIG_KEYS, key) ? CONFIG_KEYS[key] : undefined;
      if (!spec) throw new ConfigError(`${file}:${lineOf(text, key)}: unknown key '${key}' in [daemon]`);
      const problem = typeof raw === "string" ? spec.set(config, raw.trim(), base) : "must be a single value";
      if (problem) throw new ConfigError(`${file}:${lineOf(text, key)}: ${key} ${problem} (got ${JSON.stringify(raw)})`);
    }
  }
  const problem = configProblem(config);
  if (problem) {
    // Named at the line of whichever of the two keys comes last (the defaults have no line).
    const line = Math.max(lineOf(text, "socket_path"), lineOf(text, "state_file"));
    throw new ConfigError(line > 0 ? `${file}:${line}: ${problem}` : `${file}: ${problem}`);
  }
  return config;
}

/** Reads `file`; with `instance`, keys it leaves out take that instance's defaults. */
export function loadConfig(file: string, instance?: string): DaemonConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if (instance !== undefined && (err as NodeJS.ErrnoException).code === "ENOENT") {
      throw new ConfigError(`instance '${instance}' has no config: ${file} does not exist (create it; it needs at least table = N)`);
    }
    throw new ConfigError(`cannot read config ${file}: ${(err as Error).message}`);
  }
  return parseConfig(text, file, instance);
}
