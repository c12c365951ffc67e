/**
 * Transport-level protection of the listener (issue 14 #1, #2, #3): what a client costs before its
 * key is checked, and how long it may hold resources without sending anything.
 *
 * - {@link limitConnectionsPerIp}: open TCP connections per client address, enforced at accept time
 *   (before any byte is parsed); excess connections are destroyed at once.
 * - {@link applyServerTimeouts}: node's own `headersTimeout` / `requestTimeout` from the config.
 * - {@link watchBodyIdle}: a request body that stops arriving while the server waits for it is
 *   answered (408) and its connection closed.
 * - {@link jsonBodyParser}: a fastify content-type parser for `application/json` that enforces a byte
 *   limit (declared `Content-Length` first, then while reading) and the JSON shape limits of
 *   src/util/json_guard.ts while the body arrives, chunk by chunk, so no single step blocks the event
 *   loop and nothing oversized or deeply nested reaches `JSON.parse`.
 *
 * Authentication of the HTTP routes happens in each route scope's `onRequest` hook (http_stt.ts,
 * tts_routes.ts), which fastify runs before it reads any of the body, with the one check of every
 * route (`authenticate`, auth.ts); errors are rendered by the catalogue (`renderError`, util/errors.ts).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { HttpConfig } from '../config/config.js';
import { JsonShapeScanner, type JsonShapeLimits } from '../util/json_guard.js';
import { ERRORS, VoxgateError } from '../util/errors.js';

/**
 * Cap the connections one remote address holds open (HTTP keep-alive and upgraded WebSockets alike).
 * A connection over the cap is destroyed before its first byte is read; it costs one accept.
 * @param max connections per address; 0 disables the cap.
 * @param onRefused called once per refused connection (metrics).
 */
export function limitConnectionsPerIp(server: Server, max: number, onRefused?: () => void): void {
  if (max <= 0) return;
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const ip = socket.remoteAddress ?? '?';
    const n = open.get(ip) ?? 0;
    if (n >= max) {
      onRefused?.();
      socket.destroy();
      return;
    }
    open.set(ip, n + 1);
    socket.once('close', () => {
      const left = (open.get(ip) ?? 1) - 1;
      if (left <= 0) open.delete(ip);
      else open.set(ip, left);
    });
  });
}

/** Apply `http.headersTimeoutMs` and `http.requestTimeoutMs` to node's HTTP server. */
export function applyServerTimeouts(server: Server, http: Pick<HttpConfig, 'headersTimeoutMs' | 'requestTimeoutMs'>): void {
  // node requires headersTimeout ≤ requestTimeout when the latter is set.
  server.requestTimeout = http.requestTimeoutMs;
  server.headersTimeout = http.requestTimeoutMs > 0 ? Math.min(http.headersTimeoutMs, http.requestTimeoutMs) : http.headersTimeoutMs;
}

/**
 * Watch a request body: when no byte arrives for `idleMs` while the server is ready to read it
 * (its buffer is not full, i.e. no consumer is applying backpressure), `onStall` runs
 * once. Stops by itself when the body is complete or the connection closes.
 * @param idleMs milliseconds without a byte.
 * @returns a function that stops watching.
 */
export function watchBodyIdle(req: IncomingMessage, idleMs: number, onStall: () => void): () => void {
  const socket = req.socket;
  if (req.complete || !socket) return () => {};
  let lastBytes = socket.bytesRead;
  let lastChange = Date.now();
  const tick = Math.max(10, Math.min(1000, Math.floor(idleMs / 4)));
  const timer = setInterval(() => {
    if (req.complete || req.destroyed || socket.destroyed) return stop();
    const now = Date.now();
    // The server, not the client, is holding the body when the request's buffer is full (a consumer
    // applying backpressure; node has then paused the socket).
    const consumerHolding = req.readableLength >= req.readableHighWaterMark;
    if (socket.bytesRead !== lastBytes || consumerHolding) {
      lastBytes = socket.bytesRead;
      lastChange = now;
      return;
    }
    if (now - lastChange >= idleMs) {
      stop();
      onStall();
    }
  }, tick);
  timer.unref();
  const stop = (): void => {
    clearInterval(timer);
    req.off('end', stop);
    req.off('close', stop);
  };
  req.once('end', stop);
  req.once('close', stop);
  return stop;
}

/**
 * Answer a stalled body: `send` writes the route's 408 error (when nothing was sent yet), then the
 * connection is closed so the unread body is never parsed as a next request.
 */
