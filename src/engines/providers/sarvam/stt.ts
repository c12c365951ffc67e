/**
 * Engine type `sarvam` (STT): relays a stream to Sarvam streaming speech-to-text, model family saaras
 * (shared/spec/upstreams.md §1.11; sources: SV1/SV2 docs.sarvam.ai streaming pages, and the wire as
 * implemented by livekit/agents-js `plugins/sarvam/src/stt.ts` [LK-P], which is the only complete
 * message list we have: the realtime-beta endpoint's full message list is **unconfirmed**, so this
 * adapter speaks the GA endpoint `/speech-to-text/ws`).
 *
 * ## Host (region)
 * Sarvam serves from India only: `wss://api.sarvam.ai/speech-to-text/ws` (**unconfirmed** residency;
 * fits SLNG world part `ap`, so give the instance an `ap` region such as `asia-south1` or
 * `ap-south-1`). `url` overrides the host; a `url` without a path gets `/speech-to-text/ws`.
 *
 * ## Wire
 * Upgrade with `API-Subscription-Key: <key>` and the query `model` (default `saaras:v3`),
 * `language-code` (`<language>-IN`; Odia `or` → `od-IN`), `mode` (default `transcribe`), `sample_rate=16000`,
 * `input_audio_codec=pcm_s16le`, `vad_signals=true`, `flush_signal=true` (+ `high_vad_sensitivity`
 * when set). Audio = JSON text frames `{"audio":{"data":<base64 PCM>,"encoding":"audio/wav","sample_rate":16000}}`
 * (the gateway always decodes to 16 kHz PCM: no passthrough). `finalize()` → `{"type":"flush"}`.
 * Keepalive: Sarvam rejects frames without `audio` (LK-P), so the keepalive is 100 ms of silence in an
 * audio frame, sent when nothing was sent for `keepAliveMs` (Sarvam closes idle sockets after ~20 s).
 * `close()` → `{"type":"end_of_stream","audio":{"data":"",…}}`; Sarvam does not document that it then
 * closes, so the stream closes the socket itself (1000) once the answer to the end of stream arrived
 * (a `data` frame), or when no speech is pending, or after `closeDrainMs` without one.
 *
 * ## Results
 * - `{"type":"events","data":{"signal_type":"START_SPEECH"}}` → `speech_started` (the timestamp is the
 *   audio sent so far, seconds: Sarvam's events carry no stream time); `END_SPEECH` marks the utterance end.
 * - `{"type":"data","data":{transcript, language_code, timestamps?, metrics}}` → one `final` per
 *   utterance (Sarvam sends no partials: capabilities say `partials: false`). Times are on the stream
 *   clock measured by the gateway: `start` = the audio sent at START_SPEECH (≥ the previous final's end),
 *   end = the audio sent at END_SPEECH (else at the result), so they are upper bounds by one network
 *   round trip. `speech_final` = VAD ended the utterance; a `data` frame while a `flush` is outstanding is
 *   the `fromFinalize` answer of the oldest `finalize()` (one per finalize; a flush with nothing to
 *   transcribe is answered by the base's `finalizeTimeoutMs` empty final). Sarvam gives no transcript
 *   confidence (0 is reported) and no word times on the WebSocket (`wordTimestamps: false`).
 * - `{"type":"error","data":{message, code}}` → by code/message: auth (`401`/`403`/key) →
 *   non-retryable `backend_connection_failed`; `429`/rate/limit/concurrent → `rate_limit`; `400`/invalid →
 *   `config_error`; else retryable `provider_error`.
 *
 * Limits: 20 (Starter) / 100 (Pro, Business) concurrent STT sockets per account (SV2 ratelimits):
 * `maxConcurrent` (default 20) + `queueWaitMs`, enforced before dialling; BYOK sessions skip it.
 */
