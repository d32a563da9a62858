/**
 * The state file: the operator's Config, saved after every successful transaction with the atomic
 * replace recipe (temp file in the same directory, write, fsync, rename, fsync the directory), so
 * a crash at any instant leaves the old file or the new one, never a torn one.
 */
import { mkdir, open, readFile, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Config } from "../model/types.js";
import { configFromJson, configToJson } from "./format.js";

export interface StateStore {
  /** undefined when there is no state file yet (first start). Throws StateFileError if unusable. */
  load(): Promise<Config | undefined>;
  save(config: Config): Promise<void>;
  readonly path: string;
}

export class StateFileError extends Error {}

export class FileStateStore implements StateStore {
  constructor(readonly path: string) {}

  async load(): Promise<Config | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw new StateFileError(`cannot read state file ${this.path}: ${(err as Error).message}`);
    }
    try {
      return configFromJson(JSON.parse(text) as unknown);
    } catch (err) {
      throw new StateFileError(
        `state file ${this.path} is not usable (${(err as Error).message}); it was left untouched — ` +
          "fix or move it away, then start again",
      );
    }
  }

  async save(config: Config): Promise<void> {
    const dir = dirname(this.path);
    await mkdir(dir, { recursive: true, mode: 0o750 });
    const tmp = join(dir, `.${basename(this.path)}.${process.pid}.tmp`);
    const data = JSON.stringify(configToJson(config)) + "\n";
    const fh = await open(tmp, "w", 0o640);
    try {
      await fh.writeFile(data, "utf8");
      await fh.sync(); // data on disk before the rename makes it visible
    } catch (err) {
      await fh.close();
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await fh.close();
    await rename(tmp, this.path);
    const dh = await open(dir, "r");
    try {
      await dh.sync(); // the rename itself is durable only once the directory is synced
    } finally {
      await dh.close();
    }
  }
}
