/**
 * The one way voxgate refuses a request (issue 10 Part 1, "one refusal path"): an error from the
 * catalogue (src/util/errors.ts), rendered for the route's dialect family by `renderError`, written
 * either on a raw upgrade socket ({@link abortHandshake}, like ws's `abortHandshake` in
 * lib/websocket-server.js) or as a fastify reply ({@link sendError}).
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { VoxgateError as VoxgateErrorClass, type DialectFamily, type RenderedError, type RenderOptions, type VoxgateError } from '../util/errors.js';

/**
 * Refuse a WebSocket upgrade: write `HTTP/1.1 <status> <reason>`, the rendered headers,
 * `Content-Type: application/json`, `Content-Length`, `Connection: close` and the JSON body on the
 * raw socket, then end it (destroyed when no longer writable). Counts nothing (the caller counts the
 * refusal once); never throws.
 * @param socket the upgrade request's socket (nothing was written to it yet).
 * @param r the rendered error (status, headers, body).
 */
export function abortHandshake(socket: Duplex, r: RenderedError): void {
  const payload = JSON.stringify(r.body);
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    'Content-Length': String(Buffer.byteLength(payload)),
    Connection: 'close',
    ...r.headers,
  };
  const head = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}`)
    .join('\r\n');
  if (socket.writable) socket.end(`HTTP/1.1 ${r.status} ${STATUS_CODES[r.status] ?? 'Error'}\r\n${head}\r\n\r\n${payload}`);
  else socket.destroy();
}

/**
 * Answer an HTTP request with a rendered error (status, headers, JSON body). Does nothing when the
 * reply was already sent (e.g. a stalled body already got its 408).
 * @param headers more headers for this route (e.g. `X-Request-Id`, `Connection: close`).
 * @returns the reply (for fastify hooks and handlers to return).
 */
export function sendError(reply: FastifyReply, r: RenderedError, headers: Record<string, string> = {}): FastifyReply {
  if (reply.sent || reply.raw.headersSent) return reply;
  return reply
    .code(r.status)
    .headers({ ...r.headers, ...headers })
    .type('application/json')
    .send(r.body);
}

/**
 * The gateway's refusal of a WebSocket upgrade (one per gateway, shared by the STT, compatibility and
 * TTS upgrades): renders `err` for `family`, counts it once in `voxgate_upgrades_rejected_total`,
 * logs it (URL redacted) and writes it with {@link abortHandshake}.
 * @param url the request URL when it could be parsed (for the log).
 */
export type UpgradeRefuser = (socket: Duplex, family: DialectFamily, err: VoxgateError, url: URL | null, opts?: RenderOptions) => void;

/**
 * Anything fastify hands an error handler, as a catalogue error: a {@link VoxgateError} as is; a
 * fastify/plugin error with a 4xx `statusCode` → `payload_too_large` (413), `idle_timeout_exceeded`
 * (408) or `invalid_request` with its message (never a 500 for what the client sent); anything else
 * `internal_error` with the message "internal error" (the detail is for the log, not the client).
 */
export function fastifyError(err: Error & { statusCode?: number }): VoxgateError {
  if (err instanceof VoxgateErrorClass) return err;
  const s = err.statusCode;
  if (typeof s === 'number' && s >= 400 && s < 500) {
    return new VoxgateErrorClass(s === 413 ? 'payload_too_large' : s === 408 ? 'idle_timeout_exceeded' : 'invalid_request', err.message, { cause: err });
  }
  return new VoxgateErrorClass('internal_error', 'internal error', { cause: err });
}
