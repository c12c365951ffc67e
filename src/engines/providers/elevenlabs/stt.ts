/**
 * Engine type `elevenlabs` (STT): ElevenLabs Scribe realtime as an upstream (issue 11;
 * shared/spec/upstreams.md §1.5). Field names follow the official SDK [EL3: elevenlabs-js
 * `src/wrapper/realtime/{scribe,connection}.ts`] and the LiveKit plugin [LK-P `plugins/elevenlabs/src/stt.ts`].
 *
 * Wire:
 * - `wss://<host>/v1/speech-to-text/realtime?model_id=…&audio_format=pcm_16000&commit_strategy=…&language_code=…&include_timestamps=true[&vad_…][&keyterms=…]`,
 *   key in the `xi-api-key` header, `X-Request-Id` as for every upstream. Host per residency: settings.ts.
 * - Audio: the gateway decodes every client format to 16 kHz linear16 (no passthrough: Scribe takes
 *   base64 PCM only) and sends each `write()` (in pieces of at most 0.5 s) as
 *   `{"message_type":"input_audio_chunk","audio_base_64":…,"commit":false,"sample_rate":16000}`.
 * - finalize() → the same message with empty audio and `"commit":true` (Scribe's commit); close() →
 *   a commit, then (once its committed transcript arrived, or after `closeCommitWaitMs`) a normal
 *   close of the socket — what the SDK does [EL3].
 * - Keepalive: an empty non-commit chunk after `keepAliveMs` without a send (no keepalive message is
 *   documented; LiveKit sends exactly this every 10 s [LK-P]).
 *
 * Results (`message_type`):
 * - `session_started` → ignored; `partial_transcript{text}` → `partial` (start = end of the last
 *   final, duration = audio sent since; no words: Scribe's partials carry none);
 * - `committed_transcript_with_timestamps{text, language_code, words[{text,start,end,type,logprob}]}`
 *   → `final`: words of `type:"word"` (spacing/audio events dropped), confidence = `exp(logprob)`
 *   (0 when absent), the final's confidence = mean of its words'. `committed_transcript` (sent too,
 *   without words, just before its twin) is held and dropped when the twin follows; a server that
 *   sends no twin (next frame of another type, or 1 s without one) gets it emitted as a word-less
 *   final — timestamps are always requested, so each commit yields exactly one final either way.
 * - Time base: Scribe's word times are seconds from the start of the socket's audio [EL3], and the
 *   socket starts with the client's stream, so they are the client's stream clock as they are (the
 *   failover layer rebases a replacement backend, src/engines/stt/failover.ts). A final spans
 *   [end of the previous final, commit point]: the audio position when the commit was sent for a
 *   manual commit; for a VAD commit the last word's end + the VAD silence, capped at the audio sent.
 * - Which final answers a finalize(): commits are answered in order, so the oldest outstanding
 *   client commit takes the next committed transcript (`fromFinalize: true`, `speechFinal: false`);
 *   a committed transcript with no commit outstanding is a VAD commit (`speechFinal: true`) and is
 *   dropped when empty. (Scribe does not mark VAD commits; a VAD commit racing a finalize may take
 *   its answer — still exactly one `fromFinalize` final per finalize().)
 *
 * Settings → query: stream `vad` with endpointing → `commit_strategy=vad`,
 * `vad_silence_threshold_secs` = endpointing (clamped to Scribe's 0.3–3.0 s); otherwise `manual`
 * (finals only from finalize/close). `vadThreshold`, `minSpeechDurationMs`, `minSilenceDurationMs`,
 * `keyterms`, `noVerbatim` are instance settings passed as is. Unsupported and declared so in the
 * capabilities: `speech_started` (no VAD events: `vadEvents: false`), diarization.
 *
 * Errors: the handshake as every upstream (common.ts table: 401/403 → non-retryable
 * `backend_connection_failed`, 429 → `rate_limit`, 5xx → retryable). Error frames
 * `{message_type, error|message}` mid-stream: `auth_error`/`unaccepted_terms_error` → non-retryable
 * `backend_connection_failed` (the provider refused the gateway's key/account); `quota_exceeded`,
 * `rate_limited`, `commit_throttled`, `queue_overflow`, `resource_exhausted` → retryable `rate_limit`;
 * `input_error`, `chunk_size_exceeded` → `invalid_audio` (not retryable: another backend would
 * refuse the same audio); `error`, `transcriber_error`, `session_time_limit_exceeded`,
 * `insufficient_audio_activity` and unknown types → retryable `provider_error`. A close ≠ 1000 whose
 * reason starts with one of these types maps the same way; any other close ≠ 1000 or a silent socket →
 * retryable `provider_error` (base). The key is redacted from every message.
 */
