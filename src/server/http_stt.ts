/**
 * Pre-recorded (HTTP) speech-to-text routes (issue #3 "Pre-recorded (HTTP)"; shared/spec/protocols.md
 * §1.7, §2.2):
 *
 * | route | body | response |
 * |---|---|---|
 * | `POST /v1/listen` (Deepgram) | raw audio (`audio/*`; `application/octet-stream` + `encoding`/`sample_rate` for headerless audio), or JSON `{"url": …}`; options in the query (§2.2) | Deepgram pre-recorded shape |
 * | `POST /v1/stt/{model}` (SLNG direct) | multipart (`audio` file or base64 field, `url`, option fields), raw audio, or JSON `{"url", …options}` | Deepgram pre-recorded shape |
 * | `POST /v1/bridges/unmute/stt/{model_variant}` (SLNG bridge) | multipart (`audio`/`url`, `language`, `sample_rate`, `encoding`, …), raw audio or JSON | `{"type":"transcription","is_final":true,"alternatives":[…],"channel":0,"language"}` |
 *
 * Everything is streamed — the body goes through the decoder into the engine as it arrives, paced
 * by the engine (src/transcribe/pipeline.ts); files are never buffered whole (multipart is parsed
 * in streaming mode; only an MP4 whose index follows its audio is spooled to a temp file).
 *
 * Errors are JSON with the code, a clear message and the request id, rendered from the catalogue
 * (`renderError`, src/util/errors.ts): Deepgram's shape `{err_code, err_msg, request_id}` with
 * Deepgram's own `err_code` (`INVALID_AUTH`, `INVALID_QUERY_PARAMETER`, `PAYLOAD_TOO_LARGE`, …) and a
 * `dg-error` header on `/v1/listen`, SLNG's `{error, message, statusCode, status}` on the SLNG routes
 * (both also carry `request_id` and `metadata.request_id`). 401 missing/invalid key, 400 bad options or
 * undecodable/truncated audio (`invalid_audio`), 404 unknown model, 413 over `http.maxBodyBytes`,
 * 429 engine at capacity. Every response carries `dg-request-id`. A client that disconnects
 * mid-upload or mid-transcription frees everything at once (ffmpeg killed, engine streams aborted).
 */
import fastifyMultipart from '@fastify/multipart';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { isRawEncoding, normalizeEncoding } from '../audio/decoder.js';
import { STREAM_SAMPLE_RATES } from '../audio/input.js';
import type { SttModelEntry, VoxgateConfig } from '../config/config.js';
import { defaultLanguage, modelLanguageRefusal } from '../config/model_language.js';
import type { SttEngine } from '../engines/stt/types.js';
import { parseListenQuery, type ListenOptions } from '../protocol/deepgram/query.js';
import type { KeyInfo } from '../store/keys.js';
import type { ApiKeyStore } from '../store/types.js';
import type { UsageMeter } from '../store/usage.js';
import { admitQuota, meterUsage } from './admission.js';
import { openUrl } from '../transcribe/fetch_url.js';
import { transcribeFile, type FileTranscription } from '../transcribe/pipeline.js';
import { deepgramPrerecorded, unmuteTranscription, type PrerecordedOptions } from '../transcribe/responses.js';
import { renderError, toVoxgateError, VoxgateError } from '../util/errors.js';
import { authenticate, redactUrl } from './auth.js';
import { resolveListenModel } from './compat_routes.js';
import { answerStall, jsonBodyParser, lingerClose, watchBodyIdle } from './guard.js';
import { sendError } from './refuse.js';
import { matchSttRoute } from './routes.js';
import { errorExtra } from './backends.js';
import type { BackendRouter, Selection } from './router.js';
import type { FailoverSttEngine } from '../engines/stt/failover.js';
import type { DiarizeOptions } from '../diarize/types.js';
import type { LiveState } from '../state/live.js';
import { admitLive } from './admission.js';

