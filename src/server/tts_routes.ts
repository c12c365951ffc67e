/**
 * TTS routing (issue #4): WebSocket upgrades and HTTP routes for text-to-speech, on the same
 * listener, catalogue, auth and session machinery as STT (shared/spec/protocols.md §1.5–1.7, §3).
 *
 * WebSocket (upgrade pipeline: route → 404, auth → 401, options → 400, then a {@link TtsSession}):
 * - `/v1/tts/{provider}/{model}:{variant}` — the catalogue entry's dialect (`unified`, §1.5) and audio framing;
 * - `/v1/bridges/unmute/tts/{model_variant}` — always unified (§1.5);
 * - `/v1/speak?model=<voice>&encoding=&sample_rate=&speed=` — Deepgram's dialect (§3); `model` is a voice
 *   name: a voxgate voice id, or any `aura-*-<lang>` name (mapped to a voice for `<lang>`, for English
 *   the first catalogue model's default voice), so unchanged Deepgram clients work.
 *
 * HTTP:
 * - `POST /v1/tts/{model}` and `POST /v1/bridges/unmute/tts/{model_variant}` (§1.7): JSON
 *   `{text, voice?, language?, encoding?, sample_rate?, speed?, container?, stream?}` (also `model` or
 *   `speaker` as the voice name, `target_language_code`, Soniox-style `audio_format`, `config{…}`
 *   like the WebSocket `init`, query parameters, an `Accept` header, or a `text/plain` body). Response: WAV by default (`container: "none"` for raw PCM/G.711; `mp3`;
 *   `opus` in Ogg), `Content-Type`, `X-Duration` (seconds), `X-Sample-Rate`, `X-Voice`.
 *   Text longer than `tts.limits.httpStreamThresholdChars` (or `stream: true`) is streamed with
 *   chunked transfer as it is synthesised; `X-Duration` is then an HTTP trailer (announced in `Trailer`).
 * - `POST /v1/speak?model=…&encoding=…&sample_rate=…&container=…` with `{"text": …}` (Deepgram REST):
 *   same pipeline, Deepgram defaults (linear16 in WAV at 24 kHz) and `dg-*` headers.
 *   Deepgram's limits apply there: `speed` 0.7–1.5 (also on the WebSocket upgrade), ≤ 2000
 *   characters (413), and empty or blank text is a 400 `Bad Request` "Input text contains no characters.".
 * Errors come from the catalogue (`renderError`, src/util/errors.ts): SLNG routes
 * `{"error": code, "message", "statusCode", "status"}` with SLNG codes (§1.7); Deepgram routes
 * `{"err_code", "err_msg", "request_id"}` with a `dg-error` header. Upgrades are refused through the
 * gateway's one refusal path (`UpgradeRefuser`, refuse.ts).
 *
 * Authentication is the one check of every route (`authenticate`: Bearer, Token, X-API-Key,
 * ?token=, and the Deepgram browser form `Sec-WebSocket-Protocol: token, <key>`).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { WebSocket, WebSocketServer } from 'ws';
import { z } from 'zod';
import { contentType, isPcmEncoding, supportedSampleRates, TTS_ENCODINGS, wavHeader, type PcmEncoding } from '../audio/encode.js';
import type { VoxgateConfig } from '../config/config.js';
import type { TtsModelEntry } from '../config/tts_config.js';
import type { TtsEngine } from '../engines/tts/types.js';
import { createDeepgramSpeakDialect, nameUuid } from '../protocol/deepgram-speak/index.js';
import { checkSpeakSpeed, parseSpeakQuery } from '../protocol/deepgram-speak/query.js';
import { SPEAK_MAX_CHARS } from '../protocol/deepgram-speak/schema.js';
import { createUnifiedTtsDialect } from '../protocol/tts-unified/index.js';
import { AUDIO_FORMATS, containerFor, encodingFromAccept, httpBodySchema } from '../protocol/tts-http/index.js';
import type { TtsDialect } from '../protocol/tts_events.js';
import { defaultVoice, lookupVoice, modelVoices, resolveTtsOptions, voiceForLanguage, AURA_NAME_RE, type ResolvedTtsOptions, type TtsRequestOptions } from '../session/tts_options.js';
import { synthesizeText } from '../session/tts_render.js';
import { TtsSession } from '../session/tts_session.js';
import type { ApiKeyStore } from '../store/types.js';
import type { UsageMeter } from '../store/usage.js';
import type { KeyInfo } from '../store/keys.js';
import { admitQuota, meterUsage } from './admission.js';
import { renderError, toVoxgateError, VoxgateError, type DialectFamily } from '../util/errors.js';
import { authenticate } from './auth.js';
import { answerStall, jsonBodyParser, lingerClose, watchBodyIdle } from './guard.js';
import { fastifyError, sendError, type UpgradeRefuser } from './refuse.js';
import { bindSocket, ttsSocketTransport } from '../session/ws_transport.js';
import { errorExtra } from './backends.js';
import { listingBase } from './catalogue.js';
import type { BackendRouter, Selection } from './router.js';
import type { FailoverTtsEngine } from '../engines/tts/failover.js';
import type { Lease, LiveState } from '../state/live.js';
import { admitLive, bindLease } from './admission.js';

/** Dependencies of the TTS routes. */
export interface TtsGatewayDeps {
  app: FastifyInstance;
  config: VoxgateConfig;
  /** Initialised TTS engines by id (see `createTtsEngines`). */
  engines: Map<string, TtsEngine>;
  /** Key store (issue 12: SQLite or Postgres); only `verifyKey` is used. */
  keys: ApiKeyStore;
  /** Usage metering and durable quotas (issue 12); absent = nothing metered. */
  meter?: UsageMeter;
  log: Logger;
  /** Prometheus registry to add TTS metrics to. */
  registry?: Registry;
  /**
   * The gateway's one `WebSocketServer` (`noServer`, frame limits, auth subprotocol): TTS upgrades are
   * completed on it, so every session of the listener is in one `clients` set.
   */
  wss: WebSocketServer;
  /** The gateway's one refusal path for WebSocket upgrades (renders, counts, logs, writes). */
  refuseUpgrade: UpgradeRefuser;
  /** The error a draining gateway refuses new work with (`unavailable`). */
  drainError: () => VoxgateError;
  /** The gateway's backend selection (router.ts): every request's engine comes from it. */
  router: BackendRouter;
  /** Per-key live limits (issue 12: concurrent sessions, rpm); absent = none (tests building the TTS part alone). */
  live?: LiveState;
}

