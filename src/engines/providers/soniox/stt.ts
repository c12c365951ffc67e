/**
 * Engine type `soniox`: relays a stream to Soniox real-time STT (shared/spec/upstreams.md §1.10;
 * sources: SX1 https://soniox.com/docs/api-reference/stt/websocket-api, SX2 repo `soniox/soniox-js`
 * `packages/core/src/realtime/stt.ts` + `connection.ts`, SX3 limits/error-handling/manual-finalization pages).
 *
 * ## Hosts (regions)
 * Keys are per project and a project lives in one data-residency region, so each residency is its own
 * engine instance with its own `apiKeyEnv` (upstreams.md §2.2 "the candidate must carry its key"):
 *
 * | `residency` | host (`url` default)                                 |
 * |-------------|------------------------------------------------------|
 * | `us`        | `wss://stt-rt.soniox.com/transcribe-websocket`       |
 * | `eu`        | `wss://stt-rt.eu.soniox.com/transcribe-websocket`    |
 * | `jp`        | `wss://stt-rt.jp.soniox.com/transcribe-websocket`    |
 *
 * `residency` defaults from the instance's `region` label: `eu…`/`europe…` → `eu`, a Japanese region
 * (`ap-northeast-1`, `asia-northeast1`, `…japan…`, `…jp…`) → `jp`, anything else → `us`. `url` overrides the
 * host (tests point it at a fake); a `url` without a path gets `/transcribe-websocket`.
 *
 * ## Wire
 * Upgrade with `Authorization: Bearer <key>` (the `api_key` config field is deprecated and refused from
 * 2027-01-15, SX1, so it is never sent). First frame = the JSON config: `model`, `audio_format`
 * (`pcm_s16le` for gateway-decoded PCM; `mulaw`/`alaw` for those raw encodings passed through; `auto` for
 * containers), `sample_rate` + `num_channels` (raw formats only), `language_hints: [<language>]`,
 * `enable_endpoint_detection` (= the stream's `vad` with endpointing on) and `max_endpoint_delay_ms`
 * (the stream's `endpointingMs`, clamped to [500, 3000]), `client_reference_id` (the request id), plus
 * the instance's fixed `config` keys (e.g. `context`, `language_hints_strict`). Audio = binary frames.
 * Control: `{"type":"finalize"}` per `finalize()`, `{"type":"keepalive"}` when nothing was sent for
 * `keepAliveMs`, end of audio = an empty text frame `""` (Soniox flushes, sends `finished: true`, closes 1000).
 *
 * ## Results (tokens → partials/finals)
 * Each response carries `tokens[]`; final tokens (`is_final`) are sent once, non-final ones are re-sent
 * as the current hypothesis. The stream accumulates the final tokens of the utterance in progress and:
 * - emits a `partial` (final tokens so far + this response's non-final tokens) when the text changed;
 * - on the `<end>` control token (endpoint detected) emits the utterance as a `final` with `speechFinal`;
 * - on `<fin>` (manual finalization done) emits the utterance (possibly empty) as the `fromFinalize`
 *   final of the oldest outstanding `finalize()` — exactly one per finalize, as Soniox sends one `<fin>`
 *   per finalize message (SX3 manual-finalization); a finalize Soniox never answers is covered by the
 *   base's `finalizeTimeoutMs`;
 * - on `finished: true` (after the end-of-audio frame) emits what is left as a final;
 * - when the pending final tokens span `maxUtteranceMs` (default 10 s) without an endpoint, emits their
 *   complete words as a final (`speechFinal: false`), as Deepgram emits `is_final` results within a long
 *   utterance — finals keep flowing with endpointing off, and a failover never has to replay more than that.
 * Words are assembled from sub-word tokens ({@link assembleWords}): a token whose text starts with
 * white space starts a new word; others continue the current one (punctuation attaches to its word,
 * kept in `punctuatedWord`); languages written without spaces (ja, zh, th, …) get one word per token.
 * Times: token `start_ms`/`end_ms` are ms from the start of the audio this connection received, i.e.
 * the stream's clock (seconds = ms / 1000); after a failover src/engines/stt/failover.ts rebases them to
 * the client's clock. The first token of an utterance also gives `speech_started` (Soniox sends no VAD event).
 *
 * ## Errors
 * `{"error_code": <http-ish>, "error_message"}` then a close (SX3): 400 → `config_error`; 401/402/403 →
 * non-retryable `backend_connection_failed` (the provider refused the gateway's key/account); 429 or
 * `max_concurrent_connections_reached` → `rate_limit`; 408, 5xx (503 "Cannot continue request" = restart)
 * and anything else → retryable `provider_error` (failover takes the stream over). Handshake refusals as in
 * src/engines/stt/upstream/common.ts. The account cap (`maxConcurrent`, 10 concurrent per SX3) is enforced
 * before dialling (src/engines/limits.ts; account = `apiKeyEnv`; BYOK sessions skip it).
 *
 * Diarization (`config.diarize`) → `enable_speaker_diarization`; token `speaker` values become labels 0, 1, … in
 * order of first appearance (a word takes its first token's; a final the label with the most word time).
 * Unsupported: translation, language identification (the final's language is the token's `language` when present).
 */
