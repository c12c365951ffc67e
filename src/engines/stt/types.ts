/**
 * The streaming speech-to-text engine contract.
 *
 * Every engine (embedded or upstream) sits behind this one small interface, so the server, the
 * sessions and the wire dialects never know which engine serves a route. Capabilities are data
 * ({@link SttCapabilities}), not subclass checks: the model catalogue and `GET /v1/models` read
 * them, and sessions validate `init` against them.
 *
 * Units used throughout: time in **seconds** (float) measured from the start of the stream's audio,
 * sample rates in Hz, PCM as signed 16-bit mono samples (`Int16Array`) at
 * {@link SttCapabilities.inputSampleRate}.
 *
 * Implements the engine half of issue #2 ("Engine") and shared/spec/protocols.md §1.3 result fields.
 */
import type { EventEmitter } from 'node:events';
import type { RequestContext } from '../context.js';

/** What an engine can do, declared as data. Served verbatim in `GET /v1/models`. */
export interface SttCapabilities {
  /** Emits interim (partial) hypotheses while an utterance is in progress. */
  partials: boolean;
  /** Final results can carry per-word `start`/`end`/`confidence`. */
  wordTimestamps: boolean;
  /** Words can carry a `speaker` label. */
  diarization: boolean;
  /** ISO-639-1 codes accepted in `init.config.language`. */
  languages: string[];
  /** The PCM rate (Hz) the engine consumes; sessions resample every client rate to this. */
  inputSampleRate: number;
  /** Endpointing (utterance finalisation after trailing silence) is available. */
  endpointing: boolean;
  /** Voice-activity events (`speech_started`) are available. */
  vadEvents: boolean;
  /**
   * Client encodings (canonical names of src/audio/decoder.ts: `linear16`, `mulaw`, `alaw`, `opus`,
   * `ogg-opus`, `webm`, `mp3`, `flac`, `aac`, `mp4`) the engine takes as they are (engine contract v2,
   * issue 10 part 1: "Opus/mp3 from a client passes through untouched to an upstream that takes it").
   * A mono session in one of these is not decoded or resampled: its bytes go to
   * {@link SttStream.writeEncoded}, and {@link SttStreamConfig.passthrough} tells the engine the
   * format. Absent/empty: every session is decoded to PCM at {@link inputSampleRate}.
   */
  passthroughEncodings?: string[];
}

/** The client's audio format, for a stream whose bytes pass through undecoded. */
export interface SttPassthroughFormat {
  /** Canonical encoding, one of {@link SttCapabilities.passthroughEncodings}. */
  encoding: string;
  /** Hz declared by the client (raw encodings; containers carry their own). */
  sampleRate: number;
  /** Channels declared by the client (raw encodings). */
  channels: number;
}

/** Per-stream options, already validated by the session against {@link SttCapabilities}. */
export interface SttStreamConfig {
  /** ISO-639-1 language code, one of `capabilities.languages`. */
  language: string;
  /** Emit `partial` events. */
  partials: boolean;
  /** Include `words` in finals. */
  wordTimestamps: boolean;
  /**
   * Use voice-activity detection to find utterances (and `speech_started`). When false the whole
   * stream is one utterance: finals come only from `finalize()`, `close()` or the maximum utterance length.
   */
  vad: boolean;
  /**
   * Milliseconds of trailing silence after speech that end an utterance (`speech_final`).
   * Ignored when `vad` is false. `null` disables endpointing: finals then come only from `finalize()`, `close()` or the
   * engine's maximum utterance length.
   */
  endpointingMs: number | null;
  /**
   * Set when the session passes the client's bytes through undecoded: the stream then receives
   * {@link SttStream.writeEncoded} calls instead of {@link SttStream.write}.
   */
  passthrough?: SttPassthroughFormat;
  /**
   * The catalogue entry's `options` (engine contract v2: "per-model options that actually reach
   * `start()`"), e.g. an upstream's fixed query parameters or model name for this catalogue code.
   * Engines read the keys they know and ignore the rest; absent when the entry has none.
   */
  modelOptions?: Record<string, unknown>;
  /**
   * Diarize the stream (issue 13): words (and the final) carry `speaker`. Present = on, with the
   * client's speaker-count hints. An engine whose capabilities say `diarization` (an upstream that
   * diarizes) labels itself; otherwise the embedded diarizer does (src/diarize/).
   */
  diarize?: import('../../diarize/types.js').DiarizeOptions;
}

/** One recognised word. Times are seconds from the start of the stream. */
export interface SttWord {
  word: string;
  /** Seconds from stream start. */
  start: number;
  /** Seconds from stream start; `end >= start`. */
  end: number;
  /** Posterior confidence in [0, 1]. */
  confidence: number;
  /** Speaker label (integer ≥ 0) when the stream is diarized (issue 13; Deepgram words[].speaker). Never changes once emitted. */
  speaker?: number;
  /** Confidence in [0, 1] of {@link speaker}, where known (Deepgram `speaker_confidence`). */
  speakerConfidence?: number;
  /**
   * The word with the engine's own formatting (capitalisation, punctuation), when the engine formats
   * (an upstream Deepgram with `punctuate`/`smart_format`: its `punctuated_word`, protocols.md §2.4).
   */
  punctuatedWord?: string;
}