/** Dependencies of {@link httpSttPlugin}. */
export interface HttpSttDeps {
  config: VoxgateConfig;
  /** The gateway's backend selection (router.ts): every request's engine comes from it. */
  router: BackendRouter;
  /** Key store (issue 12: SQLite or Postgres); only `verifyKey` is used. */
  keys: ApiKeyStore;
  /** Usage metering and durable quotas (issue 12); absent = nothing metered. */
  meter?: UsageMeter;
  log: Logger;
  /** Per-key live limits (issue 12): the request holds a session slot until its response closes. */
  live?: LiveState;
}

/** Largest base64 `audio` form field accepted (it is held in memory; upload a file part for more). */
export const MAX_BASE64_FIELD_BYTES = 32 * 1024 * 1024;

type Flavor = 'deepgram' | 'slng';

/** Most multipart fields other than the audio part (option fields). */
export const MAX_FORM_FIELDS = 32;

/**
 * busboy limits of one multipart request (issue 14 #3): one file of at most `maxBytes` (+1 so the
 * excess is detected), at most {@link MAX_FORM_FIELDS} fields, each at most the base64 size of the
 * audio limit (a base64 `audio` field); other fields are checked against `http.maxFieldBytes` as they arrive.
 */
const MULTIPART_LIMITS = (maxBytes: number, base64Limit: number) => ({
  fileSize: maxBytes + 1,
  files: 1,
  fields: MAX_FORM_FIELDS,
  fieldSize: base64Limit,
  parts: MAX_FORM_FIELDS + 1,
  fieldNameSize: 100,
  headerPairs: 100,
});

/**
 * Any error of a pre-recorded request as a catalogue error: fastify/@fastify/multipart errors carry an
 * HTTP `statusCode` (413 limits, 4xx malformed bodies) and become `payload_too_large` / `invalid_request`
 * with a readable message — never `internal_error` (HTTP 500) for something the client sent.
 */
export function httpError(err: unknown): VoxgateError {
  if (err instanceof VoxgateError) return err;
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  const fcode = String((err as { code?: unknown } | null)?.code ?? '');
  const message = err instanceof Error ? err.message : String(err);
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const friendly: Record<string, string> = {
      FST_PARTS_LIMIT: `the form has too many parts (at most ${MAX_FORM_FIELDS} fields and one audio file)`,
      FST_FIELDS_LIMIT: `the form has too many fields (at most ${MAX_FORM_FIELDS})`,
      FST_FILES_LIMIT: 'the form has more than one file part; send the audio in a single "audio" part',
      FST_REQ_FILE_TOO_LARGE: 'the audio file exceeds the size limit of this server (config http.maxBodyBytes)',
      FST_PROTO_VIOLATION: 'a form field name is not allowed',
      FST_INVALID_JSON_FIELD_ERROR: 'a form field declared as JSON is not valid JSON',
    };
    return new VoxgateError(status === 413 ? 'payload_too_large' : status === 408 ? 'idle_timeout_exceeded' : 'invalid_request', friendly[fcode] ?? message, { cause: err });
  }
  if (/^Unexpected end of (multipart|form)|^Malformed|boundary/i.test(message)) return new VoxgateError('invalid_request', `malformed multipart body: ${message}`, { cause: err });
  return toVoxgateError(err);
}

/** Where the audio comes from and how it is declared. */
interface AudioSource {
  stream: Readable;
  encoding: string;
  sampleRate?: number;
  channels?: number;
  /** Release the source after the transcription (a fetched response not read to its end). */
  dispose?: () => void;
}

/** Per-request state shared by the handlers. */
interface Ctx {
  requestId: string;
  created: Date;
  flavor: Flavor;
  /** Aborted when the client goes away before the response is sent. */
  abort: AbortController;
  /** The authenticated key (set by the onRequest hook), for metering. */
  key?: KeyInfo;
}