import { z } from 'zod';
import type { VoxgateConfig } from '../../../config/config.js';
import type { RequestContext } from '../../context.js';
import { accountLimiter } from '../../limits.js';
import type { SttStreamConfig } from '../../stt/types.js';
import { parseTypedFrame, parseUpstreamSettings, upstreamFrameError, upstreamSettingsShape, UPSTREAM_SAMPLE_RATE, UpstreamSttEngine, UpstreamSttStream, type UpstreamRequest } from '../../stt/upstream/common.js';
import type { VoxgateError } from '../../../util/errors.js';

/** Default Sarvam STT WebSocket (GA). */
export const SARVAM_STT_URL = 'wss://api.sarvam.ai/speech-to-text/ws';
/** Languages saaras serves (ISO-639-1), as Sarvam's `<code>-IN` tags (SV2; LK-P models.ts). */
export const SARVAM_LANGUAGES: Readonly<Record<string, string>> = {
  hi: 'hi-IN',
  bn: 'bn-IN',
  kn: 'kn-IN',
  ml: 'ml-IN',
  mr: 'mr-IN',
  or: 'od-IN',
  pa: 'pa-IN',
  ta: 'ta-IN',
  te: 'te-IN',
  en: 'en-IN',
  gu: 'gu-IN',
};

/** Settings of a `sarvam` STT instance (`engines.<id>`), strict. Times in ms. */
export const sarvamSttSettingsSchema = z
  .object({
    ...upstreamSettingsShape,
    /** WebSocket URL; default {@link SARVAM_STT_URL}; a URL without a path gets `/speech-to-text/ws`. */
    url: upstreamSettingsShape.url.optional(),
    /** saaras model (`saaras:v3`, `saaras:v4`, …). */
    model: z.string().min(1).default('saaras:v3'),
    /** `mode` query: `transcribe` | `translate` | `verbatim` | `transliterate` | `codemix`. */
    mode: z.string().min(1).default('transcribe'),
    /** Sarvam's `high_vad_sensitivity` (absent: Sarvam's default). */
    highVadSensitivity: z.boolean().optional(),
    languages: z.array(z.string().min(2)).min(1).default(Object.keys(SARVAM_LANGUAGES)),
    /** Unknown documented pace cap: failover replays at real time. */
    replayPace: z.number().positive().nullable().default(1),
    /** Audio is JSON/base64 PCM: the gateway decodes every client encoding. */
    passthroughEncodings: z.array(z.enum(['linear16', 'mulaw', 'alaw', 'opus', 'ogg-opus', 'webm', 'mp3', 'flac', 'aac', 'mp4'])).max(0).default([]),
    /** After `close()` with no speech pending, wait this long for a last result before closing the socket, ms. */
    closeDrainMs: z.number().int().min(0).default(1500),
    /** Concurrent STT sockets of this account (Starter 20, Pro/Business 100); enforced before dialling. */
    maxConcurrent: z.number().int().positive().default(20),
    /** How long a start waits for a free slot before `rate_limit`, ms. */
    queueWaitMs: z.number().int().min(0).default(2000),
  })
  .strict();
/** Validated `sarvam` STT settings. */
export type SarvamSttSettings = z.output<typeof sarvamSttSettingsSchema>;

/** `<lang>` → Sarvam's `language-code` (`hi` → `hi-IN`; an unlisted code → `<code>-IN`). */
export function sarvamLanguageCode(language: string): string {
  return SARVAM_LANGUAGES[language] ?? `${language}-IN`;
}

/** One audio frame of Sarvam's wire carrying `pcm` (16 kHz linear16 bytes). */
export function sarvamAudioFrame(pcm: Buffer): string {
  return JSON.stringify({ audio: { data: pcm.toString('base64'), encoding: 'audio/wav', sample_rate: UPSTREAM_SAMPLE_RATE } });
}

const num = z.number().finite();
const dataFrame = z
  .object({
    type: z.literal('data'),
    data: z.object({ transcript: z.string().optional(), language_code: z.string().nullable().optional(), request_id: z.string().optional() }).loose(),
  })
  .loose();
