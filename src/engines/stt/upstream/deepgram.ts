/**
 * Engine type `deepgram`: relays a stream to Deepgram live STT `/v1/listen`
 * (shared/spec/protocols.md §2, upstreams.md §1.1) — `wss://api.deepgram.com`, a regional host, or
 * any Deepgram-compatible server such as voxgate's own `/v1/listen`.
 *
 * Wire: the stream config becomes the query (§2.2): `model`, `language`, `encoding=linear16`,
 * `sample_rate=16000`, `channels=1`, `interim_results`, `endpointing` (ms, or `false` when the
 * stream has no VAD or endpointing is off), `vad_events`, plus the instance's fixed `query` (e.g.
 * `smart_format`); `Authorization: Token <key>` and `X-Request-Id` on the upgrade; binary PCM;
 * `Finalize`, `KeepAlive`, `CloseStream` text frames (§2.3). A stream with `diarize` adds
 * `diarize=true` (and the speaker-count hints) and the words' `speaker` is relayed (issue 13).
 *
 * Results map 1:1 (§2.4): `Results` with `is_final` → `final` (alternatives[0] transcript,
 * confidence and words with `punctuated_word`/`speaker`; `start`, `duration`, `speech_final`,
 * `from_finalize`; language from `alternatives[0].languages[0]`, else the stream's), without →
 * `partial`; `SpeechStarted` → `speech_started`. `Metadata` and `UtteranceEnd` are ignored (the
 * session derives utterance ends itself). v1 has no JSON error frame (errors are closes, §2.5); an
 * `Error` frame (Flux v2, Deepgram-style routes) is mapped by its `err_code`/`code`.
 */
import { z } from 'zod';
import type { VoxgateConfig } from '../../../config/config.js';
import { listenWordSchema } from '../../../protocol/deepgram/schema.js';
import type { SttStreamConfig } from '../types.js';
import { parseTypedFrame, parseUpstreamSettings, relayWords, upstreamFrameError, upstreamSettingsShape, upstreamFormat, UpstreamSttEngine, UpstreamSttStream, type UpstreamRequest } from './common.js';

/** Query keys the engine sets from the stream config; the fixed `query` may not override them. */
export const DEEPGRAM_MAPPED_QUERY = ['model', 'language', 'encoding', 'sample_rate', 'channels', 'interim_results', 'endpointing', 'vad_events'] as const;

/** Settings of a `deepgram` instance (`engines.<id>`), strict. */
export const deepgramSettingsSchema = z
  .object({
    ...upstreamSettingsShape,
    /** Fixed extra query parameters (§2.2), e.g. `{"smart_format":"true"}`. */
    query: z
      .record(z.string().min(1), z.string())
      .default({})
      .refine((q) => !Object.keys(q).some((k) => (DEEPGRAM_MAPPED_QUERY as readonly string[]).includes(k)), {
        message: `query may not set ${DEEPGRAM_MAPPED_QUERY.join(', ')} (they come from the stream and the model setting)`,
      }),
  })
  .strict();
/** Validated `deepgram` settings. */
export type DeepgramSettings = z.output<typeof deepgramSettingsSchema>;

const num = z.number().finite();
const word = listenWordSchema.loose();
/** `Results` as this relay reads it (§2.4 required fields; unknown keys allowed). */
const resultsFrame = z
  .object({
    type: z.literal('Results'),
    start: num,
    duration: num,
    is_final: z.boolean().optional(),
    speech_final: z.boolean().optional(),
    from_finalize: z.boolean().optional(),
    channel: z
      .object({
        alternatives: z.array(z.object({ transcript: z.string(), confidence: num.optional(), words: z.array(word).optional(), languages: z.array(z.string()).optional() }).loose()),
      })
      .loose(),
  })
  .loose();
const speechStartedFrame = z.object({ type: z.literal('SpeechStarted'), timestamp: num }).loose();
const errorFrame = z
  .object({ type: z.literal('Error'), err_code: z.string().optional(), code: z.string().optional(), description: z.string().optional(), err_msg: z.string().optional(), message: z.string().optional() })
  .loose();