import { z } from 'zod';
import type { VoxgateConfig } from '../../../config/config.js';
import { VoxgateError } from '../../../util/errors.js';
import type { RequestContext } from '../../context.js';
import type { Release } from '../../limits.js';
import type { SttFinal, SttStream, SttStreamConfig, SttWord } from '../../stt/types.js';
import { parseUpstreamSettings, redact, upstreamSettingsShape, UpstreamSttEngine, UpstreamSttStream, UPSTREAM_SAMPLE_RATE, type RelayOptions, type UpstreamRequest } from '../../stt/upstream/common.js';
import { AUTH_HEADER, elevenLabsBase, elevenLabsCommonShape, elevenLabsLimiter } from './settings.js';

/** Scribe's bounds of `vad_silence_threshold_secs` (upstreams.md §1.5). */
export const SCRIBE_VAD_SILENCE_S = { min: 0.3, max: 3.0 } as const;

/** Settings of an `elevenlabs` STT instance (`engines.<id>`), strict. Times in ms unless named `…Secs`. */
export const elevenLabsSttSettingsSchema = z
  .object({
    ...upstreamSettingsShape,
    ...elevenLabsCommonShape,
    /** Overrides the residency host (`ws:`/`wss:`); the fakes use it. */
    url: upstreamSettingsShape.url.optional(),
    /** Scribe model (`model_id`). */
    model: z.string().min(1).default('scribe_v2_realtime'),
    /** Languages accepted (→ `language_code`); Scribe has 90+, list the ones this instance serves. */
    languages: z.array(z.string().min(2)).min(1).default(['en']),
    /** `vad_threshold` (0.1–0.9). */
    vadThreshold: z.number().min(0.1).max(0.9).optional(),
    /** `min_speech_duration_ms`. */
    minSpeechDurationMs: z.number().int().positive().optional(),
    /** `min_silence_duration_ms` (50–2000). */
    minSilenceDurationMs: z.number().int().min(50).max(2000).optional(),
    /** `keyterms` (repeated query key). */
    keyterms: z.array(z.string().min(1)).default([]),
    /** `no_verbatim`. */
    noVerbatim: z.boolean().optional(),
    /** Keepalive (an empty audio chunk) after this long without a send, ms. */
    keepAliveMs: z.number().int().positive().default(5000),
    /** close(): after the closing commit, wait this long for its committed transcript before closing the socket anyway, ms. */
    closeCommitWaitMs: z.number().int().positive().default(3000),
    /** Scribe takes base64 PCM only: the gateway decodes every client encoding (no passthrough). */
    passthroughEncodings: z.array(z.string()).max(0, 'elevenlabs STT takes PCM only; the gateway decodes every client encoding').default([]),
  })
  .strict();
/** Validated `elevenlabs` STT settings. */
export type ElevenLabsSttSettings = z.output<typeof elevenLabsSttSettingsSchema>;

const num = z.number().finite();
const wordSchema = z.object({ text: z.string(), start: num.optional(), end: num.optional(), type: z.string().optional(), logprob: num.optional() }).loose();
const partialFrame = z.object({ text: z.string() }).loose();
const committedFrame = z.object({ text: z.string(), language_code: z.string().optional(), words: z.array(wordSchema).optional() }).loose();

/** Error `message_type`s → our code and retryability (see the module docs). */
const ERROR_TYPES: Record<string, { code: 'backend_connection_failed' | 'rate_limit' | 'invalid_audio' | 'provider_error'; retryable: boolean }> = {
  auth_error: { code: 'backend_connection_failed', retryable: false },
  unaccepted_terms_error: { code: 'backend_connection_failed', retryable: false },
  quota_exceeded: { code: 'rate_limit', retryable: true },
  rate_limited: { code: 'rate_limit', retryable: true },
  commit_throttled: { code: 'rate_limit', retryable: true },
  queue_overflow: { code: 'rate_limit', retryable: true },
  resource_exhausted: { code: 'rate_limit', retryable: true },
  input_error: { code: 'invalid_audio', retryable: false },
  chunk_size_exceeded: { code: 'invalid_audio', retryable: false },
  error: { code: 'provider_error', retryable: true },
  transcriber_error: { code: 'provider_error', retryable: true },
  session_time_limit_exceeded: { code: 'provider_error', retryable: true },
  insufficient_audio_activity: { code: 'provider_error', retryable: true },
};

