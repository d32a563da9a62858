/**
 * The one registry of error codes (SPEC §5). Codes are stable and never renamed; `docs/error-codes.md`
 * documents each one and a test checks that every code here appears there.
 */
export const ERROR_CODES = {
  E_BAD_REQUEST: { exit: 1, summary: "The request line is not valid JSON or not a JSON object." },
  E_TOO_LARGE: { exit: 1, summary: "The request line is longer than max_request_bytes; the connection is closed." },
  E_UNKNOWN_ACTION: { exit: 1, summary: "The action is not one the daemon knows." },
  E_INVALID_ARGUMENT: { exit: 1, summary: "A field is missing, extra, or of the wrong type or range." },
  E_INVALID_ADDRESS: { exit: 1, summary: "An IPv4 address is malformed, or not a multicast group / unicast source as required." },
  E_IF_NOT_FOUND: { exit: 1, summary: "A named network interface does not exist." },
  E_VIF_EXISTS: { exit: 1, summary: "The interface already has an explicit VIF (vif add)." },
  E_VIF_NOT_FOUND: { exit: 1, summary: "The interface has no VIF." },
  E_VIF_IN_USE: { exit: 1, summary: "Routes still use the VIF; delete them first." },
  E_VIF_LIMIT: { exit: 1, summary: "The change needs more than 32 VIFs (kernel MAXVIFS)." },
  E_MFC_EXISTS: { exit: 1, summary: "A route for this (source, group) already exists; use replace." },
  E_MFC_NOT_FOUND: { exit: 1, summary: "No route for this (source, group)." },
  E_KERNEL: { exit: 1, summary: "A kernel call failed; details name the call and errno; everything was rolled back." },
  E_STATE_WRITE: { exit: 1, summary: "The state file could not be saved; the kernel changes were rolled back." },
  E_PERMISSION_DENIED: { exit: 3, summary: "The peer is not root, the daemon's user, or a member of socket_group." },
  E_INTERNAL: { exit: 1, summary: "An unexpected daemon error; the request was not applied." },
  // Raised by the CLI itself, never sent by the daemon.
  E_USAGE: { exit: 2, summary: "The command line does not follow the grammar; the daemon was not contacted." },
  E_UNREACHABLE: { exit: 3, summary: "The daemon cannot be reached: no socket, connection refused, or permission denied." },
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