/** A relayed `/v1/listen` stream. A frame that is not JSON with a `type`, or a known type with wrong fields, is a retryable `provider_error`. */
export class DeepgramSttStream extends UpstreamSttStream {
  protected onText(text: string): void {
    const { type, json } = parseTypedFrame(text);
    switch (type) {
      case 'Results': {
        const r = resultsFrame.parse(json);
        const alt = r.channel.alternatives[0];
        const transcript = alt?.transcript ?? '';
        const ws = relayWords(alt?.words ?? []);
        if (r.is_final) {
          this.emitFinal(
            {
              transcript,
              confidence: alt?.confidence ?? 0,
              ...(this.config.wordTimestamps ? { words: ws } : {}),
              start: r.start,
              duration: r.duration,
              language: alt?.languages?.[0] ?? this.config.language,
              speechFinal: r.speech_final ?? false,
            },
            r.from_finalize === true,
          );
        } else {
          this.safeEmit('partial', {
            transcript,
            start: r.start,
            duration: r.duration,
            ...(alt?.confidence !== undefined ? { confidence: alt.confidence } : {}),
            ...(this.config.wordTimestamps && ws.length > 0 ? { words: ws } : {}),
          });
        }
        return;
      }
      case 'SpeechStarted':
        this.safeEmit('speech_started', { timestamp: speechStartedFrame.parse(json).timestamp });
        return;
      case 'Error': {
        const e = errorFrame.parse(json);
        this.fail(upstreamFrameError(e.err_code ?? e.code ?? 'provider_error', e.description ?? e.err_msg ?? e.message ?? '', this.o.secrets));
        return;
      }
      default:
        return; // Metadata, UtteranceEnd, future types
    }
  }
}

/** An engine instance relaying to one Deepgram-compatible `/v1/listen`. */
export class DeepgramSttEngine extends UpstreamSttEngine {
  constructor(
    id: string,
    private readonly s: DeepgramSettings,
  ) {
    super(id, s, {
      authScheme: 'Token',
      frames: { finalize: '{"type":"Finalize"}', close: '{"type":"CloseStream"}', keepalive: '{"type":"KeepAlive"}' },
      createStream: (ws, config, o) => new DeepgramSttStream(ws, config, o),
    });
    // Deepgram diarizes (`diarize=true`, words[].speaker): streams asking for it are labelled upstream
    // and the embedded diarizer is not run (src/engines/stt/diarizing.ts, mode `upstream`).
    this.capabilities.diarization = true;
  }

  protected request(config: SttStreamConfig): UpstreamRequest {
    const u = new URL(this.s.url);
    u.pathname = u.pathname.replace(/\/+$/, '') + '/v1/listen';
    const q = u.searchParams;
    q.set('model', this.s.model);
    q.set('language', config.language);
    // The client's own format when it passes through (engine contract v2): raw encodings are
    // described; containers are not (Deepgram: "omit encoding for containerised audio", protocols.md §2.2).
    const fmt = upstreamFormat(config);
    if (fmt.raw) {
      q.set('encoding', fmt.encoding);
      q.set('sample_rate', String(fmt.sampleRate));
      q.set('channels', String(fmt.channels));
    }
    q.set('interim_results', String(config.partials));
    q.set('endpointing', config.vad && config.endpointingMs !== null ? String(config.endpointingMs) : 'false');
    q.set('vad_events', String(config.vad));
    for (const [k, v] of Object.entries(this.s.query)) q.set(k, v);
    // Upstream diarization (issue 13 pass-through): Deepgram labels the words itself (§2.2 `diarize`);
    // the speaker-count hints are forwarded under voxgate's names (Deepgram ignores unknown
    // parameters; a voxgate `/v1/listen` upstream honours them, src/diarize/hints.ts).
    const d = config.diarize;
    if (d) {
      q.set('diarize', 'true');
      if (d.numSpeakers !== undefined) q.set('num_speakers', String(d.numSpeakers));
      if (d.minSpeakers !== undefined) q.set('min_speakers', String(d.minSpeakers));
      if (d.maxSpeakers !== undefined) q.set('max_speakers', String(d.maxSpeakers));
    }
    return { url: u.toString() };
  }
}

/**
 * Registry factory of type `deepgram`.
 * @throws Error naming the instance when `cfg.engines[instanceId]` is invalid or has unknown keys.
 */
export function createDeepgramSttEngine(cfg: VoxgateConfig, instanceId: string): DeepgramSttEngine {
  return new DeepgramSttEngine(instanceId, parseUpstreamSettings(deepgramSettingsSchema, cfg, instanceId, 'deepgram'));
}
