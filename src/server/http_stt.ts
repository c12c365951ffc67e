/**
 * Pre-recorded (HTTP) transcription routes (issue #3 "Pre-recorded (HTTP)"):
 *
 * | route | body | response |
 * |---|---|---|
 * | `POST /v1/listen?…` (Deepgram, §2.2 query) | raw audio (`audio/*`, or `application/octet-stream` with `encoding`/`sample_rate`), or JSON `{"url"}` | Deepgram pre-recorded JSON |
 * | `POST /v1/stt/{model}` (SLNG direct, §1.7) | multipart `audio` (+ `language`, …), raw body, or JSON `{"url"}` | Deepgram pre-recorded JSON |
 * | `POST /v1/bridges/unmute/stt/{model_variant}` (§1.7) | multipart `audio`/`url`, `language`, `sample_rate`, `encoding` | `{"type":"transcription",…}` |
 *
 * Bodies are streamed, never buffered whole (src/transcribe/prerecorded.ts). Every response, errors
 * included, carries a `dg-request-id` header and the id in the body. Errors: Deepgram route
 * `{err_code, err_msg, request_id}`; SLNG routes `{error, message, statusCode, request_id}` (§1.7
 * `ErrorResponse`). Statuses: 400 bad parameters or undecodable/truncated audio, 401 bad key,
 * 404 unknown model, 413 body over `http.maxBodyBytes`, 429 no free decoder.
 */
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { SttModelEntry, VoxgateConfig } from '../config/config.js';
import type { SttEngine } from '../engines/stt/types.js';
import { bridgeResponse, deepgramPrerecordedResponse, type PrerecordedInput } from '../protocol/deepgram/prerecorded.js';
import { parseListenQuery, type ListenOptions } from '../protocol/deepgram/query.js';
import type { KeyStore } from '../store/keys.js';
import { fetchAudio } from '../transcribe/fetch.js';
import { transcribeBody, type FileDecoder } from '../transcribe/prerecorded.js';
import { createRawFileDecoder } from '../transcribe/raw_decoder.js';
import { VoxgateError, toVoxgateError } from '../util/errors.js';
import { presentedKey } from './auth.js';
import { resolveListenModel } from './compat_routes.js';
import { matchSttRoute } from './routes.js';

/** Dependencies of the pre-recorded routes. */
export interface HttpSttDeps {
  config: VoxgateConfig;
  engines: Map<string, SttEngine & { version?: string }>;
  keys: KeyStore;
}

/** Encodings that are headerless and need `sample_rate`; anything else is sniffed from the bytes. */
const RAW = new Set(['linear16', 'mulaw', 'alaw']);

/** Create the decoder for one upload. Swappable so the compressed-audio decoder can slot in. */
export type UploadDecoderFactory = (o: { encoding: string; sampleRate?: number; channels?: number; targetRate: number; outputChannels: 1 | 'keep' }) => FileDecoder;

type Flavour = 'deepgram' | 'slng' | 'bridge';