/** The TTS part of the gateway. */
export interface TtsGateway {
  /**
   * Take an HTTP upgrade if its path is a TTS route (`/v1/tts/…`, `/v1/bridges/unmute/tts/…`,
   * `/v1/speak`). @returns `true` when the request was handled (accepted or refused), `false` when
   * the path is not a TTS route and the caller should route it.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): boolean;
  /** Catalogue entries for `GET /v1/models` (`service_type: "tts"`, with voices). */
  modelList(): Record<string, unknown>[];
  /** Open TTS WebSocket sessions. */
  sessionCount(): number;
  /** End every TTS session (their sockets are closed with 1001 by the gateway, which owns the WebSocketServer). */
  close(): void;
  /**
   * Graceful shutdown (issue #14 item 4): refuse new upgrades with HTTP 503 (in the route's
   * dialect), and let every session finish the text it has ({@link TtsSession.drain}).
   * @param deadlineMs per-session deadline, ms.
   * @returns resolves when every TTS session is closed.
   */
  drain(deadlineMs: number): Promise<void>;
}

/** A matched TTS WebSocket/HTTP path. */
export type TtsRouteMatch = { kind: 'model'; model: TtsModelEntry; family: 'direct' | 'bridge' } | { kind: 'speak' } | { kind: 'not_found'; code: string };

const DIRECT = '/v1/tts/';
const BRIDGE = '/v1/bridges/unmute/tts/';

/**
 * Match a request path (no query) against the TTS catalogue (pure).
 * @returns the match, `not_found` for a TTS path naming an unknown model, `null` for other paths.
 */
