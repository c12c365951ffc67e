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
  stats(): TtsEngineStats;
  /** Kill running jobs and release resources (temporary files). */
  shutdown(): Promise<void>;
}