/** Register the routes on `app` (an encapsulated plugin: its body parsers do not leak to other routes). */
export function registerHttpSttRoutes(app: FastifyInstance, deps: HttpSttDeps, createDecoder: UploadDecoderFactory = createRawFileDecoder): void {
  const { config, engines, keys } = deps;
  void app.register(async (scope) => {
    await scope.register(multipart, { limits: { fileSize: config.http.maxBodyBytes, files: 1, fields: 20 } });
    // Any other content type: hand the raw stream to the handler (no buffering, no size cap here —
    // the pipeline counts bytes).
    scope.addContentTypeParser('*', (_req, payload, done) => done(null, payload));

    const fail = (reply: FastifyReply, flavour: Flavour, requestId: string, err: unknown) => {
      const e = toVoxgateError(err);
      const status = e.httpStatus;
      void reply
        .code(status)
        .header('dg-request-id', requestId)
        .send(flavour === 'deepgram' ? { err_code: e.code, err_msg: e.message, request_id: requestId } : { error: e.code, message: e.message, statusCode: status, request_id: requestId });
    };

    const handle = async (req: FastifyRequest, reply: FastifyReply, flavour: Flavour, pickModel: (q: ListenOptions) => SttModelEntry) => {
      const requestId = randomUUID();
      reply.header('dg-request-id', requestId);
      try {
        const url = new URL(req.url, 'http://x');
        const key = presentedKey(req.headers, url);
        if (!key || !keys.verify(key)) throw new VoxgateError('auth_error', key ? 'invalid or revoked API key' : 'missing API key: send "Authorization: Token <key>" or "Bearer <key>"');
        const declared = Number(req.headers['content-length'] ?? NaN);
        if (declared > config.http.maxBodyBytes) throw new VoxgateError('payload_too_large', `request body of ${declared} bytes exceeds the ${config.http.maxBodyBytes}-byte limit`);
        const q = parseListenQuery(url.searchParams);
        const model = pickModel(q);
        const engine = engines.get(model.engine)!;

        // The audio: multipart field, JSON url, or the raw body.
        const ct = String(req.headers['content-type'] ?? '').toLowerCase();
        const fields: Record<string, string> = {};
        let body: AsyncIterable<Uint8Array> & { truncated?: boolean };
        if (ct.startsWith('multipart/form-data')) {
          const part = await req.file();
          if (part) for (const [k, v] of Object.entries(part.fields)) if (v && !Array.isArray(v) && 'value' in v) fields[k] = String(v.value);
          if (part?.fieldname === 'audio' || (part && part.fieldname === 'file')) body = part.file;
          else if (fields.url) body = (await fetchAudio(fields.url, config.http.fetch)).body;
          else {
            part?.file.resume();
            throw new VoxgateError('invalid_request', 'multipart body needs an "audio" file field (or a "url" field)');
          }
        } else if (ct.includes('application/json')) {
          const json = req.body as { url?: unknown } | null;
          if (!json || typeof json.url !== 'string') throw new VoxgateError('invalid_request', 'JSON body must be {"url": "https://…"}');
          body = (await fetchAudio(json.url, config.http.fetch)).body;
        } else {
          body = req.body as Readable;
          if (!body || typeof (body as Readable).on !== 'function') throw new VoxgateError('invalid_request', 'send the audio file as the request body');
        }

        const language = (fields.language ?? q.language ?? 'en').toLowerCase().split(/[-_]/)[0]!;
        if (!engine.capabilities.languages.includes(language)) {
          throw new VoxgateError('config_error', `unsupported language "${fields.language ?? q.language}"; this model supports: ${engine.capabilities.languages.join(', ')}`);
        }
        const encRaw = (fields.encoding ?? q.encoding ?? '').toLowerCase();
        const encoding = RAW.has(encRaw) ? encRaw : 'auto';
        const sampleRate = fields.sample_rate ? Number(fields.sample_rate) : q.sampleRate;
        const decoder = createDecoder({
          encoding,
          sampleRate: encoding === 'auto' ? undefined : sampleRate,
          channels: q.channels,
          targetRate: engine.capabilities.inputSampleRate,
          outputChannels: q.multichannel ? 'keep' : 1,
        });
        const result = await transcribeBody(body, {
          engine,
          decoder,
          language,
          multichannel: q.multichannel,
          endpointingMs: Math.round(q.uttSplit * 1000),
          maxBytes: config.http.maxBodyBytes,
        });
        if (body.truncated) throw new VoxgateError('payload_too_large', `upload exceeds the ${config.http.maxBodyBytes}-byte limit`);
        const input: PrerecordedInput = {
          requestId,
          createdAt: new Date(),
          model: model.code,
          engine: { id: engine.id, version: engine.version ?? 'unknown' },
          channels: result.channels,
          duration: result.duration,
          sha256: result.sha256,
          sourceChannels: result.sourceChannels,
          language,
        };
        const smart = q.smartFormat || fields.smart_format === 'true';
        const fmt = { punctuate: q.punctuate || smart || fields.punctuate === 'true', numerals: q.numerals || smart, smartFormat: smart };
        return reply.send(flavour === 'bridge' ? { ...bridgeResponse(input, fmt), request_id: requestId } : deepgramPrerecordedResponse(input, { format: fmt, utterances: q.utterances, paragraphs: q.paragraphs }));
      } catch (err) {
        if (req.socket.destroyed) return reply; // client gone: nothing to answer; resources were released
        // An upload refused before it was read (401, 413, …): discard the rest so the client, still
        // sending, can read the answer; then close the connection.
        if (!req.raw.readableEnded) {
          req.raw.resume();
          reply.header('connection', 'close');
        }
        fail(reply, flavour, requestId, err);
        return reply;
      }
    };

    const byPath = (prefix: string) => (req: FastifyRequest) => {
      const m = matchSttRoute(prefix + (req.params as { '*': string })['*'], config.stt.models);
      if (!m || 'notFound' in m) throw new VoxgateError('not_found', `unknown model "${(req.params as { '*': string })['*']}"; available: ${config.stt.models.map((e) => e.code).join(', ')}`);
      return m.model;
    };
    scope.post('/v1/listen', (req, reply) => handle(req, reply, 'deepgram', (q) => resolveListenModel(q.model, config)));
    scope.post('/v1/stt/*', (req, reply) => handle(req, reply, 'slng', () => byPath('/v1/stt/')(req)));
    scope.post('/v1/bridges/unmute/stt/*', (req, reply) => handle(req, reply, 'bridge', () => byPath('/v1/bridges/unmute/stt/')(req)));
  });
}
