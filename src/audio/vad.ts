/**
 * Voice activity detection and endpointing.
 *
 * - {@link SileroVad}: Silero VAD v5 run by `sherpa-onnx-node`'s `Vad` (shared/spec/engines.md §1,
 *   §4), one stateful instance per 16 kHz stream, fed 32 ms windows.
 * - {@link VadPool}: keeps idle detectors, because constructing one costs tens of ms of synchronous
 *   native work (model load).
 * - {@link Endpointer}: a pure state machine over per-window speech flags that produces
 *   speech-start and end-of-utterance events.
 *
 * Serves shared/spec/protocols.md §1.3 (`enable_vad`, `utterance_end`), §2.2 (`endpointing` ms or
 * `false`, `vad_events`), §2.4 (`speech_final`, `SpeechStarted`) and §4.2 (`speech_started`/`speech_ended`).
 */
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

/** The only sample rate (Hz) the Silero detector accepts. */
export const VAD_SAMPLE_RATE = 16000;
/** Samples per detector window (32 ms at 16 kHz). */
export const VAD_WINDOW_SAMPLES = 512;

const DEFAULT_MIN_SPEECH_MS = 100;
const DEFAULT_MIN_SILENCE_MS = 100;

/** Minimal typing of the parts of `sherpa-onnx-node` used here (the package ships no `.d.ts`). */
interface SherpaVad {
  acceptWaveform(samples: Float32Array): void;
  isDetected(): boolean;
  isEmpty(): boolean;
  pop(): void;
  flush(): void;
  reset(): void;
}
interface SherpaModule {
  Vad: new (config: object, bufferSizeInSeconds: number) => SherpaVad;
}

let sherpa: SherpaModule | null = null;

/** Loads the native module on first use, so importing this file (e.g. for {@link Endpointer}) stays cheap. */
function sherpaModule(): SherpaModule {
  sherpa ??= require('sherpa-onnx-node') as SherpaModule;
  return sherpa;
}

/**
 * Absolute path of the Silero VAD v5 ONNX model (2.3 MB, MIT licence) shipped in the `@ricky0123/vad-web`
 * npm package (`dist/silero_vad_v5.onnx`); the product never reads models from `shared/`.
 * Spec: shared/spec/engines.md §4, §7 (model source).
 * @throws Error (`MODULE_NOT_FOUND`) if `@ricky0123/vad-web` is not installed.
 */
export function sileroModelPath(): string {
  return path.join(path.dirname(require.resolve('@ricky0123/vad-web/package.json')), 'dist', 'silero_vad_v5.onnx');
}

/** Tuning of a {@link SileroVad}. */
export interface SileroVadOptions {
  /** Speech probability threshold in (0, 1); default 0.5 (Silero's own default). */
  threshold?: number;
  /** Milliseconds of consecutive speech windows before speech is reported; default 100. */
  minSpeechMs?: number;
  /** Milliseconds of non-speech before speech is reported as over; default 100. */
  minSilenceMs?: number;
  /** Model file; default {@link sileroModelPath}. Tests may point at another Silero build. */
  modelPath?: string;
}

/**
 * Continuous detection after which the pending speech segment is flushed out of sherpa's buffer
 * (seconds). sherpa-onnx keeps every sample of an ongoing segment (and 1.13.8 never cuts a segment
 * by itself), so without this a long utterance grows its buffer without bound. Flushing between two
 * windows ends the segment but keeps the model state, so `isDetected()` stays on (tested against an
 * unflushed detector).
 */
const FLUSH_AFTER_S = 5;
/**
 * sherpa's `maxSpeechDuration` (seconds). Segments longer than it change sherpa's decisions (observed:
 * speech ends earlier), so it is set far beyond {@link FLUSH_AFTER_S} and never reached. It must stay
 * below 134217 s, where sherpa's int32 sample count overflows and that behaviour starts at once.
 */
