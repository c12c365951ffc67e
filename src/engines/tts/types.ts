/**
 * The text-to-speech engine contract (issue #4 "Engines"; shared/spec/engines.md §1, §5).
 *
 * Every TTS engine sits behind this one small interface, so sessions, dialects and HTTP routes never
 * know which engine serves a model. Capabilities are data ({@link TtsCapabilities}): the catalogue,
 * `GET /v1/models`, `voxgate voices` and option validation all read them, and a new engine is added
 * by registering a factory in `registry.ts` without touching any dialect.
 *
 * Units: sample rates in Hz; PCM is signed 16-bit mono (`Int16Array`) at the voice's
 * {@link TtsVoice.sampleRate}; `speed` is a multiplier of the voice's normal speaking rate
 * (1 = normal, 2 = twice as fast).
 */

/** One voice an engine offers. Served verbatim in `GET /v1/models`. */
export interface TtsVoice {
  /** Stable id used in `voice` (unified §1.5), `model` (Deepgram §3) and the CLI, e.g. `kal16`, `en-us`. Lower case. */
  id: string;
  /** Human-readable name, e.g. `Kal (US English, diphone, 16 kHz)`. */
  name: string;
  /**
   * Language tags this voice speaks, lower case, most specific first (e.g. `['en-us', 'en']`).
   * A request's `language` matches when it equals a tag or its primary subtag equals one.
   */
  languages: string[];
  /** `male`, `female` or `unknown`. */
  gender: 'male' | 'female' | 'unknown';
  /** Rate (Hz) the engine produces for this voice; other output rates are resampled from it. */
  sampleRate: number;
}

/** What an engine can do, as data. */
export interface TtsCapabilities {
  /** Every voice, in listing order. */
  voices: TtsVoice[];
  /** Union of the voices' primary language subtags (ISO-639-1 where one exists), sorted. */
  languages: string[];
  /** Accepted `speed` multipliers (inclusive), or `null` when speed cannot be changed. */
  speed: { min: number; max: number } | null;
  /**
   * `true` when audio of one synthesis call is delivered while it is being produced; `false` when
   * the engine renders a whole segment before its first sample (first-audio latency then grows
   * with the segment's length, which is why sessions segment text at clause boundaries).
   */
  incremental: boolean;
}

/** One synthesis request: already validated against {@link TtsCapabilities}. */
export interface TtsSynthesisRequest {
  /** Plain text of one segment (a sentence or clause), at most a few hundred characters. */
  text: string;
  /** A {@link TtsVoice.id} of this engine. */
  voice: string;
  /** Speaking-rate multiplier within `capabilities.speed` (1 when speed is not supported). */
  speed: number;
}

/**
 * A running synthesis: PCM chunks (mono, {@link sampleRate}) in order, as an async iterable.
 * Iteration ends when the segment is complete. Stopping iteration early (`break`), or aborting
 * the signal given to {@link TtsEngine.synthesize}, kills the engine work at once.
 * Iteration throws a `VoxgateError` (`provider_error`) when the engine fails, or an `AbortError`
 * when the signal was aborted.
 */
export interface TtsSynthesis extends AsyncIterable<Int16Array> {
  /** Hz of every chunk (the voice's native rate). */
  readonly sampleRate: number;
}

/** Counters for `/v1/status` and metrics. */
export interface TtsEngineStats {
  /** Synthesis jobs running now (child processes alive). */
  activeJobs: number;
  /** Jobs waiting for a concurrency slot. */
  queuedJobs: number;
  /** Jobs finished since start (completed, aborted or failed). */
  finishedJobs: number;
}

/**
 * One event of a {@link TtsStream}, in wire order. `gen` is the stream's {@link TtsStream.generation}
 * when the event was produced: after a `clear()` the consumer drops events of older generations.
 * Units: `pcm` is signed 16-bit mono at {@link TtsStream.sampleRate}.
 */
export type TtsStreamEvent =
  /** A segment (sentence/clause, or the engine's own unit) starts; `text` is what it speaks. */
  | { kind: 'segment_start'; segmentId: string; text: string; gen: number }
  | { kind: 'audio'; pcm: Int16Array; gen: number }
  /** The segment's last PCM was delivered. */
  | { kind: 'segment_end'; segmentId: string; gen: number }
  /** The engine could not speak this segment (`provider_error`); it is skipped, the stream goes on. A `segment_end` follows. */
  | { kind: 'segment_error'; segmentId: string; error: Error; gen: number }
  /** Every text pushed before the matching `flush()` has been spoken (one per `flush()`, in order). */
  | { kind: 'flushed'; gen: number };

/**
 * A streaming synthesis session (issue 10 part 1 "Streaming TTS engine interface"): text goes in as
 * it arrives, audio comes out as an async iterable of {@link TtsStreamEvent}s. Iteration is the flow
 * control: the engine produces only as fast as the consumer pulls. Iteration ends after `close()`;
 * it throws a `VoxgateError` when the stream fails as a whole (a segment failure is a
 * `segment_error` event instead). Upstream engines speaking a streaming protocol implement this
 * natively ({@link TtsEngine.openStream}); per-segment engines get it from the adapter in
 * `segmented.ts`, which owns the text segmenter, the queue and the clear epochs.
 */
export interface TtsStream extends AsyncIterable<TtsStreamEvent> {
  /** Hz of every `audio` event. */
  readonly sampleRate: number;
  /** Bumped by every {@link clear}; events carry the generation they were produced in. */
  readonly generation: number;
  /** Characters pushed and not yet being spoken (buffered text plus queued segments). */
  readonly pendingChars: number;
  /** True while text is queued or a segment is being synthesised. */
  readonly busy: boolean;
  /** Append text; segments are formed and synthesised as the engine sees fit. Empty text is a no-op. */
  pushText(text: string): void;
  /** Speak everything pushed so far, then emit `flushed`. */
  flush(): void;
  /** Barge-in: drop all text and audio not yet delivered and kill engine work, synchronously. */
  clear(): void;
  /** End the stream: work is killed and iteration ends. Idempotent. */
  close(): void;
}

/** A text-to-speech engine: a factory of synthesis jobs. */
export interface TtsEngine {
  /** Stable id referenced by the catalogue's `engine` field, e.g. `flite`. */
  readonly id: string;
  /** Engine version string for metadata (e.g. Deepgram `model_version`); valid after `init`. */
  readonly version: string;
  /** Valid after {@link init}. */
  readonly capabilities: TtsCapabilities;
  /**
   * Probe the engine (binary present, voices listed). Must be awaited once before `synthesize`.
   * @throws Error with an installation hint when the engine is unusable.
   */
  init(): Promise<void>;
  /**
   * Start synthesising one segment. Never throws synchronously: failures surface when iterating.
   * @param signal aborting it kills the job (child process) immediately.
   */
  synthesize(req: TtsSynthesisRequest, signal?: AbortSignal): TtsSynthesis;
  /**
   * Hint: syntheses with this voice and speed are coming (a session started). Engines may prepare
   * (e.g. pre-start a process) so the first audio comes sooner. Never throws; optional.
   */
  prepare?(req: Omit<TtsSynthesisRequest, 'text'>): void;
  /**
   * Open a streaming session with one voice and speed (engines with a streaming protocol). Optional:
   * callers use `openTtsStream` (segmented.ts), which adapts per-segment engines.
   */
  openStream?(req: Omit<TtsSynthesisRequest, 'text'>): TtsStream;
  stats(): TtsEngineStats;
  /** Kill running jobs and release resources (temporary files). */
  shutdown(): Promise<void>;
}
