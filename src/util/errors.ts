/**
 * The voxgate error-code catalogue: every error a client can see has one stable `code`, an HTTP
 * status (for handshake/HTTP failures) and a WebSocket close code (when the error ends a session).
 *
 * Codes are the SLNG unified error codes of shared/spec/protocols.md §1.3 ("Error codes" table),
 * so that clients written for SLNG (PipeCat, LiveKit) map them unchanged. Close codes follow RFC 6455
 * §7.4.1 and the conventions in §5 of the same spec (1008 for policy violations such as audio
 * before `init`).
 *
 * One renderer per dialect family ({@link renderError}) turns a {@link VoxgateError} into the HTTP
 * status, headers and JSON body a client of that family reads — like fastify's lib/error-handler.js,
 * one place decides the reply; the routes only say which family they speak.
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
  | 'internal_error'
  /** The server is draining (shutting down) and takes no new work; retry shortly (issue 14 item 4). */
  | 'unavailable'
  /**
   * No backend of the route could be reached (every candidate refused, timed out, answered 5xx or
   * failed mid-stream and no other was left). Message: `Failed to connect to backend: <reason>`
   * (seed 001 shape, protocols.md §1.4; issue 10 part 2 "Failover").
   */
  | 'backend_connection_failed';

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

/**
 * A WebSocket close on Deepgram's own routes: the close code and Deepgram's reason tag
 * (`DATA-0000`, `NET-0001`, `BIG-0000`, …; protocols.md §2.5 for `/v1/listen`, §3 for `/v1/speak`).
 */
export interface DeepgramClose {
  /** RFC 6455 close code. */
  code: number;
  /** Deepgram's reason tag, the start of the close reason. */
  tag: string;
}

/** One catalogue entry: how an {@link ErrorCode} appears on each wire. */
export interface ErrorSpec {
  /** HTTP status when the error is returned over HTTP (handshake refusal or REST). */
  http: number;
  /**
   * WebSocket close code when the error ends a session of the SLNG and smallest.ai dialects
   * (unified, Deepgram-style, Lightning/Pulse); `null` when the session survives it. Deepgram's own
   * routes close with {@link ErrorSpec.deepgramListenClose} / {@link ErrorSpec.deepgramSpeakClose}.
   */
  close: number | null;
  /**
   * Deepgram's `err_code` (Deepgram family bodies, protocols.md §2.1, §3). Upper-case codes and
   * `"Bad Request"` are Deepgram's own where its errors reference gives one (`INVALID_AUTH`,
   * `PAYLOAD_TOO_LARGE`, `TOO_MANY_REQUESTS`, `SERVICE_UNAVAILABLE`, `"Bad Request"` for malformed
   * bodies, undecodable audio and text with no characters); see {@link ErrorSpec.deepgramDocumented}.
   */
  deepgram: string;
  /** True when {@link ErrorSpec.deepgram} is one Deepgram's documentation gives; false when voxgate chose it in Deepgram's style. */
  deepgramDocumented: boolean;
  /** `Retry-After` seconds sent with the HTTP refusal, when a retry is expected to succeed soon. */
  retryAfterS?: number;
  /** Close of a `/v1/listen` session this error ends (§2.5; reason `<tag>: <detail>`). */
  deepgramListenClose: DeepgramClose;
  /** Close of a `/v1/speak` session this error ends (§3; reason = the tag). */
  deepgramSpeakClose: DeepgramClose;
}

/** Deepgram close shorthands (protocols.md §2.5, §3). */
const DG = {
  DATA: { code: CloseCode.POLICY, tag: 'DATA-0000' },
  NET0: { code: CloseCode.INTERNAL, tag: 'NET-0000' },
  NET1: { code: CloseCode.INTERNAL, tag: 'NET-0001' },
  NET2: { code: CloseCode.INTERNAL, tag: 'NET-0002' },
  NET3: { code: CloseCode.INTERNAL, tag: 'NET-0003' },
  BIG: { code: CloseCode.TOO_BIG, tag: 'BIG-0000' },
} as const;