import { z } from 'zod';
import type { VoxgateConfig } from '../../../config/config.js';
import { accountLimiter } from '../../limits.js';
import type { RequestContext } from '../../context.js';
import type { SttStreamConfig, SttWord } from '../../stt/types.js';
import { parseUpstreamSettings, upstreamFormat, upstreamFrameError, upstreamSettingsShape, UpstreamSttEngine, UpstreamSttStream, type UpstreamRequest } from '../../stt/upstream/common.js';
import { VoxgateError } from '../../../util/errors.js';

/** Soniox data-residency hosts (SX2 `connection.ts`: `stt-rt.{region}.soniox.com`). */
export const SONIOX_HOSTS = {
  us: 'wss://stt-rt.soniox.com/transcribe-websocket',
  eu: 'wss://stt-rt.eu.soniox.com/transcribe-websocket',
  jp: 'wss://stt-rt.jp.soniox.com/transcribe-websocket',
} as const;
/** A Soniox residency. */
export type SonioxResidency = keyof typeof SONIOX_HOSTS;

/** Config keys the engine sets from the stream; the instance's fixed `config` may not set them. */
export const SONIOX_MAPPED_CONFIG = ['api_key', 'model', 'audio_format', 'sample_rate', 'num_channels', 'language_hints', 'enable_endpoint_detection', 'max_endpoint_delay_ms', 'client_reference_id', 'enable_speaker_diarization'] as const;

/** Settings of a `soniox` instance (`engines.<id>`), strict. Times in ms. */
export const sonioxSettingsSchema = z
  .object({
    ...upstreamSettingsShape,
    /** Full WebSocket URL; default the residency's host (module table). */
    url: upstreamSettingsShape.url.optional(),
    /** Data residency of the project whose key `apiKeyEnv` names; default from `region` (module docs). */
    residency: z.enum(['us', 'eu', 'jp']).optional(),
    /** Soniox model (`stt-rt-v4`, `stt-rt-v5`, …). */
    model: z.string().min(1).default('stt-rt-v4'),
    /** Soniox wants real-time cadence (SX3): failover replays at 1×. */
    replayPace: z.number().positive().nullable().default(1),
    /** Soniox takes these as they are (`audio_format` `auto` for containers, `mulaw`/`alaw` raw); raw Opus is decoded at the gateway. */
    passthroughEncodings: z.array(z.enum(['linear16', 'mulaw', 'alaw', 'opus', 'ogg-opus', 'webm', 'mp3', 'flac', 'aac', 'mp4'])).default(['linear16', 'mulaw', 'alaw', 'ogg-opus', 'webm', 'mp3', 'flac', 'aac']),
    /** Keepalive well inside Soniox's idle limit (the SDK sends one every 5 s), ms. */
    keepAliveMs: z.number().int().positive().default(4000),
    /** Concurrent streams of this account (Soniox: 10 per project, SX3); enforced before dialling. */
    maxConcurrent: z.number().int().positive().default(10),
    /** How long a start waits for a free slot before `rate_limit`, ms. */
    queueWaitMs: z.number().int().min(0).default(2000),
    /**
     * An utterance whose final tokens span this long without an endpoint is cut at its last complete
     * word into a final (`speech_final: false`), ms — so finals keep coming in long monologues or with
     * endpointing off, and failover's replay buffer (15 s) never holds unfinalised words it would drop.
     */
    maxUtteranceMs: z.number().int().positive().default(10_000),
    /** Fixed extra config keys (e.g. `{"context": {"terms": ["voxgate"]}, "language_hints_strict": true}`). */
    config: z
      .record(z.string().min(1), z.unknown())
      .default({})
      .refine((c) => !Object.keys(c).some((k) => (SONIOX_MAPPED_CONFIG as readonly string[]).includes(k)), {
        message: `config may not set ${SONIOX_MAPPED_CONFIG.join(', ')} (they come from the stream and the settings; the key comes from apiKeyEnv)`,
      }),
  })
  .strict();