export function answerStall(req: FastifyRequest, reply: FastifyReply, send: () => void): void {
  if (!reply.sent && !reply.raw.headersSent) {
    reply.header('connection', 'close');
    send();
  }
  const socket = req.raw.socket;
  if (reply.raw.writableFinished) socket?.destroySoon?.();
  else reply.raw.once('finish', () => socket?.destroySoon?.());
  // A client that does not read the 408 either: do not wait for it.
  setTimeout(() => socket?.destroy(), 2000).unref();
}

/**
 * Close a connection whose request body was not read (an early 401/413/400 with `Connection: close`)
 * without losing the answer: node would close the socket as soon as the response is written, and
 * closing with unread client bytes makes the kernel reset the connection — the client then often
 * never sees the error. Instead the server half-closes (FIN after the response) and reads and discards
 * what the client is still sending, at most `maxBytes` or `maxMs`, then closes. Nothing is parsed.
 * Call before the response is sent. Defaults: 16 MiB, 2000 ms (discarded, never held or parsed; callers pass less for requests without a key).
 */
export function lingerClose(req: IncomingMessage, res: ServerResponse, maxBytes = 16 * 1024 * 1024, maxMs = 2000): void {
  const socket = req.socket as (Socket & { destroySoon?: () => void }) | null;
  if (!socket || req.complete || socket.destroyed) return;
  // node calls destroySoon() after a `Connection: close` response: make that a half-close.
  socket.destroySoon = () => {
    if (socket.writable) socket.end();
  };
  res.once('finish', () => {
    if (socket.destroyed) return;
    const timer = setTimeout(() => socket.destroy(), maxMs);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
    socket.once('end', () => socket.destroy()); // the client finished (or gave up) sending
    let discarded = 0;
    req.unpipe();
    req.removeAllListeners('data');
    req.on('data', (chunk: Buffer) => {
      discarded += chunk.length;
      if (discarded > maxBytes) socket.destroy();
    });
    req.on('error', () => {});
    req.resume();
  });
}

/** Error raised by {@link jsonBodyParser}: carries the catalogue's HTTP status as `statusCode` (what fastify reads). */
function bodyError(code: 'payload_too_large' | 'invalid_request', message: string): VoxgateError & { statusCode: number } {
  return Object.assign(new VoxgateError(code, message), { statusCode: ERRORS[code].http });
}

/**
 * A fastify content-type parser for JSON bodies, bounded in bytes and shape.
 * @param limitFor the byte limit for this request (e.g. by route).
 * @param shape nesting-depth and token limits (`limits.maxJsonDepth`, `limits.maxJsonTokens`).
 * @returns a parser for `addContentTypeParser('application/json', …)`. Errors: `payload_too_large`
 *   (413) over the limit — declared or while reading —, `invalid_request` (400) for malformed JSON or
 *   a document over the shape limits. On an error the rest of the body is not read (the reply closes
 *   the connection).
 */
export function jsonBodyParser(
  limitFor: (req: FastifyRequest) => number,
  shape: JsonShapeLimits,
): (req: FastifyRequest, payload: IncomingMessage, done: (err: Error | null, body?: unknown) => void) => void {
  return (req, payload, done) => {
    const limit = limitFor(req);
    const declared = Number(req.headers['content-length']);
    let finished = false;
    const finish = (err: Error | null, body?: unknown): void => {
      if (finished) return;
      finished = true;
      payload.off('data', onData);
      payload.off('end', onEnd);
      payload.off('error', onError);
      if (err) payload.pause(); // the error reply closes the connection (the body is not read further)
      done(err, body);
    };
    const scanner = new JsonShapeScanner(shape);
    const chunks: Buffer[] = [];
    let bytes = 0;
    const onData = (chunk: Buffer): void => {
      bytes += chunk.length;
      if (bytes > limit) return finish(bodyError('payload_too_large', `the JSON body exceeds the ${limit}-byte limit for JSON on this route`));
      const problem = scanner.push(chunk);
      if (problem) return finish(bodyError('invalid_request', `invalid JSON body: ${problem}`));
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      const text = Buffer.concat(chunks, bytes).toString('utf8');
      if (text.trim() === '') return finish(null, undefined);
      try {
        finish(null, JSON.parse(text));
      } catch (err) {
        finish(bodyError('invalid_request', `malformed JSON body: ${(err as Error).message.slice(0, 200)}`));
      }
    };
    const onError = (err: Error): void => finish(err);
    if (Number.isFinite(declared) && declared > limit) {
      finish(bodyError('payload_too_large', `the JSON body is ${declared} bytes, over the ${limit}-byte limit for JSON on this route`));
      return;
    }
    payload.on('data', onData);
    payload.on('end', onEnd);
    payload.on('error', onError);
  };
}
