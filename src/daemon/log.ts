/** `<N>message` lines on stderr: journald reads the syslog priority prefix. */
export const LOG = { crit: 2, err: 3, warning: 4, notice: 5, info: 6, debug: 7 } as const;

export function log(priority: number, message: string): void {
  process.stderr.write(`<${priority}>${message}\n`);
}