const MAX_SPEECH_S = 3600;
/** sherpa's sample buffer (seconds): the longest kept segment plus its pre-roll, without regrowth. */
const BUFFER_S = FLUSH_AFTER_S + 1;

/** Samples → whole windows → milliseconds, as sherpa counts its min-speech / min-silence runs. */
function windowsMs(ms: number): number {
  const windows = Math.ceil((ms * VAD_SAMPLE_RATE) / 1000 / VAD_WINDOW_SAMPLES) + 1;
  return (windows * VAD_WINDOW_SAMPLES * 1000) / VAD_SAMPLE_RATE;
}

/**
 * One stream's Silero voice-activity detector (16 kHz mono only).
 *
 * Defaults, measured on the 24 clips of shared/data/asr_en padded with 1 s of digital silence or
 * white noise at −60/−50/−40 dBFS, for minSpeechMs ∈ {64, 100, 150, 250} × minSilenceMs ∈ {50, 100, 200}:
 * no setting ever fired in the padding, so the minima trade latency against robustness to short
 * non-speech sounds (absent from that data). `minSpeechMs` 100 reports speech 160 ms after its first
 * window; 250 (Silero's offline default) adds 128 ms and missed one of the 24 clips in −50 dBFS noise.
 * `minSilenceMs` 100 gives a 160 ms hangover; 50 produced 40 % more off/on flickers inside sentences
 * (27 vs 19 over the 24 clips), 200 only 20 % fewer (15) for 96 ms more hangover.
 *
 * Cost (2-core box, measured under load ≈ 3): construction 55–95 ms, 146 ms for the first one (native
 * library load), so use {@link VadPool}; 0.13–0.37 ms per 32 ms window (≤ 1.2 % of real time); reset 2 µs.
 * Spec: protocols.md §1.3 `enable_vad`, §2.2 `vad_events`, §4.2 `vad_events`.
 */
export class SileroVad {
  /**
   * Nominal delay (ms) from the start of the first speech window to the window at which
   * `acceptWindow()` turns true: `(ceil(minSpeech / 32 ms) + 1) × 32 ms`, 160 ms by default.
   */
  readonly onsetDelayMs: number;
  /**
   * Nominal hangover (ms) from the start of the first non-speech window to the window at which
   * `acceptWindow()` turns false: `(ceil(minSilence / 32 ms) + 1) × 32 ms`, 160 ms by default.
   */
  readonly hangoverMs: number;

  private readonly vad: SherpaVad;
  /** Samples of uninterrupted detection since the last flush. */
  private detectedRun = 0;

  /**
   * Loads the model (synchronous, tens of ms).
   * @throws RangeError on an out-of-range option; Error from sherpa-onnx if the model cannot be loaded.
   */
  constructor(options: SileroVadOptions = {}) {
    const {
      threshold = 0.5,
      minSpeechMs = DEFAULT_MIN_SPEECH_MS,
      minSilenceMs = DEFAULT_MIN_SILENCE_MS,
      modelPath = sileroModelPath(),
    } = options;
    if (!(threshold > 0 && threshold < 1)) throw new RangeError(`VAD threshold ${threshold} not in (0, 1)`);
    if (!(minSpeechMs >= 0 && minSilenceMs >= 0)) throw new RangeError('VAD durations must be ≥ 0 ms');
    this.onsetDelayMs = windowsMs(minSpeechMs);
    this.hangoverMs = windowsMs(minSilenceMs);
    const config = {
      sileroVad: {
        model: modelPath,
        threshold,
        minSpeechDuration: minSpeechMs / 1000,
        minSilenceDuration: minSilenceMs / 1000,
        windowSize: VAD_WINDOW_SAMPLES,
        maxSpeechDuration: MAX_SPEECH_S,
      },
      sampleRate: VAD_SAMPLE_RATE,
      numThreads: 1,
      debug: false,
    };
    this.vad = new (sherpaModule().Vad)(config, BUFFER_S);
  }