const truthy = (v: string | undefined): boolean => v !== undefined && /^(true|1|yes)$/i.test(v);

/**
 * Parse an RFC 2586-style raw PCM media type: `audio/l16;rate=16000;channels=1` → linear16;
 * `audio/basic` → 8 kHz mu-law; `audio/pcmu`/`audio/pcma` (+ `rate`). Other types → null (sniffed).
 */
export function rawFormatFromContentType(ct: string | undefined): { encoding: string; sampleRate?: number; channels?: number } | null {
  if (!ct) return null;
  const [type, ...params] = ct.toLowerCase().split(';').map((s) => s.trim());
  const p = Object.fromEntries(params.map((x) => x.split('=').map((s) => s.trim()) as [string, string]));
  const rate = p.rate ? Number(p.rate) : undefined;
  const channels = p.channels ? Number(p.channels) : undefined;
  if (type === 'audio/l16') return { encoding: 'linear16', sampleRate: rate, channels };
  if (type === 'audio/basic') return { encoding: 'mulaw', sampleRate: 8000, channels };
  if (type === 'audio/pcmu') return { encoding: 'mulaw', sampleRate: rate ?? 8000, channels };
  if (type === 'audio/pcma') return { encoding: 'alaw', sampleRate: rate ?? 8000, channels };
  return null;
}

/**
 * Fastify plugin with the three pre-recorded routes. Registered in its own encapsulated scope: the
 * pass-through body parser and the multipart parser apply to these routes only.
 */