/**
 * Map a Scribe error frame to a {@link VoxgateError} (module docs table).
 * @param type the frame's `message_type`; `detail` its `error`/`message` text (redacted with `secrets`).
 */
export function scribeError(type: string, detail: string, secrets: readonly string[]): VoxgateError {
  const m = ERROR_TYPES[type] ?? { code: 'provider_error' as const, retryable: true };
  const text = redact(`ElevenLabs ${type}${detail ? `: ${detail}` : ''}`, secrets);
  if (m.code === 'backend_connection_failed') return new VoxgateError('backend_connection_failed', `Failed to connect to backend: the backend refused the gateway's key (${text})`, { retryable: false });
  return new VoxgateError(m.code, text, { retryable: m.retryable });
}

/** The `input_audio_chunk` frame of `bytes` (16 kHz linear16), base64 in JSON [EL3]. */
export function scribeAudioFrame(bytes: Buffer, commit = false): string {
  return `{"message_type":"input_audio_chunk","audio_base_64":"${bytes.toString('base64')}","commit":${commit},"sample_rate":${UPSTREAM_SAMPLE_RATE}}`;
}

/**
 * Largest audio piece per `input_audio_chunk` message, samples (0.5 s at 16 kHz). Scribe refuses
 * oversized chunks (`chunk_size_exceeded`) without publishing the limit; the SDK and LiveKit send 50–100 ms.
 */
export const MAX_CHUNK_SAMPLES = 8000;

/** How long a `committed_transcript` waits for its `_with_timestamps` twin before it is emitted alone, ms. */
const HELD_COMMIT_MS = 1000;

const COMMIT_FRAME = scribeAudioFrame(Buffer.alloc(0), true);
const KEEPALIVE_FRAME = scribeAudioFrame(Buffer.alloc(0), false);

/** A client commit waiting for its committed transcript: who asked, and the audio position (s) when it was sent. */
interface Commit {
  kind: 'finalize' | 'close';
  at: number;
}

/** A relayed Scribe realtime stream (see the module docs). */
export class ElevenLabsSttStream extends UpstreamSttStream {
  private readonly commits: Commit[] = [];
  private commitTimer: NodeJS.Timeout | null = null;

  constructor(
    ws: ConstructorParameters<typeof UpstreamSttStream>[0],
    config: SttStreamConfig,
    o: RelayOptions,
    /** VAD silence (s) that ends an utterance, or null for manual commits. */
    private readonly vadSilence: number | null,
    private readonly closeCommitWaitMs: number,
  ) {
    super(ws, config, o);
    // A close whose reason names a Scribe error type (no error frame before it) maps like the frame;
    // runs before the base's handler, which then finds the stream done.
    ws.prependListener('close', (code: number, reason: Buffer) => {
      if (this.state === 'done' || code === 1000) return;
      const type = /^\s*([a-z_]+)\b/.exec(reason.toString())?.[1];
      if (type && Object.hasOwn(ERROR_TYPES, type)) this.fail(scribeError(type, `connection closed (${code})`, this.o.secrets));
    });
  }

  /** At most {@link MAX_CHUNK_SAMPLES} per `input_audio_chunk` (a failover replay may write seconds at once). */
  override write(pcm: Int16Array): void {
    for (let o = 0; o < pcm.length; o += MAX_CHUNK_SAMPLES) super.write(pcm.subarray(o, o + MAX_CHUNK_SAMPLES));
  }

  override finalize(): void {
    if (this.state !== 'open') return;
    this.commits.push({ kind: 'finalize', at: this.audioSeconds });
    super.finalize();
  }

  override close(): Promise<void> {
    if (this.state === 'open') {
      this.commits.push({ kind: 'close', at: this.audioSeconds });
      const p = super.close();
      this.commitTimer = setTimeout(() => this.closeSocket(), this.closeCommitWaitMs);
      void p.finally(() => this.commitTimer && clearTimeout(this.commitTimer));
      return p;
    }
    return super.close();
  }

