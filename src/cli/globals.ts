/** Global options, accepted before and after the command (`mfc -j show` = `mfc show -j`). */
import { instanceNameProblem } from "../config/instance.js";

export interface Globals {
  dryRun: boolean; verbose: boolean; output: "text" | "json";
  /** -4 / -6: limit the command to one address family, as in iproute2. */
  family?: 4 | 6;
  socket?: string; config?: string; instance?: string; help: boolean; version: boolean;
  words: string[];
  /** The first usage problem among the options; reported only after all of them were read, so
   *  that an error still comes out as JSON when -j was given anywhere. */
  problem?: string;
}

const FLAGS: Record<string, keyof Globals> = {
  "-n": "dryRun", "--dry-run": "dryRun", "-v": "verbose", "--verbose": "verbose",
  "-h": "help", "--help": "help", "-V": "version", "--version": "version",
};
const VALUED: Record<string, "output" | "socket" | "config" | "instance"> = {
  "-o": "output", "--output": "output", "-s": "socket", "--socket": "socket", "-c": "config", "--config": "config",
  "-i": "instance", "--instance": "instance",
};

export function parseGlobals(argv: string[]): Globals {
  const g: Globals = { dryRun: false, verbose: false, output: "text", help: false, version: false, words: [] };
  const problem = (text: string): void => { g.problem ??= text; };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (arg === "-j" || arg === "--json") { g.output = "json"; continue; }
    if (arg === "-4" || arg === "-6") {
      const family = arg === "-4" ? 4 : 6;
      if (g.family !== undefined && g.family !== family) problem("-4 and -6 exclude each other");
      g.family = family;
      continue;
    }
    const flag = FLAGS[name];
    if (flag && eq < 0) { (g as unknown as Record<string, boolean>)[flag] = true; continue; }
    const key = VALUED[name];
    if (key) {
      const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined) { problem(`option '${name}' needs a value`); continue; }
      if (key === "output") {
        if (value === "text" || value === "json") g.output = value;
        else problem(`--output must be 'text' or 'json', got '${value}'`);
      } else if (key === "instance") {
        const bad = instanceNameProblem(value);
        if (bad) problem(`--instance: ${bad}`);
        else g.instance = value;
      } else g[key] = value;
      continue;
    }
    if (arg.startsWith("-") && arg !== "-") { problem(`unknown option '${arg}'`); continue; }
    g.words.push(arg);
  }
  return g;
}
