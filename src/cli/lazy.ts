/**
 * Parts of the CLI that most commands never need, loaded on first use. The bundle (esbuild, CJS)
 * keeps each in its own file beside dist/cli/mfc.cjs and require()s it: so a command that does not
 * need it neither reads nor compiles it. From tsc's ESM output (dist/cli/main.js) and under tsx the
 * same call is a dynamic import of the module itself. esbuild folds the typeof test (MFC_BUNDLED_VERSION
 * is --define'd) and drops the import() branch; the relative require is --external.
 */
declare const MFC_BUNDLED_VERSION: string | undefined;

type Output = typeof import("./output.js");
type ConfigFile = typeof import("./config_file.js");
type Importer = typeof import("../import/smcroute.js");

/* eslint-disable @typescript-eslint/no-require-imports */
export function loadOutput(): Promise<Output> {
  return typeof MFC_BUNDLED_VERSION === "string" ? Promise.resolve(require("./mfc-output.cjs") as Output) : import("./output.js");
}

export function loadConfigFile(): Promise<ConfigFile> {
  return typeof MFC_BUNDLED_VERSION === "string" ? Promise.resolve(require("./mfc-config.cjs") as ConfigFile) : import("./config_file.js");
}
export function loadImporter(): Promise<Importer> {
  return typeof MFC_BUNDLED_VERSION === "string" ? Promise.resolve(require("./mfc-import.cjs") as Importer) : import("../import/smcroute.js");
}
/* eslint-enable @typescript-eslint/no-require-imports */