/** Catalogue: code → HTTP status, close code and Deepgram `err_code` (the one place that decides them). */
export const ERRORS: Record<ErrorCode, ErrorSpec> = {
  auth_error: { http: 401, close: CloseCode.POLICY, deepgram: 'INVALID_AUTH', deepgramDocumented: true, deepgramListenClose: DG.DATA, deepgramSpeakClose: DG.NET0 },
  config_error: { http: 400, close: CloseCode.POLICY, deepgram: 'INVALID_QUERY_PARAMETER', deepgramDocumented: true, deepgramListenClose: DG.DATA, deepgramSpeakClose: DG.DATA },
  invalid_request: { http: 400, close: null, deepgram: 'Bad Request', deepgramDocumented: true, deepgramListenClose: DG.DATA, deepgramSpeakClose: DG.DATA },
  // Deepgram /v1/listen maps this to close 1008 `DATA-0000` (protocols.md §2.5, §5).
  invalid_audio: { http: 400, close: CloseCode.POLICY, deepgram: 'Bad Request', deepgramDocumented: true, deepgramListenClose: DG.DATA, deepgramSpeakClose: DG.NET0 },
  payload_too_large: { http: 413, close: null, deepgram: 'PAYLOAD_TOO_LARGE', deepgramDocumented: true, deepgramListenClose: DG.BIG, deepgramSpeakClose: DG.BIG },
  rate_limit: {
    http: 429,
    close: CloseCode.TRY_AGAIN_LATER,
    deepgram: 'TOO_MANY_REQUESTS',
    deepgramDocumented: true,
    retryAfterS: 1,
    deepgramListenClose: { code: CloseCode.TRY_AGAIN_LATER, tag: 'NET-0000' },
    deepgramSpeakClose: { code: CloseCode.TRY_AGAIN_LATER, tag: 'rate_limit' },
  },
  idle_timeout_exceeded: { http: 408, close: CloseCode.POLICY, deepgram: 'REQUEST_TIMEOUT', deepgramDocumented: false, deepgramListenClose: DG.NET1, deepgramSpeakClose: DG.NET1 },
  max_connection_duration_exceeded: { http: 408, close: CloseCode.POLICY, deepgram: 'REQUEST_TIMEOUT', deepgramDocumented: false, deepgramListenClose: DG.NET3, deepgramSpeakClose: DG.NET3 },
  not_found: { http: 404, close: CloseCode.POLICY, deepgram: 'NOT_FOUND', deepgramDocumented: false, deepgramListenClose: DG.DATA, deepgramSpeakClose: DG.NET0 },
  backpressure: { http: 503, close: null, deepgram: 'SERVICE_UNAVAILABLE', deepgramDocumented: false, deepgramListenClose: DG.DATA, deepgramSpeakClose: DG.NET2 },
  provider_error: { http: 502, close: CloseCode.INTERNAL, deepgram: 'INTERNAL_SERVER_ERROR', deepgramDocumented: false, deepgramListenClose: DG.NET0, deepgramSpeakClose: DG.NET0 },
  internal_error: { http: 500, close: CloseCode.INTERNAL, deepgram: 'INTERNAL_SERVER_ERROR', deepgramDocumented: false, deepgramListenClose: DG.NET0, deepgramSpeakClose: DG.NET0 },
  unavailable: { http: 503, close: CloseCode.GOING_AWAY, deepgram: 'SERVICE_UNAVAILABLE', deepgramDocumented: false, retryAfterS: 5, deepgramListenClose: DG.DATA, deepgramSpeakClose: DG.NET0 },
  backend_connection_failed: { http: 502, close: CloseCode.INTERNAL, deepgram: 'BAD_GATEWAY', deepgramDocumented: false, retryAfterS: 5, deepgramListenClose: DG.NET0, deepgramSpeakClose: DG.NET0 },
};

/**
 * Codes that another backend may not repeat: a failure with one of these is worth failing over
 * (issue 10 part 2 "Failover": refused/timed-out/5xx handshakes, abnormal closes, silence). Auth and
 * config errors from a backend are the client's to see, never failed over.
 */
const RETRYABLE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['provider_error', 'internal_error', 'unavailable', 'backend_connection_failed', 'rate_limit', 'backpressure', 'idle_timeout_exceeded']);

/**
 * An error that carries a catalogue code. Thrown inside voxgate and translated by each dialect
 * into its own error shape (`error` frame, `Error` frame, close code or HTTP body).
 */