  override abort(): void {
    if (this.commitTimer) clearTimeout(this.commitTimer);
    if (this.heldTimer) clearTimeout(this.heldTimer);
    super.abort();
  }

  /** The closing commit was answered (or waited for long enough): close the socket normally; the base ends the stream on the 1000 echo. */
  private closeSocket(): void {
    if (this.commitTimer) clearTimeout(this.commitTimer);
    this.commitTimer = null;
    if (this.state !== 'closing') return;
    try {
      this.ws.close(1000, 'done');
    } catch {
      this.ws.terminate();
    }
  }

  /** A `committed_transcript` waiting for its `_with_timestamps` twin. */
  private held: z.output<typeof committedFrame> | null = null;
  private heldTimer: NodeJS.Timeout | null = null;

  /** Emit a held `committed_transcript` whose twin did not come (as a final without words). */
  private flushHeld(): void {
    if (this.heldTimer) clearTimeout(this.heldTimer);
    this.heldTimer = null;
    const h = this.held;
    this.held = null;
    if (h && this.state !== 'done') this.onCommitted(h);
  }

  protected override onText(text: string): void {
    const json = JSON.parse(text) as { message_type?: unknown; error?: unknown; message?: unknown; details?: unknown };
    const type = typeof json?.message_type === 'string' ? json.message_type : undefined;
    if (type === undefined) throw new Error('frame without a "message_type"');
    if (type === 'committed_transcript_with_timestamps') {
      if (this.heldTimer) clearTimeout(this.heldTimer);
      this.heldTimer = null;
      this.held = null; // the twin replaces it
    } else if (type !== 'committed_transcript') this.flushHeld();
    switch (type) {
      case 'session_started':
        return;
      case 'committed_transcript':
        // Normally followed at once by its `_with_timestamps` twin, which becomes the final. Held so a
        // server that does not send the twin still yields the final (without words), never a lost one.
        this.flushHeld();
        this.held = committedFrame.parse(json);
        this.heldTimer = setTimeout(() => this.flushHeld(), HELD_COMMIT_MS);
        return;
      case 'partial_transcript': {
        const p = partialFrame.parse(json);
        const transcript = p.text.trim();
        if (!transcript || !this.config.partials) return;
        const start = this.lastFinalEnd;
        this.safeEmit('partial', { transcript, start, duration: Math.max(0, this.audioSeconds - start) });
        return;
      }
      case 'committed_transcript_with_timestamps':
        this.onCommitted(committedFrame.parse(json));
        return;
      default: {
        if (Object.hasOwn(ERROR_TYPES, type) || /error|exceeded|limit/i.test(type)) {
          const detail = [json.error, json.message, json.details].filter((x) => typeof x === 'string' && x).join(' - ');
          this.fail(scribeError(type, detail, this.o.secrets));
        }
        return; // unknown informational types
      }
    }
  }

  private onCommitted(c: z.output<typeof committedFrame>): void {
    const commit = this.commits.shift();
    const words: SttWord[] = (c.words ?? [])
      .filter((w) => (w.type ?? 'word') === 'word' && w.text.trim() !== '')
      .map((w) => {
        const start = Math.max(0, w.start ?? this.lastFinalEnd);
        return { word: w.text.trim(), start, end: Math.max(start, w.end ?? start), confidence: w.logprob !== undefined ? Math.min(1, Math.max(0, Math.exp(w.logprob))) : 0 };
      });
    const transcript = c.text.trim();
    const start = this.lastFinalEnd;
    const lastWordEnd = words.length > 0 ? words[words.length - 1]!.end : start;
    const end = commit ? Math.max(commit.at, lastWordEnd, start) : Math.max(start, Math.min(this.audioSeconds, lastWordEnd + (this.vadSilence ?? 0)), lastWordEnd);
    if (!commit && transcript === '') return; // a VAD commit of silence
    const lang = c.language_code && /^[a-z]{2}$/i.test(c.language_code) ? c.language_code.toLowerCase() : this.config.language;
    const f: Omit<SttFinal, 'fromFinalize'> = {
      transcript,
      confidence: words.length > 0 ? words.reduce((a, w) => a + w.confidence, 0) / words.length : 0,
      ...(this.config.wordTimestamps ? { words } : {}),
      start,
      duration: end - start,
      language: lang,
      speechFinal: !commit,
    };
    this.emitFinal(f, commit?.kind === 'finalize');
    if (commit?.kind === 'close') this.closeSocket();
  }
}