/** Validated `soniox` settings. */
export type SonioxSettings = z.output<typeof sonioxSettingsSchema>;

/** The residency of an instance: its `residency`, else guessed from its region label (module docs). */
export function sonioxResidency(residency: SonioxResidency | undefined, region: string | undefined): SonioxResidency {
  if (residency) return residency;
  const r = (region ?? '').toLowerCase();
  if (/^(eu|europe)/.test(r)) return 'eu';
  if (/northeast-?1|japan|(^|-)jp(-|$)|tokyo/.test(r)) return 'jp';
  return 'us';
}

/** One Soniox token (SX2 `RealtimeToken`). Times in ms from the start of the connection's audio. */
export interface SonioxToken {
  text: string;
  start_ms?: number;
  end_ms?: number;
  confidence?: number;
  is_final?: boolean;
  speaker?: string | number;
  language?: string;
}

const num = z.number().finite();
const tokenSchema = z.object({ text: z.string(), start_ms: num.optional(), end_ms: num.optional(), confidence: num.optional(), is_final: z.boolean().optional(), speaker: z.union([z.string(), z.number()]).optional(), language: z.string().optional() }).loose();
const responseSchema = z
  .object({
    tokens: z.array(tokenSchema).optional(),
    finished: z.boolean().optional(),
    error_code: z.union([num, z.string()]).optional(),
    error_message: z.string().optional(),
  })
  .loose();

/** Languages written without spaces between words: one word per token. */
const NO_SPACE_LANGUAGES = new Set(['ja', 'zh', 'th', 'lo', 'km', 'my', 'yue']);
const EDGE_PUNCT = /^[\p{P}\p{S}]+|[\p{P}\p{S}]+$/gu;

/** A control token (`<end>`, `<fin>`, future `<…>`), never a word. */
export function isControlToken(text: string): boolean {
  return /^<[a-z_]+>$/.test(text);
}

/**
 * Assemble words from Soniox sub-word tokens (module docs). Control tokens are skipped.
 * @param spaced false for languages without spaces (one word per token).
 * @returns words with times in **seconds** (ms / 1000), `word` = the text without edge punctuation,
 *   lower-cased (Deepgram's `word`), `punctuatedWord` = the text as Soniox wrote it; confidence = the
 *   lowest of the word's tokens (absent → 0). A token of punctuation only continues the previous word.
 * @param speakerOf maps a token's Soniox `speaker` to a voxgate label (diarized streams); the word takes its first token's.
 */