  /**
   * Runs the detector on the next window of the stream.
   * @param window Exactly {@link VAD_WINDOW_SAMPLES} float samples in [-1, 1) at 16 kHz.
   * @returns Whether the detector is in speech after this window (sherpa's `isDetected()`), i.e. with
   *   the min-speech delay and the hangover described by {@link onsetDelayMs} / {@link hangoverMs}.
   * @throws RangeError if the window has the wrong length.
   */
  acceptWindow(window: Float32Array): boolean {
    if (window.length !== VAD_WINDOW_SAMPLES) {
      throw new RangeError(`VAD window must be ${VAD_WINDOW_SAMPLES} samples, got ${window.length}`);
    }
    if (this.detectedRun >= FLUSH_AFTER_S * VAD_SAMPLE_RATE) {
      this.vad.flush();
      this.detectedRun = 0;
    }
    this.vad.acceptWaveform(window);
    const detected = this.vad.isDetected();
    this.detectedRun = detected ? this.detectedRun + VAD_WINDOW_SAMPLES : 0;
    while (!this.vad.isEmpty()) this.vad.pop();
    return detected;
  }

  /** Forgets all state (model state, buffered audio), as if newly constructed; cheap. */
  reset(): void {
    this.vad.reset();
    while (!this.vad.isEmpty()) this.vad.pop();
    this.detectedRun = 0;
  }
}

/** Options of a {@link VadPool}: every detector it makes uses the same {@link SileroVadOptions}. */
export interface VadPoolOptions extends SileroVadOptions {
  /** Idle detectors kept for reuse; extra released ones are dropped. Default 8. */
  maxIdle?: number;
}

/** Gap between two background constructions of {@link VadPool.keepWarm}, ms (lets other work run in between). */
const REFILL_GAP_MS = 20;

/** Counters of a {@link VadPool}. */
export interface VadPoolStats {
  /** Detectors waiting in the pool. */
  idle: number;
  /** Detectors handed out and not yet released. */
  inUse: number;
  /** Detectors constructed over the pool's life. */
  created: number;
}

/**
 * A pool of {@link SileroVad} instances, so that sessions do not pay the model load on the event loop
 * at session start. Single-threaded use only.
 * Spec: protocols.md §1.3 (a session must answer `ready` promptly after `init`).
 */
export class VadPool {
  private readonly idle: SileroVad[] = [];
  private readonly inUse = new Set<SileroVad>();
  private readonly maxIdle: number;
  private created = 0;
  /** Idle detectors {@link keepWarm} maintains in the background. */
  private warmTarget = 0;
  private refillTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly options: VadPoolOptions = {}) {
    this.maxIdle = options.maxIdle ?? 8;
  }

  /** Returns a detector in its initial state: an idle one, or a newly constructed one (tens of ms). */
  acquire(): SileroVad {
    const vad = this.idle.pop() ?? this.create();
    this.inUse.add(vad);
    this.scheduleRefill();
    return vad;
  }

  /**
   * Keep `n` detectors in existence (idle + in use; at most `maxIdle`), constructing the missing
   * ones in the background, one per {@link REFILL_GAP_MS} timer tick (checked again after every
   * acquire). Each construction still blocks the event loop (sherpa-onnx loads the model
   * synchronously: 50–90 ms measured on the project box), but ahead of demand instead of inside
   * session starts — in a burst of session starts they were the event-loop stall (issue 14 item 6).
   * Counting detectors in use too means a burst is never followed by background constructions.
   */
  keepWarm(n: number): void {
    this.warmTarget = Math.min(Math.max(0, n), this.maxIdle);
    this.scheduleRefill();
  }

  private scheduleRefill(): void {
    if (this.refillTimer || this.closed || this.idle.length + this.inUse.size >= this.warmTarget) return;
    this.refillTimer = setTimeout(() => {
      this.refillTimer = null;
      if (this.closed || this.idle.length + this.inUse.size >= this.warmTarget) return;
      this.idle.push(this.create());
      this.scheduleRefill();
    }, REFILL_GAP_MS);
    this.refillTimer.unref();
  }

  /**
   * Gives a detector back; it is reset and kept if fewer than `maxIdle` are idle.
   * @throws Error if `vad` was not acquired from this pool or was already released.
   */
  release(vad: SileroVad): void {
    if (!this.inUse.delete(vad)) throw new Error('VadPool.release: detector not acquired from this pool');
    if (this.idle.length >= this.maxIdle) return;
    vad.reset();
    this.idle.push(vad);
  }

  /** Constructs detectors now (synchronously, tens of ms each) until at least `n` are idle. */
  warm(n: number): void {
    while (this.idle.length < n) this.idle.push(this.create());
  }

  /** Current counters. */
  stats(): VadPoolStats {
    return { idle: this.idle.length, inUse: this.inUse.size, created: this.created };
  }

  /** Drops the idle detectors (their native memory is freed by the garbage collector). */
  shutdown(): void {
    this.closed = true;
    if (this.refillTimer) clearTimeout(this.refillTimer);
    this.refillTimer = null;
    this.idle.length = 0;
  }

  private create(): SileroVad {
    const vad = new SileroVad(this.options);
    this.created++;
    return vad;
  }
}