/** An engine instance relaying to Scribe realtime. */
export class ElevenLabsSttEngine extends UpstreamSttEngine {
  /** Limiter slot of each start in flight, keyed by its (copied) stream config. */
  private readonly releases = new WeakMap<SttStreamConfig, Release>();

  constructor(
    id: string,
    private readonly s: ElevenLabsSttSettings,
  ) {
    const url = elevenLabsBase(s);
    super(
      id,
      { ...s, url, passthroughEncodings: [] },
      {
        authScheme: '',
        authHeader: AUTH_HEADER,
        encodeAudio: (b) => scribeAudioFrame(b),
        frames: { finalize: COMMIT_FRAME, close: COMMIT_FRAME, keepalive: KEEPALIVE_FRAME },
        createStream: (ws, config, o) => {
          const release = this.releases.get(config);
          const onEnd = release ? () => (o.onEnd(), release()) : o.onEnd;
          return new ElevenLabsSttStream(ws, config, { ...o, onEnd }, this.vadSilence(config), s.closeCommitWaitMs);
        },
      },
    );
    // Scribe sends no speech-start events (upstreams.md §1.5).
    this.capabilities.vadEvents = false;
    this.capabilities.passthroughEncodings = [];
  }

  /** VAD silence (s) for a stream, or null when the stream uses manual commits. */
  private vadSilence(config: SttStreamConfig): number | null {
    if (!config.vad || config.endpointingMs === null) return null;
    return Math.min(SCRIBE_VAD_SILENCE_S.max, Math.max(SCRIBE_VAD_SILENCE_S.min, config.endpointingMs / 1000));
  }

  protected request(config: SttStreamConfig): UpstreamRequest {
    const u = new URL(elevenLabsBase(this.s));
    u.pathname = u.pathname.replace(/\/+$/, '') + '/v1/speech-to-text/realtime';
    const q = u.searchParams;
    q.set('model_id', this.s.model);
    q.set('audio_format', `pcm_${UPSTREAM_SAMPLE_RATE}`);
    const vad = this.vadSilence(config);
    q.set('commit_strategy', vad === null ? 'manual' : 'vad');
    if (vad !== null) q.set('vad_silence_threshold_secs', String(vad));
    if (this.s.vadThreshold !== undefined) q.set('vad_threshold', String(this.s.vadThreshold));
    if (this.s.minSpeechDurationMs !== undefined) q.set('min_speech_duration_ms', String(this.s.minSpeechDurationMs));
    if (this.s.minSilenceDurationMs !== undefined) q.set('min_silence_duration_ms', String(this.s.minSilenceDurationMs));
    q.set('language_code', config.language);
    q.set('include_timestamps', 'true');
    for (const k of this.s.keyterms) q.append('keyterms', k);
    if (this.s.noVerbatim !== undefined) q.set('no_verbatim', String(this.s.noVerbatim));
    return { url: u.toString() };
  }

  /**
   * Open a stream: a slot of the account's `maxConcurrent` is taken first (BYOK sessions run on the
   * client's account and skip it), then the socket is dialled (base).
   * @throws VoxgateError `rate_limit` (retryable) when no slot frees within `queueWaitMs`; else as {@link UpstreamSttEngine.start}.
   */
  override async start(config: SttStreamConfig, ctx?: RequestContext): Promise<SttStream> {
    const cfg = { ...config };
    let release: Release | undefined;
    if (this.s.maxConcurrent !== undefined && !ctx?.providerKey) {
      release = await elevenLabsLimiter(this.s).acquire(this.s.queueWaitMs, ctx?.signal);
      this.releases.set(cfg, release);
    }
    try {
      return await super.start(cfg, ctx);
    } catch (err) {
      release?.();
      throw err;
    }
  }
}

/**
 * Registry factory of type `elevenlabs` (STT).
 * @throws Error naming the instance when `cfg.engines[instanceId]` is invalid or has unknown keys.
 */
export function createElevenLabsSttEngine(cfg: VoxgateConfig, instanceId: string): ElevenLabsSttEngine {
  return new ElevenLabsSttEngine(instanceId, parseUpstreamSettings(elevenLabsSttSettingsSchema, cfg, instanceId, 'elevenlabs'));
}