export function assembleWords(tokens: readonly SonioxToken[], spaced = true, speakerOf?: (speaker: string | number) => number): SttWord[] {
  const groups: SonioxToken[][] = [];
  for (const t of tokens) {
    if (isControlToken(t.text) || t.text.length === 0) continue;
    const cur = groups[groups.length - 1];
    const startsWord = !spaced || /^\s/.test(t.text) || !cur;
    const punctOnly = t.text.trim().replace(EDGE_PUNCT, '') === '';
    if (startsWord && !(punctOnly && cur && spaced)) groups.push([t]);
    else cur!.push(t);
  }
  const out: SttWord[] = [];
  for (const g of groups) {
    const text = g.map((t) => t.text).join('').trim();
    const bare = text.replace(EDGE_PUNCT, '');
    if (!bare) continue;
    const starts = g.map((t) => t.start_ms).filter((x): x is number => x !== undefined);
    const ends = g.map((t) => t.end_ms).filter((x): x is number => x !== undefined);
    const start = (starts.length ? Math.min(...starts) : 0) / 1000;
    const end = Math.max(start, (ends.length ? Math.max(...ends) : 0) / 1000);
    const confs = g.map((t) => t.confidence).filter((x): x is number => x !== undefined);
    const spk = speakerOf ? g.find((t) => t.speaker !== undefined)?.speaker : undefined;
    out.push({ word: bare.toLowerCase(), start, end, confidence: confs.length ? Math.min(...confs) : 0, punctuatedWord: text, ...(spk !== undefined ? { speaker: speakerOf!(spk) } : {}) });
  }
  return out;
}

/** A relayed Soniox stream (module docs). */
export class SonioxSttStream extends UpstreamSttStream {
  /** Final tokens of the utterance in progress. */
  private finalTokens: SonioxToken[] = [];
  private lastPartial = '';
  private speaking = false;
  private readonly spaced: boolean;
  /** Soniox speaker → voxgate label (0, 1, … in order of first appearance; never changes once given). */
  private readonly speakers = new Map<string, number>();
  private readonly speakerOf = (sp: string | number): number => {
    const k = String(sp);
    let n = this.speakers.get(k);
    if (n === undefined) this.speakers.set(k, (n = this.speakers.size));
    return n;
  };

  constructor(
    ws: ConstructorParameters<typeof UpstreamSttStream>[0],
    config: SttStreamConfig,
    o: ConstructorParameters<typeof UpstreamSttStream>[2],
    firstFrame: string,
    /** Setting `maxUtteranceMs` (see {@link sonioxSettingsSchema}). */
    private readonly maxUtteranceMs = 10_000,
  ) {
    super(ws, config, o);
    this.spaced = !NO_SPACE_LANGUAGES.has(config.language);
    // The config is the first frame, before any audio (SX1); Soniox answers nothing until audio arrives.
    ws.send(firstFrame);
  }

  protected onText(text: string): void {
    const r = responseSchema.parse(JSON.parse(text));
    if (r.error_code !== undefined || r.error_message !== undefined) {
      this.fail(sonioxError(r.error_code, r.error_message ?? '', this.o.secrets));
      return;
    }
    const nonFinal: SonioxToken[] = [];
    for (const t of r.tokens ?? []) {
      if (t.is_final) {
        if (t.text === '<end>') this.flush('end');
        else if (t.text === '<fin>') this.flush('fin');
        else if (!isControlToken(t.text)) this.addFinal(t);
      } else if (!isControlToken(t.text)) nonFinal.push(t);
    }
    if (r.finished) {
      this.flush('finished');
      return;
    }
    this.cutLongUtterance(nonFinal);
    this.partial(nonFinal);
  }

  private addFinal(t: SonioxToken): void {
    if (!this.speaking && t.text.trim()) this.speechStarted(t);
    this.finalTokens.push(t);
  }

  private speechStarted(t: SonioxToken): void {
    this.speaking = true;
    if (this.config.vad) this.safeEmit('speech_started', { timestamp: (t.start_ms ?? this.lastFinalEnd * 1000) / 1000 });
  }

  private partial(nonFinal: SonioxToken[]): void {
    if (!this.speaking) {
      const first = nonFinal.find((t) => t.text.trim());
      if (first) this.speechStarted(first);
    }
    if (!this.config.partials) return;
    const all = [...this.finalTokens, ...nonFinal];
    const transcript = all.map((t) => t.text).join('').trim();
    if (!transcript || transcript === this.lastPartial) return;
    this.lastPartial = transcript;
    const words = assembleWords(all, this.spaced, this.config.diarize ? this.speakerOf : undefined);
    const { start, end } = span(all, this.lastFinalEnd);
    this.safeEmit('partial', { transcript, start, duration: Math.max(0, end - start), ...(this.config.wordTimestamps && words.length ? { words } : {}), ...(words.length ? { confidence: meanConfidence(all) } : {}) });
  }