export class VoxgateError extends Error {
  readonly code: ErrorCode;
  /**
   * True when the same request may succeed on another backend (failover, issue 10 part 2); false for
   * errors the client must see (auth, config, bad input). Default: from the code (provider, internal,
   * unavailable, backend_connection_failed, rate_limit, backpressure, idle timeout → true).
   */
  readonly retryable: boolean;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options);
    this.name = 'VoxgateError';
    this.code = code;
    this.retryable = options?.retryable ?? RETRYABLE_CODES.has(code);
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
 * - `internal_error` (the speech engine failed) → `provider_error` (the model behind the route failed);
 * - `unavailable` (the server is draining) → `backpressure` (SLNG's 503: retry shortly, elsewhere).
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
    case 'unavailable':
      return 'backpressure';
    default:
      return code;
  }
}

/**
 * The dialect families, each with one error shape (protocols.md §1.7, §2.1, §3, §4.1):
 * - `slng`: the SLNG routes (unified and Deepgram-style STT, unified TTS, their bridges and HTTP
 *   routes, `/v1/status`, `/metrics`) — `{error, message, statusCode, status, request_id?}`, SLNG codes only;
 * - `deepgram`: `/v1/listen` and `/v1/speak` (WebSocket and REST) — `{err_code, err_msg, request_id}`
 *   with `dg-request-id` and `dg-error` headers;
 * - `smallest`: the smallest.ai Lightning/Pulse routes — `{status: "error", error: {message, code}}`.
 */
export type DialectFamily = 'slng' | 'deepgram' | 'smallest';

/** An error rendered for one dialect family: what goes on the wire. */
export interface RenderedError {
  /** HTTP status (from the catalogue). */
  status: number;
  /** Response headers, values printable ASCII (`WWW-Authenticate`, `Retry-After`, `dg-*`). */
  headers: Record<string, string>;
  /** JSON body. */
  body: Record<string, unknown>;
}

/** What a route adds to a rendered error. */
export interface RenderOptions {
  /** Request id (a UUID); Deepgram bodies always carry one (made here when absent), SLNG bodies when given. */
  requestId?: string;
  /** More body fields (e.g. `models` listing the catalogue on a 404); never replace the family's own fields. */
  extra?: Record<string, unknown>;
}

/** Longest `dg-error` header value, characters. */
const DG_ERROR_MAX = 200;

/**
 * `text` as an HTTP header value: printable ASCII only (Node refuses others). Unicode dashes become
 * `-`, other characters and line breaks a space; at most `max` characters.
 */
export function headerSafe(text: string, max = DG_ERROR_MAX): string {
  return text
    .replace(/[\u2010-\u2015]/g, '-')
    .replace(/[^\x20-\x7e]/g, ' ')
    .slice(0, max);
}

/** `WWW-Authenticate` scheme of each family's 401 (Deepgram keys are sent as `Token`). */
const AUTH_SCHEME: Record<DialectFamily, string> = { slng: 'Bearer', deepgram: 'Token', smallest: 'Bearer' };

/**
 * Render an error in a dialect family's shape (see {@link DialectFamily}). Status, `Retry-After` and
 * Deepgram's `err_code` come from {@link ERRORS}; a 401 carries `WWW-Authenticate`. Pure, never throws.
 * @param family the route's dialect family.
 * @param err the error; its `code` must be a catalogue code.
 * @param opts request id and extra body fields.
 * @returns status, headers and body ready to send (as an HTTP response or a refused WebSocket upgrade).
 */
export function renderError(family: DialectFamily, err: VoxgateError, opts: RenderOptions = {}): RenderedError {
  const spec = ERRORS[err.code];
  const status = spec.http;
  const headers: Record<string, string> = {};
  if (status === 401) headers['WWW-Authenticate'] = AUTH_SCHEME[family];
  if (spec.retryAfterS !== undefined) headers['Retry-After'] = String(spec.retryAfterS);
  let own: Record<string, unknown>;
  switch (family) {
    case 'deepgram': {
      const requestId = opts.requestId ?? globalThis.crypto.randomUUID(); // Web Crypto: this module is also bundled into the browser SDK (src/client)
      headers['dg-request-id'] = requestId;
      headers['dg-error'] = headerSafe(err.message);
      own = { err_code: spec.deepgram, err_msg: err.message, request_id: requestId };
      break;
    }
    case 'smallest':
      own = { status: 'error', error: { message: err.message, code: err.code } };
      break;
    case 'slng':
      own = { error: slngErrorCode(err.code), message: err.message, statusCode: status, status };
      if (opts.requestId) own.request_id = opts.requestId;
      break;
  }
  const body: Record<string, unknown> = { ...own };
  for (const [k, v] of Object.entries(opts.extra ?? {})) if (!(k in own)) body[k] = v;
  return { status, headers, body };
}
