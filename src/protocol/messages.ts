/** Wire shapes of SPEC §5: newline-delimited JSON, one request and one response per line. */
import type { ErrorCode } from "../errors/codes.js";

export const READ_ACTIONS = ["PING", "STATUS", "SHOW", "CHECK"] as const;
export const MUTATING_ACTIONS = ["ADD_VIF", "DEL_VIF", "ADD_MFC", "REPLACE_MFC", "DEL_MFC", "JOIN", "LEAVE", "FLUSH", "BATCH", "APPLY"] as const;
export const ACTIONS = [...READ_ACTIONS, ...MUTATING_ACTIONS] as const;
export type Action = (typeof ACTIONS)[number];

export interface Request {
  action: Action;
  dry_run?: boolean;
  /** false: leave `changes` out of the answer (the client does not read them; result.kernel_steps counts them). */
  changes?: boolean;
  payload?: Record<string, unknown>;
  id?: number | string;
}

export interface OkResponse {
  status: "ok";
  dry_run: boolean;
  /** Absent when the request said `changes: false`. */
  changes?: Record<string, unknown>[];
  result: Record<string, unknown>;
  id?: number | string;
}

export interface ErrorResponse {
  status: "error";
  error_code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
  id?: number | string;
}

export type Response = OkResponse | ErrorResponse;

export const DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024;
