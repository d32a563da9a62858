import { createRequire } from "node:module";

/** Set by the CLI bundle (esbuild --define), so `mfc` reads no package.json at start-up. */
declare const MFC_BUNDLED_VERSION: string | undefined;

/** The package version: inlined in the bundle, else read once from package.json beside dist/. */
export const VERSION: string = typeof MFC_BUNDLED_VERSION === "string"
  ? MFC_BUNDLED_VERSION
  : (createRequire(import.meta.url)("../package.json") as { version: string }).version;