  /**
   * When the pending final tokens span at least `maxUtteranceMs`, emit the complete words among them
   * as a final (`speech_final: false`) and keep the rest: a word is complete when the token after it
   * (final, else this response's first non-final one) starts with white space (any token boundary in
   * languages without spaces).
   */
  private cutLongUtterance(nonFinal: readonly SonioxToken[]): void {
    const toks = this.finalTokens;
    if (toks.length === 0) return;
    const { start, end } = span(toks, this.lastFinalEnd);
    if ((end - start) * 1000 < this.maxUtteranceMs) return;
    const next = (j: number): SonioxToken | undefined => (j < toks.length ? toks[j] : nonFinal[0]);
    let cut = toks.length;
    if (this.spaced) {
      while (cut > 0) {
        const after = next(cut);
        if (after !== undefined && /^\s/.test(after.text)) break;
        cut--;
      }
    }
    if (cut === 0) return;
    const rest = toks.slice(cut);
    this.finalTokens = toks.slice(0, cut);
    this.flush('cut');
    this.finalTokens = rest;
    if (rest.length > 0) this.speaking = true;
  }

  /** Emit the utterance in progress as a final (module docs for when). */
  private flush(why: 'end' | 'fin' | 'finished' | 'cut'): void {
    const toks = this.finalTokens;
    const transcript = toks.map((t) => t.text).join('').trim();
    const fromFinalize = why === 'fin' && this.outstandingFinalizes > 0;
    if (!transcript && !fromFinalize) {
      this.finalTokens = [];
      return; // an endpoint or end of audio with nothing pending: no empty final
    }
    this.finalTokens = [];
    this.lastPartial = '';
    this.speaking = false;
    const words = assembleWords(toks, this.spaced, this.config.diarize ? this.speakerOf : undefined);
    const { start, end } = span(toks, this.lastFinalEnd);
    const speaker = this.config.diarize ? mainSpeaker(words) : undefined;
    this.emitFinal(
      {
        transcript,
        confidence: toks.length ? meanConfidence(toks) : 0,
        ...(this.config.wordTimestamps ? { words } : {}),
        start,
        duration: Math.max(0, end - start),
        language: toks.find((t) => t.language)?.language ?? this.config.language,
        speechFinal: why === 'end',
        ...(speaker !== undefined ? { speaker } : {}),
      },
      fromFinalize,
    );
  }
}

/** The label with the most word time among `words` (unified `final_transcript.speaker`), or undefined when none is labelled. */
function mainSpeaker(words: readonly SttWord[]): number | undefined {
  const t = new Map<number, number>();
  for (const w of words) if (w.speaker !== undefined) t.set(w.speaker, (t.get(w.speaker) ?? 0) + Math.max(w.end - w.start, 1e-6));
  let best: number | undefined;
  for (const [k, v] of t) if (best === undefined || v > t.get(best)!) best = k;
  return best;
}

/** [start, end] in seconds of `toks` (start at `from` when they carry no times). */
function span(toks: readonly SonioxToken[], from: number): { start: number; end: number } {
  const starts = toks.map((t) => t.start_ms).filter((x): x is number => x !== undefined);
  const ends = toks.map((t) => t.end_ms).filter((x): x is number => x !== undefined);
  const start = starts.length ? Math.min(...starts) / 1000 : from;
  return { start, end: ends.length ? Math.max(start, Math.max(...ends) / 1000) : start };
}

function meanConfidence(toks: readonly SonioxToken[]): number {
  const c = toks.map((t) => t.confidence).filter((x): x is number => x !== undefined);
  return c.length ? c.reduce((a, b) => a + b, 0) / c.length : 0;
}

/**
 * Map a Soniox error frame (module docs "Errors").
 * @param code `error_code` (HTTP-like number, or a string); `message` `error_message` (redacted here).
 */
