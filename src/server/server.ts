/**
 * The voxgate listener: one HTTP server (fastify) that also accepts WebSocket upgrades (`ws`) on
 * the streaming STT routes (issue #2; shared/spec/protocols.md §1.1–1.3, §5, §6).
 *
 * Upgrade pipeline, in this order, before any session or engine resource exists:
 *   1. route → 404 JSON listing the available models when the model is unknown;
 *   2. auth  → 401 JSON when the key is missing, malformed, unknown or revoked;
 *   3. backend selection (router.ts, backends.ts) → 400 JSON for BYOK on a `slng/` route, or a region /
 *      world part that is unknown or not offered for the model (the body lists the valid ones);
 *   4. capacity → 429 JSON (+ `Retry-After`) when the selected backends have no free stream (issue 9 §3);
 *   5. upgrade → an {@link SttSession} drives the socket, on a `FailoverSttEngine` over the candidates.
 * Every refusal (of STT, compatibility and TTS upgrades) goes through one path, `refuseUpgrade`:
 * the catalogue error rendered for the route's dialect family (`renderError`, util/errors.ts), counted
 * once, logged, written by `abortHandshake` (refuse.ts). Every route authenticates with `authenticate`.
 *
 * HTTP routes: `GET /v1/models` (catalogue with capabilities, regions, world parts and backend
 * count), `GET /healthz`, `GET /v1/status` (authenticated; sessions, decoder-pool counters and each
 * backend's health, region and world part).
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import type { VoxgateConfig } from '../config/config.js';
import type { SttEngine } from '../engines/stt/types.js';
import { STT_DIALECT_IMPLS } from '../protocol/index.js';
import { SttSession } from '../session/stt_session.js';
import type { ApiKeyStore } from '../store/types.js';
import type { UsageMeter } from '../store/usage.js';
import { admitQuota, meterUsage } from './admission.js';
import { registerUsageRoute } from './usage_routes.js';
import { CloseCode, renderError, toVoxgateError, VoxgateError, type DialectFamily } from '../util/errors.js';
import type { KeyInfo } from '../store/keys.js';
import { randomUUID } from 'node:crypto';
import type { SttDialect, SttInitRequest } from '../protocol/events.js';
import { authenticate, redactUrl, selectAuthSubprotocol } from './auth.js';
import { abortHandshake, fastifyError, sendError, type UpgradeRefuser } from './refuse.js';
import { compatProtocol, matchCompatRoute, type CompatRoute } from './compat_routes.js';
import { GatewayMetrics } from './metrics.js';
import { matchSttRoute } from './routes.js';
import { listingBase } from './catalogue.js';
import { playgroundPlugin } from './static.js';
import { httpSttPlugin } from './http_stt.js';
import { applyServerTimeouts, limitConnectionsPerIp } from './guard.js';
import { bindSocket, sttSocketTransport, WS_SERVER_OPTIONS } from '../session/ws_transport.js';
// TTS (issue #4): routes live in tts_routes.ts; the edits marked "TTS" below only wire them in.
import { createTtsGateway } from './tts_routes.js';
import { modelLanguageRefusal } from '../config/model_language.js';
import type { TtsEngine } from '../engines/tts/types.js';
import { errorExtra } from './backends.js';
import { BackendRouter, type Selection } from './router.js';
import type { FailoverSttEngine } from '../engines/stt/failover.js';
import { listedCapabilities } from '../engines/stt/diarizing.js';
import { LiveState, type Lease, type SessionMeta } from '../state/live.js';
import { WorkerDirectory } from '../state/workers.js';
import { HealthShare } from '../state/health_share.js';
import { admitLive, bindLease } from './admission.js';

/** Dependencies of the gateway. */
export interface GatewayDeps {
  config: VoxgateConfig;
  /** Initialised engines keyed by engine id (see `createSttEngines`). */
  engines: Map<string, SttEngine>;
  /** TTS: initialised TTS engines keyed by engine id (see `createTtsEngines`); none = no TTS routes. */
  ttsEngines?: Map<string, TtsEngine>;
  /** Key store (SQLite or Postgres, issue 12); only `verifyKey` and the usage reads are used. */
  keys: ApiKeyStore;
  /** Usage metering and durable quotas (issue 12); absent = nothing metered, no quotas enforced. */
  meter?: UsageMeter;
  /** Live per-key limits and session registry (issue 12); default: made from `config.state` (in memory without `redisUrl`) and closed with the gateway. */
  live?: LiveState;
  log: Logger;
}

