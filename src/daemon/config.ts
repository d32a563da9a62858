/**
 * The daemon's INI config, section [daemon]. Values arrive as strings (ini@6); each is checked
 * here and unknown keys are refused, both reported with their line number.
 */
import { readFileSync } from "node:fs";
import { isAbsolute, resolve, dirname } from "node:path";
import { parse } from "ini";
import { DEFAULT_MAX_REQUEST_BYTES } from "../protocol/messages.js";

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
  requestTimeoutMs: 10_000,
};

export class ConfigError extends Error {}

type Setter = (c: DaemonConfig, value: string, base: string) => string | undefined;

function path(key: "socketPath" | "stateFile"): Setter {
  return (c, value, base) => {
    if (value === "") return "must not be empty";
    // Relative paths are relative to the config file, so a checkout's config works from anywhere.
    c[key] = isAbsolute(value) ? value : resolve(base, value);
    return undefined;
  };
}

function int(min: number, max: number, set: (c: DaemonConfig, n: number) => void): Setter {
  return (c, value) => {
    if (!/^\d+$/.test(value)) return `must be an integer ${min}-${max}`;
    const n = Number(value);
    if (n < min || n > max) return `must be an integer ${min}-${max}`;
    set(c, n);
    return undefined;
  };
}

const KEYS: Record<string, Setter> = {
  socket_path: path("socketPath"),
  state_file: path("stateFile"),
  socket_group: (c, value) => {
    if (value !== "" && !/^[a-z_][a-z0-9_-]*\$?$/i.test(value)) return "is not a valid group name";
    c.socketGroup = value;
    return undefined;
  },
  table: (c, value) => {
    if (value === "") { c.table = undefined; return undefined; }
    return int(0, 0xffffffff, (cfg, n) => { cfg.table = n; })(c, value, "");
  },
  max_request_bytes: int(1024, 1024 * 1024 * 1024, (c, n) => { c.maxRequestBytes = n; }),
  max_connections: int(1, 10_000, (c, n) => { c.maxConnections = n; }),
  client_timeout_s: int(1, 86_400, (c, n) => { c.clientTimeoutMs = n * 1000; }),
  request_timeout_s: int(1, 86_400, (c, n) => { c.requestTimeoutMs = n * 1000; }),
};

function lineOf(text: string, key: string, section?: string): number {
  const lines = text.split("\n");
  const re = section !== undefined ? new RegExp(`^\\s*\\[\\s*${section.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\s*\\]`) : new RegExp(`^\\s*${key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\s*(=|$)`);
  const i = lines.findIndex((l) => re.test(l));
  return i + 1;
}

export function parseConfig(text: string, file: string): DaemonConfig {
  const config: DaemonConfig = { ...DEFAULTS };
  const parsed = parse(text) as Record<string, unknown>;
  const base = dirname(resolve(file));
  for (const [name, value] of Object.entries(parsed)) {
    if (name !== "daemon" || typeof value !== "object" || value === null) {
      throw new ConfigError(`${file}:${lineOf(text, name, typeof value === "object" ? name : undefined)}: unknown ${typeof value === "object" ? "section" : "key outside [daemon]"} '${name}'`);
    }
    for (const [key, raw] of Object.entries(value as Record<string, unknown>)) {
      const setter = Object.hasOwn(KEYS, key) ? KEYS[key] : undefined;
      if (!setter) throw new ConfigError(`${file}:${lineOf(text, key)}: unknown key '${key}' in [daemon]`);
      const problem = typeof raw === "string" ? setter(config, raw.trim(), base) : "must be a single value";
      if (problem) throw new ConfigError(`${file}:${lineOf(text, key)}: ${key} ${problem} (got ${JSON.stringify(raw)})`);
    }
  }
  return config;
}

export function loadConfig(file: string): DaemonConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(`cannot read config ${file}: ${(err as Error).message}`);
  }
  return parseConfig(text, file);
}