/** Options of an {@link Endpointer}. */
export interface EndpointerOptions {
  /** Sample rate (Hz) of the sample indices passed to {@link Endpointer.push}. */
  sampleRate: number;
  /**
   * Trailing silence (ms) after speech that ends an utterance, or `null` to never end one (then only
   * {@link Endpointer.reset} does). Silence is counted from the estimated end of speech, so values
   * below the VAD hangover fire as soon as the VAD reports silence.
   */
  endpointingMs: number | null;
  /** The VAD's hangover (ms): how long after speech really ended its flag turns false ({@link SileroVad.hangoverMs}). */
  vadHangoverMs: number;
  /**
   * The VAD's onset delay (ms): how long after speech really started its flag turns true
   * ({@link SileroVad.onsetDelayMs}). Default: that of a default {@link SileroVad}, 160 ms.
   */
  vadOnsetDelayMs?: number;
  /**
   * Trailing silence (ms) at which a `pause` event announces a likely endpoint, so a consumer can
   * start finishing the utterance before the endpoint is certain. `null`/omitted: no `pause` events.
   * Only useful below `endpointingMs`.
   */
  pauseMs?: number | null;
}

/** An event of the {@link Endpointer}. All positions are stream sample indices at the configured rate. */
export type EndpointEvent =
  /** An utterance began; `sample` is the estimated onset (trigger minus the VAD onset delay). */
  | { type: 'speech_start'; sample: number }
  /**
   * The utterance ended: `lastSpeechSample` is the estimated end of speech (the VAD's off transition
   * minus its hangover) and `sample = lastSpeechSample + endpointing`, where trailing silence reached
   * `endpointingMs` (it can lie before the `endSample` of the push that reported it).
   */
  | { type: 'endpoint'; sample: number; lastSpeechSample: number }
  /**
   * Trailing silence reached `pauseMs` (once per silence stretch, before any `endpoint`): speech may
   * resume — then the utterance simply goes on — or the endpoint follows.
   */
  | { type: 'pause'; sample: number; lastSpeechSample: number };

/**
 * Turns per-window VAD flags into utterance events (pure: no I/O, no clock; time is the sample index).
 *
 * Cycle: idle → `speech_start` (first speech window) → in utterance → `endpoint` once silence since
 * the estimated end of speech reaches `endpointingMs` → idle again, so the next speech starts a new
 * utterance. Speech that resumes before the endpoint continues the same utterance. Estimated onsets
 * never precede the end of the previous cycle (last endpoint or reset).
 * Spec: protocols.md §2.2 `endpointing` (ms, or `false` → `endpointingMs: null`), §2.4 `speech_final` /
 * `SpeechStarted`, §4.2 `speech_started` / `speech_ended`, §1.3 `utterance_end`.
 */
