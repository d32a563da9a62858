/**
 * The config file reader (ini and its checks) and the instances' config paths, loaded lazily
 * (lazy.ts) only when no --socket was given. In the bundle it is dist/cli/mfc-config.cjs.
 */
export { DEFAULTS, DEFAULT_CONFIG_PATH, loadConfig } from "../config/config.js";
export { instancePaths } from "../config/instance.js";
