/**
 * The voxgate error-code catalogue: every error a client can see has one stable `code`, an HTTP
 * status (for handshake/HTTP failures) and a WebSocket close code (when the error ends a session).
 *
 * Codes are the SLNG unified error codes of shared/spec/protocols.md §1.3 ("Error codes" table),
 * so that clients written for SLNG (PipeCat, LiveKit) map them unchanged. Close codes follow RFC 6455
 * §7.4.1 and the conventions in §5 of the same spec (1008 for policy violations such as audio
 * before `init`).
 */

/** Stable machine-readable error codes (protocols.md §1.3). */
export type ErrorCode =
  | 'auth_error'
  | 'config_error'
  | 'invalid_request'
  /** Audio that cannot be decoded (corrupt, truncated, or not the declared codec/container). */
  | 'invalid_audio'
  | 'payload_too_large'
  | 'rate_limit'
  | 'idle_timeout_exceeded'
  | 'max_connection_duration_exceeded'
  | 'not_found'
  | 'backpressure'
  | 'provider_error'
  | 'internal_error';

/** WebSocket close codes used by voxgate (RFC 6455 §7.4.1). */
export const CloseCode = {
  /** Normal closure: `close` drained, or the client asked. */
  NORMAL: 1000,
  /** Server shutting down. */
  GOING_AWAY: 1001,
  /** Policy violation: audio before `init`, invalid `init`, timeouts. */
  POLICY: 1008,
  /** A frame larger than the hard frame limit. */
  TOO_BIG: 1009,
  /** Unexpected server failure. */
  INTERNAL: 1011,
  /** Over capacity; retry later. */
  TRY_AGAIN_LATER: 1013,
} as const;

interface ErrorSpec {
  /** HTTP status when the error is returned over HTTP (handshake or REST). */
  http: number;
  /** WebSocket close code when the error ends a session; `null` when the session survives it. */
  close: number | null;
}

/** Catalogue: code → HTTP status and session effect. */
export const ERRORS: Record<ErrorCode, ErrorSpec> = {
  auth_error: { http: 401, close: CloseCode.POLICY },
  config_error: { http: 400, close: CloseCode.POLICY },
  invalid_request: { http: 400, close: null },
  // Deepgram /v1/listen maps this to close 1008 `DATA-0000` (protocols.md §2.5, §5).
  invalid_audio: { http: 400, close: CloseCode.POLICY },
  payload_too_large: { http: 413, close: null },
  rate_limit: { http: 429, close: CloseCode.TRY_AGAIN_LATER },
  idle_timeout_exceeded: { http: 408, close: CloseCode.POLICY },
  max_connection_duration_exceeded: { http: 408, close: CloseCode.POLICY },
  not_found: { http: 404, close: CloseCode.POLICY },
  backpressure: { http: 503, close: null },
  provider_error: { http: 502, close: CloseCode.INTERNAL },
  internal_error: { http: 500, close: CloseCode.INTERNAL },
};

/**
 * An error that carries a catalogue code. Thrown inside voxgate and translated by each dialect
 * into its own error shape (`error` frame, `Error` frame, close code or HTTP body).
 */
export class VoxgateError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'VoxgateError';
    this.code = code;
  }
  /** HTTP status for this error (catalogue). */
  get httpStatus(): number {
    return ERRORS[this.code].http;
  }
  /** Close code when this error ends a session, or `null` when the session survives. */
  get closeCode(): number | null {
    return ERRORS[this.code].close;
  }
}

/** Normalise anything thrown into a {@link VoxgateError}; unknown errors become `internal_error`. */
export function toVoxgateError(err: unknown): VoxgateError {
  if (err instanceof VoxgateError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code in ERRORS) {
    return new VoxgateError(code as ErrorCode, (err as Error).message, { cause: err });
  }
  return new VoxgateError('internal_error', err instanceof Error ? err.message : String(err), { cause: err });
}

/**
 * Error codes of the SLNG dialects (shared/spec/protocols.md §1.3 "Error codes" table: seed 003's
 * `auth_error`, `config_error`, `rate_limit`, `provider_error`, `backend_connection_failed` from
 * seeds 001/004, and the codes LiveKit's plugin maps). SLNG clients (PipeCat, LiveKit) branch on these.
 */
export type SlngErrorCode =
  | 'auth_error'
  | 'config_error'
  | 'rate_limit'
  | 'provider_error'
  | 'backend_connection_failed'
  | 'invalid_request'
  | 'payload_too_large'
  | 'idle_timeout_exceeded'
  | 'max_connection_duration_exceeded'
  | 'backpressure';

/**
 * The code an SLNG-dialect client sees for a voxgate error (unified and Deepgram-style routes, WebSocket
 * `error`/`Error` frames and SLNG HTTP bodies). voxgate codes outside the SLNG list map to the closest
 * listed one; the detail stays in the message:
 * - `invalid_audio` (undecodable audio) → `invalid_request` (what the client sent is malformed);
 * - `not_found` (unknown model or route) → `invalid_request`;
 * - `internal_error` (the speech engine failed) → `provider_error` (the model behind the route failed).
 * Every other code is already an SLNG code and is returned unchanged.
 * @param code a voxgate {@link ErrorCode}.
 * @returns a code from {@link SlngErrorCode}.
 */
export function slngErrorCode(code: ErrorCode): SlngErrorCode {
  switch (code) {
    case 'invalid_audio':
    case 'not_found':
      return 'invalid_request';
    case 'internal_error':
      return 'provider_error';
    default:
      return code;
  }
}