/** An interim hypothesis for the utterance in progress. It may still change. */
export interface SttPartial {
  transcript: string;
  /** Seconds from stream start where the utterance began. */
  start: number;
  /** Seconds of audio covered so far (from `start`). */
  duration: number;
  /**
   * Confidence in [0, 1] when the engine provides one. PocketSphinx: the mean of `words[].confidence`
   * (present with `words`).
   */
  confidence?: number;
  /**
   * The interim hypothesis's words, when the stream has `wordTimestamps` and the engine can give them
   * (issue 9 §3: Deepgram interim `Results` carry words). Times are seconds from the **stream** start,
   * like final words; they may still change. A word's `confidence` is a posterior when the engine has
   * one, otherwise the engine's documented estimate (PocketSphinx: posteriors for words of segments
   * already ended speculatively, stability across partials for the rest, see segmented.ts). Absent: dialects derive word entries from `transcript` (src/protocol/interim.ts).
   */
  words?: SttWord[];
}

/** A final result: the time range [start, start+duration) will never be revised. */
export interface SttFinal {
  transcript: string;
  /** Utterance-level confidence in [0, 1]. */
  confidence: number;
  /** Words, present when `SttStreamConfig.wordTimestamps` is set (possibly empty). */
  words?: SttWord[];
  /** Seconds from stream start. */
  start: number;
  /** Seconds. */
  duration: number;
  /** ISO-639-1 language of the transcript. */
  language: string;
  /** True when endpointing (trailing silence) ended the utterance. */
  speechFinal: boolean;
  /** True when a client `finalize` forced this final. */
  fromFinalize: boolean;
  /** The segment's speaker when diarized (the label of most of its speech; unified `final_transcript.speaker`, issue 13). */
  speaker?: number;
}

/** Event map of an {@link SttStream}. */
export interface SttStreamEvents {
  partial: [SttPartial];
  final: [SttFinal];
  /** Voice activity began; `timestamp` in seconds from stream start. */
  speech_started: [{ timestamp: number }];
  /**
   * A stream-level failure. The stream is unusable afterwards. Upstream engines emit a `VoxgateError`
   * whose `retryable` says whether another backend may succeed (abnormal close, silence while audio
   * flows, 5xx) or the client must see it (auth, config) — failover reads it (issue 10 part 2).
   */
  error: [Error];
}

/**
 * A live recognition stream. Calls are cheap and non-blocking: work is queued and performed in
 * order off the event loop, and results arrive as events.
 */
export interface SttStream extends EventEmitter<SttStreamEvents> {
  /** Queue PCM (mono, `capabilities.inputSampleRate`). The array is copied or consumed; callers may reuse it. */
  write(pcm: Int16Array): void;
  /**
   * Queue the client's bytes as they are (streams started with `config.passthrough`): any split for
   * containers, whole samples for raw encodings. Required of engines declaring `passthroughEncodings`.
   */
  writeEncoded?(bytes: Uint8Array): void;
  /**
   * Flush: finish the utterance in progress now. Exactly one `final` with `fromFinalize: true`
   * follows (empty transcript when no speech was pending), after finals for earlier audio.
   */
  finalize(): void;
  /**
   * Drain: every final for audio already written is emitted, then the promise resolves and the
   * stream's resources are released. Idempotent.
   */
  close(): Promise<void>;
  /** Release everything now, dropping pending audio and results (client vanished). Idempotent. */
  abort(): void;
  /** Seconds of audio written so far. */
  readonly audioSeconds: number;
  /** Seconds of written audio not yet decoded (the engine's backlog; drives transport backpressure). */
  readonly backlogSeconds: number;
}

/** Resource counters an engine reports in `/v1/status` and metrics. */
export interface SttEngineStats {
  /** Streams currently open. */
  activeStreams: number;
  /** Warm decoders (or equivalent) ready for a new stream. */
  idleDecoders: number;
  /** Decoders currently owned by streams. */
  busyDecoders: number;
}

/** A speech-to-text engine: a factory of streams. */
export interface SttEngine {
  /** Stable engine id referenced by the model catalogue, e.g. `pocketsphinx`. */
  readonly id: string;
  readonly capabilities: SttCapabilities;
  /** Load models and warm resources. Must be called (and awaited) once before `start`. */
  init(): Promise<void>;
  /**
   * Open a stream. Rejects with an Error whose `code` is `rate_limit` when the engine is at its
   * stream limit, or `config_error` when `config` is not supported. Upstream engines reject with a
   * `VoxgateError` whose `retryable` is true for connection failures (`backend_connection_failed`:
   * refused, timed out, 5xx at the handshake) and false for the backend's auth/config refusals.
   * @param ctx request context (id, pinned region, abort signal, connect deadline); optional for
   *   internal callers. Engine contract v2 (issue 10 part 1).
   */
  start(config: SttStreamConfig, ctx?: RequestContext): Promise<SttStream>;
  stats(): SttEngineStats;
  /**
   * Streams that `start` could open right now without rejecting with `rate_limit` (warm decoders plus
   * room under the engine's cap). Optional: engines without a known cap omit it and are never refused
   * before the WebSocket upgrade. Used for the HTTP 429 at the handshake (issue 9 §3).
   */
  freeStreams?(): number;
  /** Release all resources; pending streams are aborted. */
  shutdown(): Promise<void>;
}