/** A running gateway. */
export interface Gateway {
  /** The underlying fastify instance (HTTP routes). */
  app: FastifyInstance;
  /** Start listening; resolves to the bound port. Port 0 picks a free one. */
  listen(port: number, host: string): Promise<number>;
  /** Open streaming sessions. */
  sessionCount(): number;
  /** Live per-key limits and the session registry (issue 12). */
  live: LiveState;
  /** Close sessions with 1001, stop listening. Engines are left to the caller. */
  close(): Promise<void>;
  /**
   * Graceful shutdown (issue #14 item 4), see {@link DrainReport}: from the call on, upgrades get
   * HTTP 503 in the route's dialect, new HTTP requests 503 and `GET /healthz` 503
   * `{"status":"draining"}`; every live session drains (`SttSession.drain`, `TtsSession.drain`:
   * pending finals and closing messages, then close 1001); in-flight HTTP requests finish; then the
   * listener closes. Everything still open at `deadlineMs` is cut. Engines are left to the caller.
   * Idempotent: a second call returns the first call's promise.
   * @param deadlineMs milliseconds (≥ 0) after which remaining sessions and connections are closed.
   */
  drain(deadlineMs: number): Promise<DrainReport>;
}

/** What a {@link Gateway.drain} did. */
export interface DrainReport {
  /** STT and TTS WebSocket sessions live when the drain began. */
  sessions: number;
  /** Milliseconds from the call until every session was closed. */
  sessionsMs: number;
  /** Milliseconds from the call until the listener was closed (in-flight HTTP requests done). */
  totalMs: number;
  /** True when the deadline cut sessions or connections. */
  deadlineReached: boolean;
}

/** Paths that keep answering during a drain (`/healthz` answers 503 `draining`; `/metrics` stays readable). */
const DRAIN_EXEMPT = new Set(['/healthz', '/metrics']);
const DRAIN_MESSAGE = 'server is shutting down; retry shortly (another instance may serve you)';

/**
 * The dialect family of an HTTP path, for errors answered before a route runs (drain, 404s):
 * Deepgram's `/v1/listen` and `/v1/speak`, the smallest.ai routes, else SLNG (protocols.md §1.7).
 */
function familyOfPath(pathname: string): DialectFamily {
  const p = pathname.replace(/\/+$/, '');
  if (p === '/v1/listen' || p === '/v1/speak') return 'deepgram';
  const compat = compatProtocol(p);
  return compat && compat !== 'deepgram' ? 'smallest' : 'slng';
}