export function matchTtsRoute(pathname: string, models: readonly TtsModelEntry[]): TtsRouteMatch | null {
  if (pathname === '/v1/speak' || pathname === '/v1/speak/') return { kind: 'speak' };
  let family: 'direct' | 'bridge';
  let rest: string;
  if (pathname.startsWith(BRIDGE)) [family, rest] = ['bridge', pathname.slice(BRIDGE.length)];
  else if (pathname.startsWith(DIRECT)) [family, rest] = ['direct', pathname.slice(DIRECT.length)];
  else return null;
  let code: string;
  try {
    code = decodeURIComponent(rest).replace(/\/+$/, '');
  } catch {
    return { kind: 'not_found', code: rest };
  }
  const model = models.find((m) => m.code === code);
  return model ? { kind: 'model', model, family } : { kind: 'not_found', code };
}

/**
 * Resolve a Deepgram `model` (voice name) across the catalogue, in catalogue order: a voice id of
 * any entry; else, for `aura-*-<lang>`, the first entry with a voice for `<lang>`.
 * @returns the entry and the name to validate, or `null` when no entry has such a voice.
 */
export function resolveSpeakVoice(name: string, models: readonly TtsModelEntry[], engines: Map<string, TtsEngine>): { model: TtsModelEntry; voice: string } | null {
  const id = name.trim().toLowerCase();
  for (const m of models) {
    if (modelVoices(m, engines.get(m.engine)!).some((v) => v.id === id)) return { model: m, voice: id };
  }
  const aura = AURA_NAME_RE.exec(id);
  if (aura) {
    for (const m of models) {
      const v = voiceForLanguage(m, engines.get(m.engine)!, aura[1]!);
      if (v) return { model: m, voice: name };
    }
  }
  return null;
}