export async function httpSttPlugin(app: FastifyInstance, deps: HttpSttDeps): Promise<void> {
  const { config, router, keys, log, meter } = deps;
  const maxBytes = config.http.maxBodyBytes;

  /** Largest base64 text this server accepts for `audio` (JSON body or form field), bytes. */
  const base64Limit = Math.ceil((Math.min(MAX_BASE64_FIELD_BYTES, maxBytes) * 4) / 3) + 4;
  // Raw audio bodies are not parsed: the handler streams them. JSON bodies are bounded in bytes and
  // shape while they arrive (guard.ts); only /v1/stt/… JSON may be large (base64 `audio`).
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(
    'application/json',
    jsonBodyParser((req) => (req.url.startsWith('/v1/listen') ? config.http.maxJsonBodyBytes : Math.max(config.http.maxJsonBodyBytes, base64Limit + 64 * 1024)), {
      maxDepth: config.limits.maxJsonDepth,
      maxTokens: config.limits.maxJsonTokens,
    }),
  );
  // Limits per request (multipart()); these are the defaults for anything else.
  await app.register(fastifyMultipart, { limits: MULTIPART_LIMITS(maxBytes, base64Limit) });

  const start = (req: FastifyRequest, reply: FastifyReply, flavor: Flavor): Ctx => {
    const ctx: Ctx = { requestId: randomUUID(), created: new Date(), flavor, abort: new AbortController() };
    reply.header('dg-request-id', ctx.requestId);
    // The response closing = nothing more will be sent: the client is gone (before the response was
    // complete), or an error was answered early (401/408/413) while the body was still being read —
    // either way a transcription still running is released now. (node does not destroy a request
    // whose response has finished, so its body stream would never end by itself.)
    reply.raw.on('close', () => ctx.abort.abort());
    req.raw.on('error', () => {}); // a reset mid-upload is seen by the pipeline; never an uncaught error
    return ctx;
  };

  const fail = (req: FastifyRequest, reply: FastifyReply, ctx: Ctx, err: unknown): FastifyReply => {
    if (reply.sent || reply.raw.headersSent) return reply; // already answered (e.g. a stalled body got its 408)
    const e = httpError(err);
    if (ctx.abort.signal.aborted) log.info({ request_id: ctx.requestId }, 'pre-recorded request abandoned by the client');
    else if (e.code === 'internal_error') log.error({ err, request_id: ctx.requestId }, 'pre-recorded transcription failed');
    else log.info({ request_id: ctx.requestId, code: e.code, url: redactUrl(new URL(req.url, 'http://x')) }, e.message);
    // An unread request body must not be read by the next request on this connection.
    if (!req.raw.complete) {
      reply.header('connection', 'close');
      lingerClose(req.raw, reply.raw, e.httpStatus === 401 ? 64 * 1024 : undefined); // no key: discard little
    }
    return sendError(reply, renderError(ctx.flavor, e, { requestId: ctx.requestId, extra: errorExtra(e, { request_id: ctx.requestId, metadata: { request_id: ctx.requestId } }) }));
  };

  const contexts = new WeakMap<FastifyRequest, Ctx>();
  /** Backend selections made before the body is read (onRequest), by request. */
  const selections = new WeakMap<FastifyRequest, Selection<FailoverSttEngine>>();
  /**
   * The catalogue entry a request names, when it can be told from the URL alone (null when the URL is
   * bad: the handler then reports that error in full).
   */
  const modelOfUrl = (url: URL): SttModelEntry | null => {
    try {
      if (url.pathname.replace(/\/+$/, '') === '/v1/listen') return resolveListenModel(parseListenQuery(url.searchParams).model, config);
      const route = matchSttRoute(url.pathname, config.stt.models);
      return route && !('notFound' in route) ? route.model : null;
    } catch {
      return null;
    }
  };
  /**
   * The request's backend selection (router.ts): made once, released (`end()`) when the response
   * closes — the client went away, or the answer was sent.
   * @throws RoutingError (HTTP 400) for BYOK on a `slng/` route or a bad region/world-part pin.
   */
  const selectionFor = (req: FastifyRequest, ctx: Ctx, model: SttModelEntry): Selection<FailoverSttEngine> => {
    let sel = selections.get(req);
    if (sel) return sel;
    sel = router.stt(model, req.headers, new URL(req.url, 'http://x'), ctx.requestId);
    selections.set(req, sel);
    const end = sel.end;
    if (ctx.abort.signal.aborted) end();
    else ctx.abort.signal.addEventListener('abort', () => end(), { once: true });
    return sel;
  };
  const flavorOf = (url: string): Flavor => (url.startsWith('/v1/listen') ? 'deepgram' : 'slng');
  /** The request's context, made by the onRequest hook. */
  const ctxOf = (req: FastifyRequest, reply: FastifyReply): Ctx => contexts.get(req) ?? start(req, reply, flavorOf(req.url));
  const idleMs = config.http.bodyIdleTimeoutMs;

  // Authentication runs before fastify reads any of the body (issue 14 #1): a request without a valid
  // key costs its headers only, and its connection is closed without reading the body. Then the body
  // idle watchdog (issue 14 #2): a body that stops arriving gets 408 and frees what it holds.
  app.addHook('onRequest', async (req, reply) => {
    const ctx = start(req, reply, flavorOf(req.url));
    contexts.set(req, ctx);
    const url = new URL(req.url, 'http://x');
    const auth = await authenticate(req.headers, url, keys);
    if (!auth.ok) return fail(req, reply, ctx, auth.error);
    ctx.key = auth.key;
    // issue 12: a key whose audio quota is used up is refused before its body is read or a backend dialled.
    const quota = await admitQuota({ key: auth.key, service: 'stt', meter, log });
    if (quota) return fail(req, reply, ctx, quota);
    // Per-key live limits (issue 12) before any backend is chosen; the slot is held until the response closes.
    if (deps.live) {
      try {
        const lease = await admitLive(deps.live, { key: auth.key, session: { sessionId: ctx.requestId, model: url.pathname, kind: 'http' } });
        if (reply.raw.closed || req.raw.destroyed) lease.release();
        else reply.raw.once('close', () => lease.release());
      } catch (err) {
        return fail(req, reply, ctx, err);
      }
    }
    // Backend selection before the body is read: BYOK and region/world-part pins are refused at once.
    const model = modelOfUrl(url);
    if (model) {
      try {
        selectionFor(req, ctx, model);
      } catch (err) {
        return fail(req, reply, ctx, err);
      }
    }
    watchBodyIdle(req.raw, idleMs, () => {
      log.info({ request_id: ctx.requestId }, 'request body stalled; answering 408');
      answerStall(req, reply, () =>
        fail(req, reply, ctx, new VoxgateError('idle_timeout_exceeded', `no request body data arrived for ${idleMs} ms (config http.bodyIdleTimeoutMs); the upload was abandoned`)),
      );
    });
  });

  /** Refuse a declared body over the limit before reading it. */
  const checkLength = (req: FastifyRequest): void => {
    const len = Number(req.headers['content-length']);
    if (Number.isFinite(len) && len > maxBytes + 64 * 1024) {
      throw new VoxgateError('payload_too_large', `the request body is ${len} bytes, over the ${maxBytes}-byte limit of this server (config http.maxBodyBytes)`);
    }
  };

  /** The failover engine of this request's selection (made in onRequest when the URL named the model). */
  const engineFor = (req: FastifyRequest, ctx: Ctx, model: SttModelEntry): Selection<FailoverSttEngine> => selectionFor(req, ctx, model);

  /**
   * Validate a language against the engine; returns the ISO-639-1 code used. Without a requested
   * language, the model's own (`language` of the entry, e.g. `hi` for `slng/deepgram/nova:3-hi`), else `en`.
   */
  const languageFor = (engine: SttEngine, requested: string | undefined, model?: SttModelEntry): string => {
    const language = (requested || defaultLanguage(model)).toLowerCase().split(/[-_]/)[0]!;
    if (!engine.capabilities.languages.includes(language)) {
      throw new VoxgateError('config_error', `unsupported language "${requested}"; this model supports: ${engine.capabilities.languages.join(', ')}`);
    }
    return language;
  };

  /**
   * Validate a declared encoding (a WAV header, when present, overrides a raw declaration; without
   * `sample_rate` raw linear16 is taken as 16 kHz and G.711 as 8 kHz).
   */
  const checkEncoding = (encoding: string, sampleRate: number | undefined): void => {
    const e = normalizeEncoding(encoding);
    if (!e) throw new VoxgateError('config_error', `unsupported encoding "${encoding}"; this server decodes linear16, mulaw, alaw, opus, ogg-opus, webm, mp3, flac, aac, mp4`);
    if (isRawEncoding(e) && sampleRate !== undefined && !STREAM_SAMPLE_RATES.includes(sampleRate as (typeof STREAM_SAMPLE_RATES)[number])) {
      throw new VoxgateError('config_error', `unsupported sample_rate ${sampleRate} for raw ${e}; supported: ${STREAM_SAMPLE_RATES.join(', ')}`);
    }
  };

  /** The raw request body as an audio source. */
  const rawBody = (req: FastifyRequest, declared: { encoding?: string; sampleRate?: number; channels?: number }): AudioSource => {
    checkLength(req);
    const stream = req.body instanceof Readable ? req.body : req.raw;
    const fromType = declared.encoding ? null : rawFormatFromContentType(req.headers['content-type']);
    const encoding = declared.encoding ?? fromType?.encoding ?? 'auto';
    const sampleRate = declared.sampleRate ?? fromType?.sampleRate;
    if (encoding !== 'auto') checkEncoding(encoding, sampleRate);
    return { stream, encoding, sampleRate, channels: declared.channels ?? fromType?.channels };
  };

  /** A `{"url"}` body (or form field) as an audio source. */
  const fromUrl = async (url: unknown, ctx: Ctx): Promise<AudioSource> => {
    const { body } = await openUrl(url, config.http.fetch, maxBytes, ctx.abort.signal);
    return { stream: body, encoding: 'auto', dispose: () => body.destroy() };
  };

  const transcribe = async (
    src: AudioSource,
    sel: Selection<FailoverSttEngine>,
    language: string,
    multichannel: boolean,
    ctx: Ctx,
    diarize?: DiarizeOptions,
  ): Promise<FileTranscription> => {
    try {
      const t = await transcribeFile({
        engine: sel.engine,
        ctx: sel.ctx,
        input: src.stream,
        encoding: src.encoding,
        sampleRate: src.sampleRate,
        channels: src.channels,
        multichannel,
        language,
        maxBytes,
        parallel: config.http.parallelStreams,
        signal: ctx.abort.signal,
        diarize,
      });
      if (ctx.key) meterUsage(meter, config, { key: ctx.key, service: 'stt', transport: 'http', model: sel.ctx.modelCode ?? 'unknown', backend: sel.backendId(), audioSecondsIn: t.durationSeconds });
      return t;
    } finally {
      src.dispose?.();
    }
  };

  const responseOptions = (o: ListenOptions): PrerecordedOptions => ({
    punctuate: o.punctuate,
    smartFormat: o.smartFormat,
    numerals: o.numerals,
    utterances: o.utterances,
    paragraphs: o.paragraphs,
    uttSplit: o.uttSplit,
  });

  /**
   * Multipart: fields before the audio part configure the transcription. Fields after it may add
   * response options (`punctuate`, `utterances` …); a later `language` or `multichannel` that would
   * have changed the transcription is a 400 — never silently ignored. (`curl -F audio=@f -F language=en`
   * puts the audio first, so a later field that agrees with what was used is fine.)
   */
  const multipart = async (
    req: FastifyRequest,
    ctx: Ctx,
    params: URLSearchParams,
    engine: SttEngine,
    run: (src: AudioSource, params: URLSearchParams) => Promise<FileTranscription>,
  ): Promise<FileTranscription> => {
    let t: FileTranscription | null = null;
    let used: URLSearchParams | null = null;
    const num = (k: string): number | undefined => (params.get(k) ? Number(params.get(k)) : undefined);
    checkLength(req);
    // The whole request counts against http.maxBodyBytes, and bytes that arrive outside the audio file
    // part (fields, which busboy holds in memory) against a small budget (issue 14 #3).
    const parts = req.parts({ limits: MULTIPART_LIMITS(maxBytes, base64Limit) });
    const fieldBudget = base64Limit + MAX_FORM_FIELDS * config.http.maxFieldBytes + 64 * 1024;
    let total = 0;
    let outsideFile = 0;
    let inFile = false;
    let refuse: (e: VoxgateError) => void = () => {};
    const refused = new Promise<never>((_, reject) => (refuse = reject));
    refused.catch(() => {});
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (!inFile) outsideFile += chunk.length;
      const over =
        total > maxBytes + 64 * 1024
          ? `the form is over the ${maxBytes}-byte limit of this server (config http.maxBodyBytes)`
          : outsideFile > fieldBudget
            ? `the form's text fields are over ${fieldBudget} bytes; send the audio as a file part`
            : null;
      if (over) {
        req.raw.off('data', onData);
        req.raw.unpipe();
        req.raw.pause();
        refuse(new VoxgateError('payload_too_large', over));
        ctx.abort.abort(); // a transcription under way releases its decoder now
      }
    };
    req.raw.on('data', onData); // after req.parts() piped the body into busboy: observes, never reads first
    const it = parts[Symbol.asyncIterator]();
    try {
      for (;;) {
        const next = await Promise.race([it.next(), refused]);
        if (next.done) break;
        const part = next.value;
        const isAudio = part.fieldname === 'audio' || (part.fieldname === 'url' && part.type === 'field');
        if (part.type === 'file' && part.fieldname !== 'audio') {
          throw new VoxgateError('invalid_request', `unexpected file field "${part.fieldname}"; send the audio in the "audio" field`);
        }
        if (!isAudio) {
          const value = String((part as { value?: unknown }).value ?? '');
          if (Buffer.byteLength(value) > config.http.maxFieldBytes || (part as { valueTruncated?: boolean }).valueTruncated) {
            throw new VoxgateError('payload_too_large', `form field "${part.fieldname.slice(0, 40)}" is over ${config.http.maxFieldBytes} bytes (config http.maxFieldBytes)`);
          }
          params.set(part.fieldname, value);
          continue;
        }
        if (t) throw new VoxgateError('invalid_request', 'the form has more than one "audio"/"url" part');
        if (part.type === 'field' && (part as { valueTruncated?: boolean }).valueTruncated) {
          throw new VoxgateError('payload_too_large', `the base64 "${part.fieldname}" field is over ${base64Limit} bytes; upload the audio as a file part`);
        }
        used = new URLSearchParams(params);
        const encoding = params.get('encoding') || 'auto';
        if (encoding !== 'auto') checkEncoding(encoding, num('sample_rate'));
        let src: AudioSource;
        if (part.type === 'file') src = { stream: part.file, encoding, sampleRate: num('sample_rate'), channels: num('channels') };
        else if (part.fieldname === 'url') src = await fromUrl(String(part.value ?? ''), ctx);
        else src = { stream: Readable.from([Buffer.from(String(part.value ?? ''), 'base64')]), encoding, sampleRate: num('sample_rate'), channels: num('channels') };
        inFile = part.type === 'file';
        t = await Promise.race([run(src, params), refused]);
        inFile = false;
        if (part.type === 'file' && part.file.truncated) throw new VoxgateError('payload_too_large', `the audio exceeds the ${maxBytes}-byte limit of this server`);
      }
    } finally {
      req.raw.off('data', onData);
    }
    if (!t || !used) throw new VoxgateError('invalid_request', 'the form has no "audio" (file or base64 text) or "url" field');
    const before = parseListenQuery(used);
    const after = parseListenQuery(params);
    if (
      languageFor(engine, before.language) !== languageFor(engine, after.language) ||
      before.multichannel !== after.multichannel ||
      JSON.stringify(before.diarizeOptions ?? null) !== JSON.stringify(after.diarizeOptions ?? null)
    ) {
      throw new VoxgateError('invalid_request', 'form fields "language", "multichannel" and "diarize" (with its speaker hints) must precede the "audio" part (they decide how it is transcribed)');
    }
    return t;
  };

  // Errors raised by fastify itself for these routes (malformed or oversized JSON, multipart limits)
  // get the same JSON shape and request id as the handlers' own errors.
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    const ctx = ctxOf(req, reply);
    return fail(req, reply, ctx, err);
  });

  const isJson = (req: FastifyRequest): boolean => /^application\/json\b/i.test(req.headers['content-type'] ?? '');

  // ---- POST /v1/listen (Deepgram pre-recorded) ----
  // JSON bodies carry a URL or base64 audio (bounded); raw and multipart bodies are streamed.
  const routeOpts = { bodyLimit: Math.ceil((MAX_BASE64_FIELD_BYTES * 4) / 3) + 64 * 1024 };
  app.post('/v1/listen', routeOpts, async (req, reply) => {
    const ctx = ctxOf(req, reply);
    try {
      const q = new URL(req.url, 'http://x').searchParams;
      const opts = parseListenQuery(q);
      const model = resolveListenModel(opts.model, config);
      const sel = engineFor(req, ctx, model);
      const engine = sel.engine;
      const refusal = modelLanguageRefusal(model, engine); // before the body is read
      if (refusal) throw refusal;
      const language = languageFor(engine, opts.language, model);
      const run = (src: AudioSource) => transcribe(src, sel, language, opts.multichannel, ctx, opts.diarizeOptions);
      let t: FileTranscription;
      let fmt = opts;
      if (isJson(req)) {
        t = await run(await fromUrl((req.body as { url?: unknown } | null)?.url, ctx));
      } else if (req.isMultipart()) {
        t = await multipart(req, ctx, q, engine, (src) => run(src));
        fmt = parseListenQuery(q);
      } else {
        t = await run(rawBody(req, { encoding: opts.encoding, sampleRate: opts.sampleRate, channels: opts.channels }));
      }
      return reply.send(deepgramPrerecorded(t, { requestId: ctx.requestId, created: ctx.created, model, engine: { id: engine.id, version: engine.version ?? 'unknown' }, language }, responseOptions(fmt)));
    } catch (err) {
      return fail(req, reply, ctx, err);
    }
  });

  // ---- POST /v1/stt/{model} (SLNG direct, Deepgram pre-recorded shape) and the unmute bridge ----
  const slngRoute = (prefix: '/v1/stt/' | '/v1/bridges/unmute/stt/') => async (req: FastifyRequest, reply: FastifyReply) => {
    const bridge = prefix !== '/v1/stt/';
    const ctx = ctxOf(req, reply);
    try {
      const url = new URL(req.url, 'http://x');
      const route = matchSttRoute(url.pathname, config.stt.models);
      if (!route || 'notFound' in route) {
        throw new VoxgateError('not_found', `unknown model "${route ? route.notFound : url.pathname.slice(prefix.length)}"; available: ${config.stt.models.map((m) => m.code).join(', ')}`);
      }
      const sel = engineFor(req, ctx, route.model);
      const engine = sel.engine;
      const refusal = modelLanguageRefusal(route.model, engine); // before the body is read (HTTP 400 config_error)
      if (refusal) throw refusal;
      const params = new URLSearchParams(url.searchParams);
      const run = (src: AudioSource, p: URLSearchParams) => {
        const o = parseListenQuery(p);
        return transcribe(src, sel, languageFor(engine, o.language, route.model), o.multichannel && !bridge, ctx, bridge ? undefined : o.diarizeOptions);
      };
      let t: FileTranscription;
      if (isJson(req)) {
        const body = (req.body ?? {}) as Record<string, unknown>;
        if (typeof body !== 'object' || Array.isArray(body)) throw new VoxgateError('invalid_request', 'the JSON body must be an object with "url"');
        for (const [k, v] of Object.entries(body)) if (k !== 'url' && k !== 'audio' && (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')) params.set(k, String(v));
        if (typeof body.audio === 'string') {
          const buf = Buffer.from(body.audio, 'base64');
          t = await run({ stream: Readable.from([buf]), encoding: params.get('encoding') || 'auto', sampleRate: params.get('sample_rate') ? Number(params.get('sample_rate')) : undefined }, params);
        } else {
          t = await run(await fromUrl(body.url, ctx), params);
        }
      } else if (req.isMultipart()) {
        t = await multipart(req, ctx, params, engine, run);
      } else {
        const o = parseListenQuery(params);
        t = await run(rawBody(req, { encoding: o.encoding, sampleRate: o.sampleRate, channels: o.channels }), params);
      }
      const o = parseListenQuery(params);
      const language = languageFor(engine, o.language, route.model);
      if (bridge) {
        return reply.send(unmuteTranscription(t, language, { punctuate: o.punctuate || truthy(params.get('enable_punctuation') ?? undefined), smartFormat: o.smartFormat, numerals: o.numerals }));
      }
      return reply.send(
        deepgramPrerecorded(t, { requestId: ctx.requestId, created: ctx.created, model: route.model, engine: { id: engine.id, version: engine.version ?? 'unknown' }, language }, responseOptions(o)),
      );
    } catch (err) {
      return fail(req, reply, ctx, err);
    }
  };
  app.post('/v1/stt/*', routeOpts, slngRoute('/v1/stt/'));
  app.post('/v1/bridges/unmute/stt/*', routeOpts, slngRoute('/v1/bridges/unmute/stt/'));
}