export function sonioxError(code: number | string | undefined, message: string, secrets: readonly string[]): VoxgateError {
  const n = typeof code === 'number' ? code : Number(code);
  const text = `Soniox error ${code ?? ''}: ${message}`.replace(/ :/, ':');
  if (n === 429 || /max_concurrent|rate limit|too many/i.test(message)) return upstreamFrameError('rate_limit', text, secrets);
  if (n === 400) return upstreamFrameError('config_error', text, secrets);
  if (n === 401 || n === 402 || n === 403) return upstreamFrameError('auth_error', text, secrets);
  return upstreamFrameError('provider_error', text, secrets);
}

/** Audio format fields of the config (module docs). */
function audioFields(config: SttStreamConfig): Record<string, unknown> {
  const f = upstreamFormat(config);
  if (!f.raw) return { audio_format: 'auto' };
  const fmt = f.encoding === 'linear16' ? 'pcm_s16le' : f.encoding; // mulaw / alaw
  return { audio_format: fmt, sample_rate: f.sampleRate, num_channels: f.channels };
}

/** An engine instance relaying to one Soniox residency. */
export class SonioxSttEngine extends UpstreamSttEngine {
  /** The WebSocket URL streams connect to. */
  readonly url: string;

  constructor(
    id: string,
    private readonly s: SonioxSettings & { url: string },
  ) {
    super(id, s, {
      authScheme: 'Bearer',
      frames: { finalize: '{"type":"finalize"}', close: '', keepalive: '{"type":"keepalive"}' },
      createStream: (ws, config, o) => new SonioxSttStream(ws, config, o, this.firstFrame(config), s.maxUtteranceMs),
    });
    this.url = s.url;
    this.capabilities.diarization = true; // Soniox labels speakers itself (enable_speaker_diarization)
  }

  /** The config frame of one stream (module docs "Wire"). */
  firstFrame(config: SttStreamConfig, requestId?: string): string {
    const endpointing = config.vad && config.endpointingMs !== null;
    const rid = requestId ?? this.requestIds.get(config);
    return JSON.stringify({
      ...this.s.config,
      model: this.s.model,
      ...audioFields(config),
      language_hints: [config.language],
      enable_endpoint_detection: endpointing,
      ...(endpointing ? { max_endpoint_delay_ms: Math.min(3000, Math.max(500, config.endpointingMs!)) } : {}),
      ...(rid ? { client_reference_id: rid } : {}),
      ...(config.diarize ? { enable_speaker_diarization: true } : {}),
    });
  }

  protected request(): UpstreamRequest {
    const u = new URL(this.url);
    if (u.pathname === '/' || u.pathname === '') u.pathname = '/transcribe-websocket';
    return { url: u.toString() };
  }

  /** Each start's request id, keyed by the config object handed to the base (concurrent starts stay apart). */
  private readonly requestIds = new WeakMap<SttStreamConfig, string>();

  override async start(config: SttStreamConfig, ctx?: RequestContext) {
    const own = { ...config };
    if (ctx?.requestId) this.requestIds.set(own, ctx.requestId);
    return super.start(own, ctx);
  }

  /** The account cap before dialling (BYOK sessions run on the client's account and skip it). */
  protected override async acquireSlot(ctx: RequestContext | undefined): Promise<(() => void) | undefined> {
    if (ctx?.providerKey) return undefined;
    return accountLimiter('soniox', this.s.apiKeyEnv ?? `instance:${this.id}`, this.s.maxConcurrent).acquire(this.s.queueWaitMs, ctx?.signal);
  }
}

/**
 * Registry factory of type `soniox`.
 * @throws Error naming the instance when `cfg.engines[instanceId]` is invalid or has unknown keys.
 */
export function createSonioxSttEngine(cfg: VoxgateConfig, instanceId: string): SonioxSttEngine {
  const s = parseUpstreamSettings(sonioxSettingsSchema, cfg, instanceId, 'soniox');
  const url = s.url ?? SONIOX_HOSTS[sonioxResidency(s.residency, s.region ?? cfg.engines[instanceId]?.region ?? cfg.gateway?.region)];
  return new SonioxSttEngine(instanceId, { ...s, url });
}