/** Build the TTS routes and upgrade handler. Registers HTTP routes on `deps.app` immediately. */
export function createTtsGateway(deps: TtsGatewayDeps): TtsGateway {
  const { app, config, engines, keys, log, router, meter } = deps;
  // Entries whose engine is not running (e.g. a gateway built without TTS engines) are not served.
  const models = config.tts.models.filter((mo) => engines.has(mo.engine));
  const limits = config.tts.limits;
  const sessions = new Set<TtsSession>();
  /** Set by drain(): upgrades are refused with 503. */
  let draining = false;
  const { wss } = deps;

  const reg = deps.registry ? [deps.registry] : [];
  const m = {
    sessions: new Counter({ name: 'voxgate_tts_sessions_total', help: 'TTS WebSocket sessions by model and close code', labelNames: ['model', 'close_code'] as const, registers: reg }),
    audio: new Counter({ name: 'voxgate_tts_audio_seconds_total', help: 'Seconds of synthesised audio delivered', labelNames: ['model', 'transport'] as const, registers: reg }),
    chars: new Counter({ name: 'voxgate_tts_characters_total', help: 'Characters synthesised', labelNames: ['model'] as const, registers: reg }),
    errors: new Counter({ name: 'voxgate_tts_errors_total', help: 'TTS errors sent, by code', labelNames: ['code'] as const, registers: reg }),
    http: new Counter({ name: 'voxgate_tts_http_requests_total', help: 'TTS HTTP requests by route family and status', labelNames: ['route', 'status'] as const, registers: reg }),
  };
  new Gauge({ name: 'voxgate_tts_sessions_active', help: 'Open TTS WebSocket sessions', registers: reg, collect() { this.set(sessions.size); } });
  new Gauge({
    name: 'voxgate_tts_jobs',
    help: 'TTS engine jobs by state',
    labelNames: ['engine', 'state'] as const,
    registers: reg,
    collect() {
      for (const [id, e] of engines) {
        const s = e.stats();
        this.set({ engine: id, state: 'active' }, s.activeJobs);
        this.set({ engine: id, state: 'queued' }, s.queuedJobs);
      }
    },
  });

  const modelCatalogue = () => models.map((mo) => ({ code: mo.code, path: `/v1/tts/${mo.code}`, dialect: mo.dialect }));

  // ---- WebSocket ----

  function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): boolean {
    const route = matchTtsRoute(url.pathname, models);
    if (!route) return false;
    const family: DialectFamily = route.kind === 'speak' ? 'deepgram' : 'slng';
    const refuse = (err: VoxgateError, extra?: Record<string, unknown>) => deps.refuseUpgrade(socket, family, err, url, { extra });
    if (draining) {
      refuse(deps.drainError());
      return true;
    }
    if (route.kind === 'not_found') {
      refuse(new VoxgateError('not_found', `unknown TTS model "${route.code}"`), { models: modelCatalogue() });
      return true;
    }
    void upgradeAdmitted(req, socket, head, url, route, refuse).catch((err) => refuse(toVoxgateError(err)));
    return true;
  }

  /**
   * A TTS upgrade from authentication on (async since issue 12: the key store and usage may be remote):
   * auth → admission ({@link admitQuota}: characters per day/month) → backend selection → session.
   */
  async function upgradeAdmitted(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL, route: Exclude<TtsRouteMatch, { kind: 'not_found' }>, refuse: (err: VoxgateError) => void): Promise<void> {
    const auth = await authenticate(req.headers, url, keys);
    if (!auth.ok) {
      refuse(auth.error);
      return;
    }
    const quota = await admitQuota({ key: auth.key, service: 'tts', meter, log });
    if (quota) {
      refuse(quota);
      return;
    }
    const requestId = randomUUID();
    // Live limits (issue 12): the lease is bound to the selection, released when the session ends.
    let lease: Lease | null = null;
    if (deps.live) {
      try {
        lease = await admitLive(deps.live, { key: auth.key, session: { sessionId: requestId, model: route.kind === 'model' ? route.model.code : url.pathname, kind: 'tts' } });
      } catch (err) {
        refuse(toVoxgateError(err));
        return;
      }
    }
    if (draining) {
      lease?.release();
      refuse(deps.drainError());
      return;
    }
    if (socket.destroyed) {
      lease?.release();
      return; // the client left while its key was checked
    }
    let model: TtsModelEntry;
    let dialect: TtsDialect;
    let resolved: ResolvedTtsOptions | undefined;
    let pacing = true;
    let sel: Selection<FailoverTtsEngine> | null = null;
    // Backend selection (BYOK, region/world-part pins) runs once the model is known, before the
    // upgrade; `/v1/speak`'s options are then checked against the selected engine.
    const select = (mo: TtsModelEntry) => {
      const s = router.tts(mo, req.headers, url, requestId);
      sel = lease ? bindLease(s, lease) : s;
      return s;
    };
    try {
      if (route.kind === 'speak') {
        const q = parseSpeakQuery(url.searchParams);
        pacing = q.pacing ?? true;
        const found = resolveSpeakVoice(q.model, models, engines);
        if (!found) throw new VoxgateError('config_error', `unknown voice model "${q.model}"; available: ${allVoiceIds().join(', ')}, or any aura-*-<lang> name`);
        model = found.model;
        resolved = resolveTtsOptions({ voice: found.voice, encoding: q.encoding, sampleRate: q.sampleRate, speed: q.speed }, model, select(model).engine, ['linear16', 'mulaw', 'alaw']);
        dialect = createDeepgramSpeakDialect();
      } else {
        model = route.model;
        select(model);
        dialect = createUnifiedTtsDialect({ audio: model.audio, maxTextChars: limits.maxTextChars });
      }
    } catch (err) {
      (sel as Selection<FailoverTtsEngine> | null)?.end();
      lease?.release();
      refuse(toVoxgateError(err));
      return;
    }
    const selected = sel!;
    const opts = resolved;
    // ws never calls back when the socket died in between: end the selection (and its lease) then.
    let attached = false;
    socket.once('close', () => {
      if (!attached) selected.end();
    });
    wss.handleUpgrade(req, socket, head, (ws) => {
      attached = true;
      attach(ws, model, selected, dialect, opts, pacing, auth.key.id);
    });
  }

  /** Run a TTS session on an upgraded socket, on the selection's failover engine; the selection is released when the session closes. */
  function attach(ws: WebSocket, model: TtsModelEntry, sel: Selection<FailoverTtsEngine>, dialect: TtsDialect, resolved: ResolvedTtsOptions | undefined, pacing: boolean, keyId: string): void {
    let chars = 0; // characters synthesised in this session (metered at its end)
    const session = new TtsSession({
      model,
      engine: sel.engine,
      dialect,
      limits: config.limits,
      ttsLimits: limits,
      resolved,
      pacing,
      log: log.child({ key_id: keyId }),
      transport: ttsSocketTransport(ws),
      onClosed: (s) => {
        meterUsage(meter, config, { key: keyId, service: 'tts', transport: 'ws', model: model.code, backend: sel.backendId(), charsIn: chars, audioSecondsOut: s.audioSeconds });
        sel.end();
        sessions.delete(s);
        m.sessions.inc({ model: model.code, close_code: String(s.closeCode ?? 'client') });
        m.audio.inc({ model: model.code, transport: 'ws' }, s.audioSeconds);
      },
      observer: {
        error: (code) => m.errors.inc({ code }),
        segment: (n) => {
          chars += n;
          m.chars.inc({ model: model.code }, n);
        },
      },
    });
    sessions.add(session);
    bindSocket(ws, session, config.limits.maxFrameBytes * 2, log);
  }

  function allVoiceIds(): string[] {
    const ids = new Set<string>();
    for (const mo of models) for (const v of modelVoices(mo, engines.get(mo.engine)!)) ids.add(v.id);
    return [...ids];
  }

  // ---- HTTP ----

  type Family = 'direct' | 'bridge' | 'speak';

  /** Request ids of HTTP requests, made in the onRequest hook. */
  const requestIds = new WeakMap<FastifyRequest, string>();
  /** The authenticated key of each HTTP request (onRequest hook), for the quota check and metering. */
  const requestKeys = new WeakMap<FastifyRequest, KeyInfo>();
  /** Backend selections of HTTP requests (made before the body is read when the URL names the model). */
  const selections = new WeakMap<FastifyRequest, { code: string; sel: Selection<FailoverTtsEngine> }>();
  /**
   * The request's backend selection for `model` (router.ts), made once per model and released when the
   * response closes (the answer was sent or the client went away).
   * @throws RoutingError (HTTP 400) for BYOK on a `slng/` route or a bad region/world-part pin.
   */
  function selectionFor(req: FastifyRequest, reply: FastifyReply, model: TtsModelEntry): Selection<FailoverTtsEngine> {
    const had = selections.get(req);
    if (had?.code === model.code) return had.sel;
    had?.sel.end();
    const sel = router.tts(model, req.headers, new URL(req.url, 'http://localhost'), requestIds.get(req) ?? randomUUID());
    selections.set(req, { code: model.code, sel });
    if (reply.raw.closed) sel.end();
    else reply.raw.once('close', () => sel.end());
    return sel;
  }
  /** The model an HTTP request names in its URL alone (path, or `/v1/speak?model=`); null when it cannot be told yet. */
  function modelOfUrl(family: Family, url: URL): TtsModelEntry | null {
    try {
      if (family === 'speak') return resolveSpeakVoice(parseSpeakQuery(url.searchParams).model, models, engines)?.model ?? null;
      const route = matchTtsRoute(url.pathname, models);
      return route?.kind === 'model' ? route.model : null;
    } catch {
      return null;
    }
  }
  const familyOf = (url: string): Family => (url.startsWith('/v1/speak') ? 'speak' : url.startsWith(BRIDGE) ? 'bridge' : 'direct');

  /**
   * Answer an HTTP request with an error in its route family's shape (the catalogue renderer: SLNG's
   * on `/v1/tts/…` and the bridge, §1.7; Deepgram's on `/v1/speak`, §3).
   */
  function httpFail(family: Family, req: FastifyRequest, reply: FastifyReply, err: VoxgateError, extra?: Record<string, unknown>): FastifyReply {
    if (reply.sent || reply.raw.headersSent) return reply;
    const requestId = requestIds.get(req) ?? randomUUID();
    const r = renderError(family === 'speak' ? 'deepgram' : 'slng', err, { requestId: family === 'speak' ? requestId : undefined, extra: errorExtra(err, extra) });
    m.http.inc({ route: family, status: String(r.status) });
    if (!req.raw.complete) {
      reply.header('connection', 'close'); // the unread body is never read as a next request
      lingerClose(req.raw, reply.raw, r.status === 401 ? 64 * 1024 : undefined); // no key: discard little
    }
    return sendError(reply, r, family === 'speak' ? {} : { 'x-request-id': requestId });
  }

  async function handleHttp(family: Family, req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const requestId = requestIds.get(req) ?? randomUUID();
    const url = new URL(req.url, 'http://localhost');
    const fail = (err: VoxgateError, extra?: Record<string, unknown>) => httpFail(family, req, reply, err, extra);

    // Which model, and the raw options.
    let model: TtsModelEntry;
    const q = url.searchParams;
    let opts: TtsRequestOptions & { container?: 'wav' | 'none' | 'ogg'; stream?: boolean };
    let text: string;
    try {
      let body: z.infer<typeof httpBodySchema>;
      if (typeof req.body === 'string') body = { text: req.body };
      else {
        const parsed = httpBodySchema.safeParse(req.body ?? {});
        if (!parsed.success) throw new VoxgateError('invalid_request', `Validation error: ${z.prettifyError(parsed.error)}`);
        body = parsed.data;
      }
      text = body.text;
      const qNum = (n: string) => {
        const v = q.get(n);
        if (v === null || v === '') return undefined;
        const x = Number(v);
        if (!Number.isFinite(x)) throw new VoxgateError('config_error', `${n}=${JSON.stringify(v.slice(0, 40))} is not a number`);
        return x;
      };
      if (family === 'speak') {
        const sq = parseSpeakQuery(q);
        const name = body.model ?? sq.model;
        const found = resolveSpeakVoice(name, models, engines);
        if (!found) throw new VoxgateError('config_error', `unknown voice model "${name}"; available: ${allVoiceIds().join(', ')}, or any aura-*-<lang> name`);
        model = found.model;
        opts = { voice: found.voice, encoding: body.encoding ?? sq.encoding, sampleRate: body.sample_rate ?? sq.sampleRate, speed: body.speed ?? sq.speed, container: body.container ?? sq.container, stream: body.stream };
        checkSpeakSpeed(opts.speed); // Deepgram's 0.7–1.5, for a body `speed` too
        if ([...text].length > SPEAK_MAX_CHARS) {
          return fail(new VoxgateError('payload_too_large', `Input text exceeds maximum character limit of ${SPEAK_MAX_CHARS}.`));
        }
        // Deepgram answers 400 `Bad Request` ("Input Text Contained No Characters"), not 200 with an empty WAV.
        if (text.trim() === '') return fail(new VoxgateError('invalid_request', 'Input text contains no characters.'));
      } else {
        const route = matchTtsRoute((family === 'bridge' ? BRIDGE : DIRECT) + (req.params as { '*': string })['*'], models);
        if (!route || route.kind !== 'model') {
          return fail(new VoxgateError('not_found', `unknown TTS model "${(req.params as { '*': string })['*']}"`), { models: modelCatalogue() });
        }
        model = route.model;
        const accept = encodingFromAccept(req.headers.accept);
        const c = body.config ?? {};
        const fmt = body.audio_format ? AUDIO_FORMATS[body.audio_format] : undefined;
        const container = body.container ?? fmt?.container ?? (q.get('container') as 'wav' | 'none' | 'ogg' | null) ?? undefined;
        const encoding = body.encoding ?? c.encoding ?? fmt?.encoding ?? q.get('encoding') ?? undefined;
        opts = {
          voice: body.voice ?? body.speaker ?? q.get('voice') ?? (body.model && lookupVoice(model, engines.get(model.engine)!, body.model) ? body.model : undefined),
          language: body.language ?? body.target_language_code ?? c.language ?? q.get('language') ?? undefined,
          encoding: encoding ?? accept.encoding,
          sampleRate: body.sample_rate ?? c.sample_rate ?? qNum('sample_rate'),
          speed: body.speed ?? c.speed ?? qNum('speed'),
          container: container ?? (encoding === undefined ? accept.container : undefined),
          stream: body.stream ?? (q.get('stream') === 'true' ? true : undefined),
        };
      }
      if (text.length > limits.maxHttpTextChars) {
        return fail(new VoxgateError('payload_too_large', `text of ${text.length} characters exceeds the ${limits.maxHttpTextChars}-character limit`));
      }
    } catch (err) {
      return fail(toVoxgateError(err));
    }

    // issue 12: the characters of this request against the key's quotas, before any backend is dialled.
    const key = requestKeys.get(req);
    if (key) {
      const quota = await admitQuota({ key, service: 'tts', meter, chars: text.length, log });
      if (quota) return fail(quota);
    }
    const metered = (seconds: number) => {
      if (key) meterUsage(meter, config, { key, service: 'tts', transport: 'http', model: model.code, backend: selectionFor(req, reply, model).backendId(), charsIn: seconds > 0 ? text.length : 0, audioSecondsOut: seconds });
    };

    let resolved: ResolvedTtsOptions;
    let container: 'wav' | 'none';
    try {
      resolved = resolveTtsOptions(opts, model, selectionFor(req, reply, model).engine);
      container = containerFor(resolved.encoding, opts.container);
    } catch (err) {
      return fail(toVoxgateError(err));
    }

    const headers: Record<string, string> = {
      'Content-Type': contentType(resolved.encoding, resolved.sampleRate, container),
      'X-Sample-Rate': String(resolved.sampleRate),
      'X-Encoding': resolved.encoding,
      'X-Voice': resolved.voice.id,
      'X-Request-Id': requestId,
    };
    if (family === 'speak') {
      Object.assign(headers, { 'dg-request-id': requestId, 'dg-model-name': resolved.voiceName, 'dg-model-uuid': nameUuid(`${resolved.engine.id}/${resolved.voice.id}`), 'dg-char-count': String([...text].length) });
    }
    const wav = container === 'wav' && isPcmEncoding(resolved.encoding);
    const ctl = new AbortController();
    const stream = opts.stream ?? text.length > limits.httpStreamThresholdChars;
    const chars = text.length;

    if (!stream) {
      const chunks: Buffer[] = [];
      reply.raw.once('close', () => {
        if (!reply.raw.writableEnded) ctl.abort(); // the client went away: stop the engine
      });
      let seconds: number;
      try {
        ({ seconds } = await synthesizeText(resolved, text, (b) => void chunks.push(b), ctl.signal));
      } catch (err) {
        metered(0);
        if (ctl.signal.aborted) return;
        const e = toVoxgateError(err);
        log.error({ err: e.message, model: model.code }, 'tts http synthesis failed');
        return fail(new VoxgateError(e.code, `speech synthesis failed: ${e.message}`, { cause: err }));
      }
      let data = Buffer.concat(chunks);
      if (wav) data = Buffer.concat([wavHeader(resolved.encoding as PcmEncoding, resolved.sampleRate, data.length), data]);
      m.http.inc({ route: family, status: '200' });
      m.audio.inc({ model: model.code, transport: 'http' }, seconds);
      m.chars.inc({ model: model.code }, chars);
      metered(seconds);
      return reply
        .code(200)
        .headers({ ...headers, 'X-Duration': seconds.toFixed(3), 'Content-Length': String(data.length) })
        .send(data);
    }

    // Streamed: chunked transfer, audio written as it is synthesised, duration in a trailer.
    reply.hijack();
    const res = reply.raw;
    res.on('close', () => {
      if (!res.writableFinished) ctl.abort();
    });
    res.writeHead(200, { ...headers, 'Transfer-Encoding': 'chunked', Trailer: 'X-Duration' });
    if (wav) res.write(wavHeader(resolved.encoding as PcmEncoding, resolved.sampleRate, null));
    const sink = (b: Buffer): void | Promise<void> => {
      if (res.destroyed) return;
      if (!res.write(b)) return new Promise<void>((r) => res.once('drain', r).once('close', r));
    };
    try {
      const { seconds } = await synthesizeText(resolved, text, sink, ctl.signal);
      res.addTrailers({ 'X-Duration': seconds.toFixed(3) });
      res.end();
      m.http.inc({ route: family, status: '200' });
      m.audio.inc({ model: model.code, transport: 'http' }, seconds);
      m.chars.inc({ model: model.code }, chars);
      metered(seconds);
    } catch (err) {
      metered(0);
      if (!ctl.signal.aborted) log.error({ err: (err as Error).message, model: model.code }, 'tts http stream failed; aborting the response');
      m.http.inc({ route: family, status: ctl.signal.aborted ? '499' : '502' });
      res.destroy(); // a truncated chunked body tells the client the audio is incomplete
    }
  }

  app.register(async (scope) => {
    // issue 14 #1/#2: the key is checked before any of the body is read; then a body that stops
    // arriving is answered 408 (http.bodyIdleTimeoutMs).
    scope.addHook('onRequest', async (req, reply) => {
      requestIds.set(req, randomUUID());
      const family = familyOf(req.url);
      const url = new URL(req.url, 'http://localhost');
      const auth = await authenticate(req.headers, url, keys);
      if (!auth.ok) return httpFail(family, req, reply, auth.error);
      requestKeys.set(req, auth.key);
      // issue 12: a key whose character quota is used up is refused before its body is read.
      const quota = await admitQuota({ key: auth.key, service: 'tts', meter, log });
      if (quota) return httpFail(family, req, reply, quota);
      // Live limits (issue 12) before any backend is chosen; the slot is held until the response closes.
      if (deps.live) {
        try {
          const lease = await admitLive(deps.live, { key: auth.key, session: { sessionId: requestIds.get(req)!, model: url.pathname, kind: 'http' } });
          if (reply.raw.closed || req.raw.destroyed) lease.release();
          else reply.raw.once('close', () => lease.release());
        } catch (err) {
          return httpFail(family, req, reply, toVoxgateError(err));
        }
      }
      // Backend selection before the body is read: BYOK and region/world-part pins are refused at once.
      const model = modelOfUrl(family, url);
      if (model) {
        try {
          selectionFor(req, reply, model);
        } catch (err) {
          return httpFail(family, req, reply, toVoxgateError(err));
        }
      }
      const idleMs = config.http.bodyIdleTimeoutMs;
      watchBodyIdle(req.raw, idleMs, () =>
        answerStall(req, reply, () => httpFail(family, req, reply, new VoxgateError('idle_timeout_exceeded', `no request body data arrived for ${idleMs} ms (config http.bodyIdleTimeoutMs)`))),
      );
    });
    // JSON bodies: at most http.maxJsonBodyBytes — or, on the routes taking tts.limits.maxHttpTextChars
    // of text, that many characters in UTF-8 — bounded in shape while they arrive (guard.ts).
    const textJsonLimit = Math.max(config.http.maxJsonBodyBytes, limits.maxHttpTextChars * 4 + 4096);
    scope.removeContentTypeParser('application/json');
    scope.addContentTypeParser('application/json', jsonBodyParser((req) => (familyOf(req.url) === 'speak' ? config.http.maxJsonBodyBytes : textJsonLimit), { maxDepth: config.limits.maxJsonDepth, maxTokens: config.limits.maxJsonTokens }));
    scope.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
      const e = fastifyError(err);
      if (e.httpStatus >= 500) log.error({ err }, 'tts http request failed');
      return httpFail(familyOf(req.url), req, reply, e);
    });
    // Plain-text bodies are the text itself (curl --data-binary @speech.txt).
    scope.addContentTypeParser('text/plain', { parseAs: 'string', bodyLimit: limits.maxHttpTextChars * 4 }, (_req, body, done) => done(null, body));
    scope.post('/v1/tts/*', { bodyLimit: limits.maxHttpTextChars * 4 + 4096 }, (req, reply) => handleHttp('direct', req, reply));
    scope.post('/v1/bridges/unmute/tts/*', { bodyLimit: limits.maxHttpTextChars * 4 + 4096 }, (req, reply) => handleHttp('bridge', req, reply));
    scope.post('/v1/speak', { bodyLimit: 2 * 1024 * 1024 }, (req, reply) => handleHttp('speak', req, reply));
  });

  return {
    handleUpgrade,
    modelList: () =>
      models.map((mo) => {
        const e = engines.get(mo.engine)!;
        const voices = modelVoices(mo, e);
        return {
          ...listingBase('tts', mo),
          engine_version: e.version,
          audio_framing: mo.audio,
          batch: true,
          default_voice: defaultVoice(mo, e).id,
          languages: [...new Set(voices.flatMap((v) => v.languages))].sort(),
          capabilities: {
            speed: e.capabilities.speed,
            incremental: e.capabilities.incremental,
            encodings: TTS_ENCODINGS,
            sample_rates: Object.fromEntries(TTS_ENCODINGS.map((enc) => [enc, supportedSampleRates(enc)])),
          },
          voices: voices.map((v) => ({ id: v.id, name: v.name, languages: v.languages, gender: v.gender, sample_rate: v.sampleRate })),
          ...router.placement(mo),
        };
      }),
    sessionCount: () => sessions.size,
    async drain(deadlineMs) {
      draining = true;
      await Promise.all([...sessions].map((s) => s.drain(deadlineMs)));
    },
    close() {
      for (const s of [...sessions]) s.handleTransportClose();
    },
  };
}