const eventsFrame = z.object({ type: z.literal('events'), data: z.object({ signal_type: z.string().optional(), event_type: z.string().optional(), occured_at: num.optional() }).loose().optional() }).loose();
const errorFrame = z
  .object({ type: z.literal('error'), data: z.object({ message: z.string().optional(), error: z.string().optional(), code: z.union([z.string(), num]).optional() }).loose().optional(), message: z.string().optional(), code: z.union([z.string(), num]).optional() })
  .loose();

/**
 * Map a Sarvam error frame (module docs "Results").
 * @param code `data.code` (string or number), `message` its text (redacted here).
 */
export function sarvamError(code: string | number | undefined, message: string, secrets: readonly string[]): VoxgateError {
  const c = String(code ?? '');
  const text = `Sarvam error${c ? ` ${c}` : ''}: ${message}`;
  const both = `${c} ${message}`;
  if (/\b(401|403)\b|unauthori[sz]ed|forbidden|invalid api key|subscription key/i.test(both)) return upstreamFrameError('auth_error', text, secrets);
  if (/\b429\b|rate|limit|concurren|quota/i.test(both)) return upstreamFrameError('rate_limit', text, secrets);
  if (/\b400\b|invalid|unsupported|bad request/i.test(both)) return upstreamFrameError('config_error', text, secrets);
  return upstreamFrameError('provider_error', text, secrets);
}

/** A relayed Sarvam STT stream (module docs). */
export class SarvamSttStream extends UpstreamSttStream {
  /** Audio seconds sent when START_SPEECH / END_SPEECH arrived for the utterance in progress. */
  private uttStart: number | null = null;
  private uttEnd: number | null = null;
  private drainTimer: NodeJS.Timeout | null = null;

  constructor(
    ws: ConstructorParameters<typeof UpstreamSttStream>[0],
    config: SttStreamConfig,
    o: ConstructorParameters<typeof UpstreamSttStream>[2],
    private readonly closeDrainMs: number,
  ) {
    super(ws, config, o);
    ws.once('close', () => this.clearDrain());
  }

  protected override audioFrame(audio: Buffer): string {
    return sarvamAudioFrame(audio);
  }

  protected onText(text: string): void {
    const { type, json } = parseTypedFrame(text);
    switch (type) {
      case 'events': {
        const sig = eventsFrame.parse(json).data?.signal_type;
        if (sig === 'START_SPEECH') {
          this.uttStart = Math.max(this.lastFinalEnd, this.audioSeconds);
          this.uttEnd = null;
          if (this.config.vad) this.safeEmit('speech_started', { timestamp: this.uttStart });
        } else if (sig === 'END_SPEECH') this.uttEnd = this.audioSeconds;
        return;
      }
      case 'data': {
        const d = dataFrame.parse(json).data;
        const transcript = (d.transcript ?? '').trim();
        const fromFlush = this.outstandingFinalizes > 0;
        const start = Math.max(this.lastFinalEnd, this.uttStart ?? this.lastFinalEnd);
        const endRaw = this.uttEnd ?? this.audioSeconds;
        const end = Math.max(start, endRaw);
        const speechFinal = this.uttEnd !== null && !fromFlush;
        this.uttStart = null;
        this.uttEnd = null;
        if (transcript || fromFlush) {
          this.emitFinal(
            {
              transcript,
              confidence: 0,
              ...(this.config.wordTimestamps ? { words: [] } : {}),
              start,
              duration: end - start,
              language: d.language_code ? d.language_code.split('-')[0]!.replace(/^od$/, 'or') : this.config.language,
              speechFinal,
            },
            fromFlush,
          );
        }
        if (this.state === 'closing') this.finishClose();
        return;
      }
      case 'error': {
        const e = errorFrame.parse(json);
        this.fail(sarvamError(e.data?.code ?? e.code, e.data?.message ?? e.data?.error ?? e.message ?? '', this.o.secrets));
        return;
      }
      default:
        return; // future types
    }
  }

