/**
 * The one registry of error codes (SPEC §5) and the CLI's exit status for each. Codes are stable
 * and never renamed; `docs/error-codes.md` says what each one means (a test checks that every code
 * here appears there, with its exit status).
 */
export const ERROR_CODES = {
  E_BAD_REQUEST: { exit: 1 },
  E_TOO_LARGE: { exit: 1 },
  E_UNKNOWN_ACTION: { exit: 1 },
  E_INVALID_ARGUMENT: { exit: 1 },
  E_INVALID_ADDRESS: { exit: 1 },
  E_IF_NOT_FOUND: { exit: 1 },
  E_VIF_EXISTS: { exit: 1 },
  E_VIF_NOT_FOUND: { exit: 1 },
  E_VIF_IN_USE: { exit: 1 },
  E_VIF_LIMIT: { exit: 1 },
  E_MFC_EXISTS: { exit: 1 },
  E_MFC_NOT_FOUND: { exit: 1 },
  E_JOIN_EXISTS: { exit: 1 },
  E_JOIN_NOT_FOUND: { exit: 1 },
  E_KERNEL: { exit: 1 },
  E_STATE_WRITE: { exit: 1 },
  E_PERMISSION_DENIED: { exit: 3 },
  E_INTERNAL: { exit: 1 },
  // Raised by the CLI itself, never sent by the daemon.
  E_USAGE: { exit: 2 },
  E_UNREACHABLE: { exit: 3 },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(s: unknown): s is ErrorCode {
  return typeof s === "string" && Object.hasOwn(ERROR_CODES, s);
}

/** A failure with a stable code, safe to send to a client. */
export class MfcError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = "MfcError";
  }
}

/** Validation failures share one message shape: "Validation failed: <what>". */
export function invalid(code: ErrorCode, what: string, details?: Record<string, unknown>): MfcError {
  return new MfcError(code, `Validation failed: ${what}`, details);
}
