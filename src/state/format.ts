/** The state file format (versioned). Validated with the same rules as client input. */
import { MfcError } from "../errors/codes.js";
import { emptyConfig, routeKey, type Config } from "../model/types.js";
import { parseOp } from "../protocol/schema.js";

export const STATE_FORMAT = "mfc_daemon-state";
export const STATE_VERSION = 1;

export function configToJson(config: Config): Record<string, unknown> {
  return {
    format: STATE_FORMAT,
    version: STATE_VERSION,
    vifs: [...config.vifs.values()].map((v) => ({ ifname: v.ifname, threshold: v.threshold })),
    routes: [...config.routes.values()].map((r) => ({ source: r.source, group: r.group, iif: r.iif, oifs: r.oifs })),
  };
}

export function configFromJson(json: unknown): Config {
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new Error("not a JSON object");
  const { format, version, vifs, routes, ...rest } = json as Record<string, unknown>;
  if (format !== STATE_FORMAT) throw new Error(`'format' is not '${STATE_FORMAT}'`);
  if (version !== STATE_VERSION) throw new Error(`unsupported version ${JSON.stringify(version)} (this daemon reads ${STATE_VERSION})`);
  if (Object.keys(rest).length > 0) throw new Error(`unknown key '${Object.keys(rest)[0]}'`);
  try {
    const op = parseOp("APPLY", { state: { vifs, routes } }, "state");
    if (op.action !== "APPLY") throw new Error("unreachable");
    const config = emptyConfig();
    for (const v of op.vifs) config.vifs.set(v.ifname, v);
    for (const r of op.routes) {
      const key = routeKey(r.source, r.group);
      if (config.routes.has(key)) throw new Error(`route ${key} is listed twice`);
      if (r.oifs.some((o) => o.ifname === r.iif)) throw new Error(`route ${key} lists its iif as an oif`);
      config.routes.set(key, r);
    }
    return config;
  } catch (err) {
    if (err instanceof MfcError) throw new Error(err.message.replace(/^Validation failed: /, ""), { cause: err });
    throw err;
  }
}
