/**
 * Instances (SPEC §7): several daemons side by side, `mfc_daemon --instance NAME` and `mfc -i NAME`.
 * The name alone derives everything that must differ, so two instances never share a config,
 * socket or state file unless their configs say so. No imports: the CLI's main bundle checks the
 * name before it loads the config reader.
 */

export const INSTANCE_CONFIG_DIR = "/etc/mfc_daemon.d";
export const INSTANCE_NAME_MAX = 32;

/**
 * Why `name` cannot name an instance, or undefined. Letters, digits, '-' and '_' only: the name
 * becomes part of file names and of the unit name mfc_daemon@NAME.service, where '/', '.', '@',
 * '\' or a space would change the path or need escaping.
 */
export function instanceNameProblem(name: string): string | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(name) || name.length > INSTANCE_NAME_MAX) {
    return `instance name '${name}' is not valid: use 1-${INSTANCE_NAME_MAX} letters, digits, '-' or '_'`;
  }
  return undefined;
}

/**
 * The instance's config file and its default socket and state file. The socket directory is the
 * one mfc_daemon@NAME.service gets from systemd (RuntimeDirectory=mfc_daemon.d/%i; not inside the
 * main service's /run/mfc_daemon, which systemd removes when that service stops); the state file
 * sits beside the main daemon's in /var/lib/mfc_daemon (StateDirectory=mfc_daemon).
 */
export function instancePaths(name: string): { config: string; socketPath: string; stateFile: string } {
  return {
    config: `${INSTANCE_CONFIG_DIR}/${name}.conf`,
    socketPath: `/run/mfc_daemon.d/${name}/mfc_daemon.sock`,
    stateFile: `/var/lib/mfc_daemon/${name}.state.json`,
  };
}

/** The kernel's default IPv4 table: MRT_TABLE 0 and 253 (RT_TABLE_DEFAULT) both name it. */
const DEFAULT_TABLE_IDS = [0, 253];
/** MRT6_TABLE 254 (RT6_TABLE_DFLT) is the default IPv6 table; one id takes both families' tables. */
const DEFAULT_IPV6_TABLE_ID = 254;

const tableFix = (configFile: string): string =>
  `set table = N (1-999999999, not 253 or 254) in ${configFile}, and steer the instance's traffic to table N with ip mrule (ip mrule add iif IF lookup N)`;

/**
 * Why an instance may not run on `table`, or undefined. The default table is the main daemon's:
 * an instance there would be refused by the kernel whenever the main daemon runs, and would take
 * the main daemon's table whenever it does not.
 */
export function instanceTableProblem(name: string, configFile: string, table: number | undefined): string | undefined {
  if (table === undefined) return `instance '${name}' needs a table of its own: ${tableFix(configFile)}`;
  if (DEFAULT_TABLE_IDS.includes(table)) {
    return `instance '${name}' may not use table ${table}, the kernel's default table (the main mfc_daemon's): ${tableFix(configFile)}`;
  }
  return undefined;
}

/**
 * A warning for an instance on 254. Not a refusal: its IPv4 table is its own, and instances on 254
 * routed IPv4 before IPv6 existed; but its IPv6 table is the main daemon's, taken only once it
 * routes IPv6 (the IPv6 table is opened lazily), so the clash is named at start.
 */
export function instanceTableWarning(name: string, configFile: string, table: number | undefined): string | undefined {
  if (table !== DEFAULT_IPV6_TABLE_ID) return undefined;
  return `instance '${name}' uses table 254, the kernel's default IPv6 table (the main mfc_daemon's): its IPv4 routes are its own, `
    + `but its IPv6 routes would take or be refused the main daemon's IPv6 table; to route IPv6 ${tableFix(configFile)}`;
}