export class Endpointer {
  private readonly endpointingSamples: number | null;
  private readonly hangoverSamples: number;
  private readonly onsetDelaySamples: number;
  private readonly pauseSamples: number | null;
  private pauseSent = false;
  private inUtterance = false;
  private utteranceStart = 0;
  /** Estimated end of speech while in trailing silence, otherwise null. */
  private silenceStart: number | null = null;
  private prevSpeech = false;
  private lastEndSample = 0;
  /** Earliest sample a new utterance may start at. */
  private floor = 0;

  /** @throws RangeError on a non-positive rate or a negative duration. */
  constructor(options: EndpointerOptions) {
    const { sampleRate, endpointingMs, vadHangoverMs, vadOnsetDelayMs = windowsMs(DEFAULT_MIN_SPEECH_MS), pauseMs = null } = options;
    if (!(sampleRate > 0)) throw new RangeError(`invalid sample rate ${sampleRate}`);
    for (const ms of [endpointingMs ?? 0, vadHangoverMs, vadOnsetDelayMs, pauseMs ?? 0]) {
      if (!(ms >= 0)) throw new RangeError(`invalid duration ${ms} ms`);
    }
    const toSamples = (ms: number): number => Math.round((ms * sampleRate) / 1000);
    this.endpointingSamples = endpointingMs === null ? null : toSamples(endpointingMs);
    this.hangoverSamples = toSamples(vadHangoverMs);
    this.onsetDelaySamples = toSamples(vadOnsetDelayMs);
    this.pauseSamples = pauseMs === null ? null : toSamples(pauseMs);
  }

  /**
   * Feeds the VAD flag of the next window.
   * @param isSpeech The VAD's in-speech flag after this window.
   * @param endSample Stream sample index at the end of this window (non-decreasing across calls).
   * @returns The events this window caused, in order (usually none).
   * @throws RangeError if `endSample` goes backwards.
   */
  push(isSpeech: boolean, endSample: number): EndpointEvent[] {
    if (endSample < this.lastEndSample) throw new RangeError(`endSample ${endSample} < previous ${this.lastEndSample}`);
    const events: EndpointEvent[] = [];
    if (isSpeech) {
      if (!this.inUtterance) {
        // Speech that was already on before a reset started at the reset, not a VAD delay earlier.
        const onset = this.prevSpeech ? this.lastEndSample : endSample - this.onsetDelaySamples;
        this.utteranceStart = Math.max(onset, this.floor, 0);
        this.inUtterance = true;
        events.push({ type: 'speech_start', sample: this.utteranceStart });
      }
      this.silenceStart = null;
      this.pauseSent = false;
    } else if (this.inUtterance) {
      this.silenceStart ??= Math.max(endSample - this.hangoverSamples, this.utteranceStart);
      const silence = endSample - this.silenceStart;
      if (this.pauseSamples !== null && !this.pauseSent && silence >= this.pauseSamples && (this.endpointingSamples === null || silence < this.endpointingSamples)) {
        this.pauseSent = true;
        events.push({ type: 'pause', sample: this.silenceStart + this.pauseSamples, lastSpeechSample: this.silenceStart });
      }
      if (this.endpointingSamples !== null && silence >= this.endpointingSamples) {
        events.push({
          type: 'endpoint',
          sample: this.silenceStart + this.endpointingSamples,
          lastSpeechSample: this.silenceStart,
        });
        this.endCycle(endSample);
      }
    }
    this.prevSpeech = isSpeech;
    this.lastEndSample = endSample;
    return events;
  }

  /** Ends the current utterance cycle without an event (e.g. after a client `finalize`); the next speech window starts a new utterance. */
  reset(): void {
    this.endCycle(this.lastEndSample);
  }

  private endCycle(at: number): void {
    this.inUtterance = false;
    this.silenceStart = null;
    this.pauseSent = false;
    this.floor = at;
  }
}