  override close(): Promise<void> {
    const p = super.close();
    if (this.state === 'closing' && !this.drainTimer) {
      // Speech pending: wait for its result (bounded by closeTimeoutMs in the base); else a short drain.
      const speechPending = this.uttStart !== null;
      if (!speechPending) this.drainTimer = setTimeout(() => this.finishClose(), this.closeDrainMs);
    }
    return p;
  }

  /** Close the socket normally: the base sees close 1000 while closing and ends the stream. */
  private finishClose(): void {
    this.clearDrain();
    if (this.state !== 'closing') return; // (the base answers any finalize still outstanding when the close completes)
    try {
      this.ws.close(1000);
    } catch {
      /* the close event reports it */
    }
  }

  private clearDrain(): void {
    if (this.drainTimer) clearTimeout(this.drainTimer);
    this.drainTimer = null;
  }
}

/** 100 ms of silence as a Sarvam audio frame (the keepalive, module docs). */
const KEEPALIVE = sarvamAudioFrame(Buffer.alloc(UPSTREAM_SAMPLE_RATE / 10 * 2));
const END_OF_STREAM = JSON.stringify({ type: 'end_of_stream', audio: { data: '', encoding: 'audio/wav', sample_rate: UPSTREAM_SAMPLE_RATE } });

/** An engine instance relaying to Sarvam STT. */
export class SarvamSttEngine extends UpstreamSttEngine {
  /** The WebSocket URL (without the query). */
  readonly url: string;

  constructor(
    id: string,
    private readonly s: SarvamSttSettings & { url: string },
  ) {
    super(id, s, {
      authScheme: '',
      authHeaders: (key) => ({ 'API-Subscription-Key': key }),
      frames: { finalize: '{"type":"flush"}', close: END_OF_STREAM, keepalive: KEEPALIVE },
      createStream: (ws, config, o) => new SarvamSttStream(ws, config, o, s.closeDrainMs),
    });
    this.url = s.url;
    this.capabilities.partials = false;
    this.capabilities.wordTimestamps = false;
  }

  protected request(config: SttStreamConfig): UpstreamRequest {
    const u = new URL(this.url);
    if (u.pathname === '/' || u.pathname === '') u.pathname = '/speech-to-text/ws';
    const q = u.searchParams;
    q.set('model', this.s.model);
    q.set('language-code', sarvamLanguageCode(config.language));
    q.set('mode', this.s.mode);
    q.set('sample_rate', String(UPSTREAM_SAMPLE_RATE));
    q.set('input_audio_codec', 'pcm_s16le');
    q.set('vad_signals', 'true');
    q.set('flush_signal', 'true');
    if (this.s.highVadSensitivity !== undefined) q.set('high_vad_sensitivity', String(this.s.highVadSensitivity));
    return { url: u.toString() };
  }

  /** The account cap before dialling (BYOK sessions run on the client's account and skip it). */
  protected override async acquireSlot(ctx: RequestContext | undefined): Promise<(() => void) | undefined> {
    if (ctx?.providerKey) return undefined;
    return accountLimiter('sarvam-stt', this.s.apiKeyEnv ?? `instance:${this.id}`, this.s.maxConcurrent).acquire(this.s.queueWaitMs, ctx?.signal);
  }
}

/**
 * Registry factory of type `sarvam` (STT).
 * @throws Error naming the instance when `cfg.engines[instanceId]` is invalid or has unknown keys.
 */
export function createSarvamSttEngine(cfg: VoxgateConfig, instanceId: string): SarvamSttEngine {
  const s = parseUpstreamSettings(sarvamSttSettingsSchema, cfg, instanceId, 'sarvam');
  return new SarvamSttEngine(instanceId, { ...s, url: s.url ?? SARVAM_STT_URL });
}
