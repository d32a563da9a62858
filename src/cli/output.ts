/**
 * What the CLI needs only to print an answer or map an error to an exit status: loaded lazily
 * (lazy.ts), so that `mfc add` (which prints nothing on success) never compiles it. In the bundle
 * it is dist/cli/mfc-output.cjs.
 */
export {
  renderCheck, renderFinding, renderShow, renderStats, renderStatus, renderTransaction, type ApplySummaryView, type FindingView,
} from "../view/render.js";
export { summarizeShow } from "../view/model.js";
export { ERROR_CODES, isErrorCode } from "../errors/codes.js";