/** Build the gateway (not yet listening). */
export function createGateway(deps: GatewayDeps): Gateway {
  const { config, engines, keys, log, meter } = deps;
  // Per-request logging is off: request URLs may carry `?token=` keys, which must never be logged.
  const app: FastifyInstance = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
  });
  const sessions = new Set<SttSession>();
  /** The engine each open session runs on (for the capacity check at the upgrade). */
  const sessionEngines = new Map<SttSession, FailoverSttEngine>();
  /** Set by drain() (issue #14 item 4): refuse new work, report `draining` on /healthz. */
  let draining = false;
  let drainPromise: Promise<DrainReport> | null = null;
  const metrics = new GatewayMetrics(engines, () => sessions.size);
  // Issue 12: live per-key limits and session registry (Redis when configured), registered workers.
  const live =
    deps.live ??
    new LiveState({ redisUrl: config.state?.redisUrl, keyPrefix: config.state?.keyPrefix, leaseTtlMs: config.state?.leaseTtlMs, log, registry: metrics.registry });
  const statePrefix = config.state?.keyPrefix ?? 'voxgate:';
  const workers = live.link ? new WorkerDirectory(live.link, statePrefix) : undefined;
  /** The one backend selection step of every STT and TTS route, with the gateway's one BackendHealth. */
  const router = new BackendRouter({
    config,
    sttEngines: engines,
    ttsEngines: deps.ttsEngines ?? new Map(),
    registry: metrics.registry,
    workers,
    onEvent: (e) => log.warn({ request_id: e.requestId, from: e.from, to: e.to, code: e.reason.code }, `backend failed: ${e.reason.message}`),
  });
  // Backend health shared by every gateway on the Redis (issue 12).
  if (live.link) new HealthShare(live.link, router.health, statePrefix, live.instanceId, log);
  // issue 14 #2: connections per client address (before any byte is parsed) and node's own timeouts.
  limitConnectionsPerIp(app.server, config.http.maxConnectionsPerIp, () => metrics.refusedConnections.inc());
  applyServerTimeouts(app.server, config.http);
  const wss = new WebSocketServer({
    noServer: true,
    // Frames between maxFrameBytes and twice that get a `payload_too_large` error frame from the
    // session (which survives); larger ones cannot be skipped: ws stops reading them and the session
    // answers payload_too_large in its dialect, then closes 1009 (session/ws_transport.ts).
    maxPayload: config.limits.maxFrameBytes * 2,
    ...WS_SERVER_OPTIONS, // larger frames and invalid UTF-8 are answered in-dialect (session/ws_transport.ts)
    handleProtocols: selectAuthSubprotocol,
  });
  // Deepgram clients read `dg-request-id` from the handshake response (§2.1).
  wss.on('headers', (headers, req) => {
    const id = (req as IncomingMessage & { voxgateRequestId?: string }).voxgateRequestId;
    if (id) headers.push(`dg-request-id: ${id}`);
  });
  /** The one refusal path of every upgrade (STT, compatibility and TTS routes): render, count once, log, write. */
  const refuseUpgrade: UpgradeRefuser = (socket, family, err, url, opts) => {
    const r = renderError(family, err, { ...opts, extra: errorExtra(err, opts?.extra) });
    metrics.rejectedUpgrades.inc({ status: String(r.status) });
    log.info({ url: url ? redactUrl(url) : undefined, status: r.status, code: err.code }, `upgrade refused: ${err.message}`);
    abortHandshake(socket, r);
  };
  const drainError = () => new VoxgateError('unavailable', DRAIN_MESSAGE);
  // TTS: HTTP routes, upgrade handling and model listing for /v1/tts, /v1/bridges/unmute/tts, /v1/speak.
  const tts = createTtsGateway({
    app,
    config,
    engines: deps.ttsEngines ?? new Map(),
    keys,
    meter,
    log,
    registry: metrics.registry,
    wss,
    refuseUpgrade,
    drainError,
    router,
    live,
  });

  const modelList = () =>
    config.stt.models.map((m) => {
      const e = engines.get(m.backends?.[0] ?? m.engine)!;
      return {
        ...listingBase('stt', m),
        // Diarization: every model diarizes, by its backend or by the embedded diarizer (issue 13).
        // (As failover.ts: the backend labels only when every backend of the model diarizes.)
        capabilities: listedCapabilities({ ...e.capabilities, diarization: (m.backends ?? [m.engine]).every((id) => engines.get(id)?.capabilities.diarization === true) }),
        ...router.placement(m),
      };
    });

  void app.register(playgroundPlugin); // issue #5: browser playground at `/` (src/server/static.ts)
  // issue #3: pre-recorded STT — POST /v1/listen, /v1/stt/{model}, /v1/bridges/unmute/stt/{model} (src/server/http_stt.ts)
  void app.register(httpSttPlugin, { config, router, keys, meter, log, live });
  // issue 12: GET /v1/usage — the calling key's own usage and quotas (usage_routes.ts).
  registerUsageRoute(app, { keys, meter, log, registry: metrics.registry });
  // Unknown HTTP routes, and errors outside the route scopes (which have their own handlers), are
  // answered from the catalogue in the path's dialect family (fastify's lib/error-handler.js: one place).
  app.setNotFoundHandler((req, reply) => {
    const pathname = req.url.split('?', 1)[0]!;
    return sendError(reply, renderError(familyOfPath(pathname), new VoxgateError('not_found', `no route ${req.method} ${pathname}`)));
  });
  app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
    const e = fastifyError(err);
    if (e.httpStatus >= 500) log.error({ err }, 'http request failed');
    return sendError(reply, renderError(familyOfPath(req.url.split('?', 1)[0]!), e));
  });
  // Balancers stop sending sessions to a draining instance (rolling restarts, issue 12).
  app.get('/healthz', async (_req, reply) => (draining ? reply.code(503).send({ status: 'draining' }) : { status: 'ok' }));
  // Drain: new HTTP requests are refused before their body is read (in-flight ones finish).
  app.addHook('onRequest', async (req, reply) => {
    if (!draining) return;
    const pathname = req.url.split('?', 1)[0]!;
    if (DRAIN_EXEMPT.has(pathname)) return;
    return sendError(reply, renderError(familyOfPath(pathname), drainError()), { Connection: 'close' });
  });
  app.get('/v1/models', async () => ({ models: [...modelList(), ...tts.modelList()] })); // TTS: + tts entries
  // issue 14 #8: /metrics needs a key unless `metrics.public` (docs/operations.md "Limits and protection").
  app.get('/metrics', async (req, reply) => {
    if (!config.metrics.public) {
      const auth = await authenticate(req.headers, new URL(req.url, 'http://x'), keys);
      if (!auth.ok) return sendError(reply, renderError('slng', auth.error.code === 'auth_error' ? new VoxgateError('auth_error', 'missing or invalid API key (set metrics.public to serve /metrics without one)') : auth.error));
    }
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.get('/v1/status', async (req, reply) => {
    const auth = await authenticate(req.headers, new URL(req.url, 'http://x'), keys);
    if (!auth.ok) return sendError(reply, renderError('slng', auth.error.code === 'auth_error' ? new VoxgateError('auth_error', 'missing or invalid API key') : auth.error));
    const engineStats: Record<string, unknown> = {};
    for (const [id, e] of engines) engineStats[id] = e.stats();
    const cluster = { instance: live.instanceId, shared: live.shared, fallback: !!live.link && !live.shared, sessions: await live.sessions(), workers: workers?.all() ?? [] };
    return { sessions: sessions.size, engines: engineStats, backends: router.status(), rss_bytes: process.memoryUsage().rss, cluster };
  });

  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      refuseUpgrade(socket, 'slng', new VoxgateError('invalid_request', 'malformed request URL'), null);
      return;
    }
    if (tts.handleUpgrade(req, socket, head, url)) return; // TTS routes
    if (draining) {
      refuseUpgrade(socket, familyOfPath(url.pathname), drainError(), url);
      return;
    }
    if (compatProtocol(url.pathname)) {
      upgradeCompat(req, socket, head, url);
      return;
    }
    const route = matchSttRoute(url.pathname, config.stt.models);
    if (route === null || 'notFound' in route) {
      const message = route ? `unknown model "${route.notFound}"` : `no streaming route at ${url.pathname}`;
      const models = config.stt.models.map((m) => ({ code: m.code, path: `/v1/stt/${m.code}`, dialect: m.dialect }));
      refuseUpgrade(socket, 'slng', new VoxgateError('not_found', message), url, { extra: { models } });
      return;
    }
    void upgradeStt(req, socket, head, url, route.model, STT_DIALECT_IMPLS[route.dialect]).catch((err) => refuseUpgrade(socket, 'slng', toVoxgateError(err), url));
  });

  /**
   * Admission of a new request or session after authentication, before any backend is selected
   * (issue 12): the durable quotas ({@link admitQuota}). A draining gateway or a client gone while the
   * key and quotas were checked also stops here. @returns the refusal, `'gone'`, or null to go on.
   */
  async function admit(socket: Duplex, key: KeyInfo, service: 'stt' | 'tts', session: Omit<SessionMeta, 'keyId'>): Promise<VoxgateError | 'gone' | { lease: Lease }> {
    const quota = await admitQuota({ key, service, meter, log });
    if (quota) return quota;
    // Live limits (concurrent sessions, rpm; shared through Redis): the lease is bound to the selection.
    let lease: Lease;
    try {
      lease = await admitLive(live, { key, session });
    } catch (err) {
      return toVoxgateError(err);
    }
    if (draining || socket.destroyed) lease.release();
    if (draining) return drainError();
    return socket.destroyed ? 'gone' : { lease };
  }

  /**
   * `wss.handleUpgrade`, ending the selection (and its lease) when ws never hands the socket over (the
   * socket died in between): every admitted upgrade ends its selection exactly once.
   */
  function upgradeWith(req: IncomingMessage, socket: Duplex, head: Buffer, sel: { end(): void }, cb: (ws: WebSocket) => void): void {
    let attached = false;
    socket.once('close', () => {
      if (!attached) sel.end();
    });
    wss.handleUpgrade(req, socket, head, (ws) => {
      attached = true;
      cb(ws);
    });
  }

  /** The SLNG STT upgrade after the route matched: auth → admission → backend selection → capacity → session. */
  async function upgradeStt(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL, model: (typeof config.stt.models)[number], dialect: SttDialect): Promise<void> {
    const auth = await authenticate(req.headers, url, keys);
    if (!auth.ok) {
      refuseUpgrade(socket, 'slng', auth.error, url);
      return;
    }
    const requestId = randomUUID();
    const admitted = await admit(socket, auth.key, 'stt', { sessionId: requestId, model: model.code, kind: 'stt' });
    if (admitted === 'gone') return;
    if (admitted instanceof VoxgateError) {
      refuseUpgrade(socket, 'slng', admitted, url);
      return;
    }
    const { lease } = admitted;
    const route = { model };
    let sel: Selection<FailoverSttEngine>;
    try {
      sel = bindLease(router.stt(route.model, req.headers, url, requestId), lease);
    } catch (err) {
      lease.release();
      refuseUpgrade(socket, 'slng', err instanceof VoxgateError ? err : new VoxgateError('config_error', String(err)), url);
      return;
    }
    const busy = modelLanguageRefusal(route.model, sel.engine) ?? capacityRefusal(sel.engine, 1); // a model's language the engine lacks: 400 config_error
    if (busy) {
      sel.end();
      refuseUpgrade(socket, 'slng', busy, url);
      return;
    }
    upgradeWith(req, socket, head, sel, (ws) => attach(ws, route.model, dialect, sel, auth.key.id, undefined, requestId));
  }

  /**
   * Over capacity, refuse before the upgrade (issue 9 §3; protocols.md §2.5, §5: HTTP 429 at the
   * handshake, so clients' retry-on-429 logic fires) instead of accepting and closing 1013.
   * Capacity is the free streams of the selected backends ({@link FailoverSttEngine.freeStreams}) minus
   * the sessions already upgraded on any of those backends that have not started their stream yet
   * (awaiting `init`).
   * A race past this check is still refused by the engine, with the dialect's in-session error. When
   * every selected backend is cooling down, there is no capacity to check: the session starts and
   * reports `backend_connection_failed`.
   * @param streams engine streams the session will open (channels when multichannel, else 1).
   * @returns the `rate_limit` refusal, or null when the session fits (or the engine reports no capacity).
   */
  function capacityRefusal(engine: FailoverSttEngine, streams: number): VoxgateError | null {
    // Every candidate cooling down after failures is not "busy": the session starts and gets the
    // dialect's `backend_connection_failed` (a pinned region that is down), not a 429.
    if (!engine.backends.some((b) => router.health.isAvailable(b.id))) return null;
    const free = engine.freeStreams();
    const ids = new Set(engine.backends.map((b) => b.id));
    let reserved = 0;
    for (const [s, e] of sessionEngines) if (s.state === 'awaiting_init' && e.backends.some((b) => ids.has(b.id))) reserved++;
    if (free - reserved >= streams) return null;
    return new VoxgateError('rate_limit', `over capacity: all speech decoders of engine "${engine.id}" are busy; retry later`);
  }

  /**
   * Deepgram `/v1/listen` and smallest.ai routes (compat_routes.ts): auth first (401 JSON), then the
   * query is validated against the engine (400 JSON), then the session starts with no `init` frame.
   * Every response of the Deepgram route carries `dg-request-id`; failures also `dg-error` (§2.1).
   */
  function upgradeCompat(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): void {
    const requestId = randomUUID();
    const family = familyOfPath(url.pathname);
    const refuse = (err: VoxgateError) => refuseUpgrade(socket, family, err, url, { requestId: family === 'deepgram' ? requestId : undefined });
    void upgradeCompatAdmitted(req, socket, head, url, requestId, family, refuse).catch((err) => refuse(toVoxgateError(err)));
  }

  /** {@link upgradeCompat} from authentication on (async since issue 12: the key store and quotas may be remote). */
  async function upgradeCompatAdmitted(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL, requestId: string, family: DialectFamily, refuse: (err: VoxgateError) => void): Promise<void> {
    const auth = await authenticate(req.headers, url, keys);
    if (!auth.ok) {
      refuse(auth.error);
      return;
    }
    const admitted = await admit(socket, auth.key, 'stt', { sessionId: requestId, model: url.pathname, kind: 'stt' });
    if (admitted === 'gone') return;
    if (admitted instanceof VoxgateError) {
      refuse(admitted);
      return;
    }
    const { lease } = admitted;
    let route: CompatRoute;
    let sel: Selection<FailoverSttEngine> | null = null;
    try {
      // Backend selection runs once the query named the model, before the settings are checked against its engine.
      route = matchCompatRoute(url, config, (model) => (sel = bindLease(router.stt(model, req.headers, url, requestId), lease)).engine)!;
    } catch (err) {
      (sel as Selection<FailoverSttEngine> | null)?.end();
      lease.release();
      refuse(err instanceof VoxgateError ? err : new VoxgateError('config_error', String(err)));
      return;
    }
    const selected = sel!;
    const busy = capacityRefusal(selected.engine, route.init.multichannel ? (route.init.channels ?? 1) : 1);
    if (busy) {
      selected.end();
      refuse(busy);
      return;
    }
    (req as IncomingMessage & { voxgateRequestId?: string }).voxgateRequestId = requestId;
    upgradeWith(req, socket, head, selected, (ws) => attach(ws, route.model, route.dialect, selected, auth.key.id, route.init, requestId));
  }

  /**
   * Run an STT session on an upgraded socket: the session drives the selected failover engine with
   * the request's context; the selection is released (`sel.end()`: context aborted, backend gauges
   * released) when the session closes.
   */
  function attach(ws: WebSocket, model: (typeof config.stt.models)[number], dialect: SttDialect, sel: Selection<FailoverSttEngine>, keyId: string, init?: SttInitRequest, requestId?: string): void {
    const engine = sel.engine;
    const session = new SttSession({
      model,
      dialect,
      init,
      requestId,
      engine,
      ctx: sel.ctx,
      limits: config.limits,
      log: log.child({ key_id: keyId }),
      transport: sttSocketTransport(ws),
      onClosed: (s) => {
        meterUsage(meter, config, { key: keyId, service: 'stt', transport: 'ws', model: model.code, backend: sel.backendId(), audioSecondsIn: s.audioSeconds });
        sel.end();
        sessions.delete(s);
        sessionEngines.delete(s);
        metrics.sessionsTotal.inc({ model: model.code, close_code: String(s.closeCode ?? 'client') });
        metrics.audioSeconds.inc({ model: model.code }, s.audioSeconds);
        metrics.sessionSeconds.observe((Date.now() - s.createdAt.getTime()) / 1000);
      },
      observer: {
        final: (reason) => metrics.finalsTotal.inc({ model: model.code, reason }),
        error: (code) => metrics.errorsTotal.inc({ code }),
        backpressure: () => metrics.backpressureTotal.inc(),
      },
    });
    sessions.add(session);
    sessionEngines.set(session, engine);
    bindSocket(ws, session, config.limits.maxFrameBytes * 2, log);
  }

  return {
    app,
    async listen(port, host) {
      await app.listen({ port, host });
      return (app.server.address() as AddressInfo).port;
    },
    sessionCount: () => sessions.size + tts.sessionCount(), // TTS: + tts sessions
    live,
    drain(deadlineMs) {
      drainPromise ??= (async () => {
        draining = true;
        const t0 = performance.now();
        const liveSessions = sessions.size + tts.sessionCount();
        log.info({ sessions: liveSessions, deadline_ms: deadlineMs }, 'draining: new work refused, live sessions finishing');
        await Promise.all([...[...sessions].map((s) => s.drain(deadlineMs)), tts.drain(deadlineMs)]);
        const sessionsMs = performance.now() - t0;
        // In-flight HTTP requests finish; the listener closes (fastify answers 503 to requests on kept-alive connections).
        wss.close();
        const closing = app.close();
        // A kept-alive connection goes idle once its in-flight response ends: close it then, not at the deadline.
        const idleSweep = setInterval(() => app.server.closeIdleConnections(), 50);
        const left = Math.max(0, deadlineMs - (performance.now() - t0));
        let deadlineReached = sessionsMs >= deadlineMs;
        const done = await Promise.race([closing.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), left).unref())]);
        if (!done) {
          deadlineReached = true;
          log.warn('drain deadline reached: closing the remaining connections');
          app.server.closeAllConnections();
          for (const client of wss.clients) client.terminate();
          tts.close();
          await Promise.race([closing, new Promise((r) => setTimeout(r, 1000).unref())]);
        }
        clearInterval(idleSweep);
        const report: DrainReport = { sessions: liveSessions, sessionsMs: Math.round(sessionsMs), totalMs: Math.round(performance.now() - t0), deadlineReached };
        workers?.close();
        if (!deps.live) await live.close();
        log.info(report, 'drained');
        return report;
      })();
      return drainPromise;
    },
    async close() {
      if (drainPromise) {
        await drainPromise;
        return;
      }
      for (const client of wss.clients) client.close(CloseCode.GOING_AWAY, 'server shutting down');
      for (const s of [...sessions]) s.handleTransportClose();
      tts.close(); // TTS sessions (their sockets are among wss.clients, closed above)
      wss.close();
      await app.close();
      workers?.close();
      if (!deps.live) await live.close();
    },
  };
}
