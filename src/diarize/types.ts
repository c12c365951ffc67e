/**
 * The speaker-diarization contract (issue 13): who spoke when, for live streams and pre-recorded files.
 *
 * Units: times in **seconds** from the start of the stream/file; PCM is signed 16-bit mono at the
 * `sampleRate` given (sessions feed the engine's 16 kHz stream). Speaker labels are integers from 0,
 * Deepgram's `speaker` (protocols.md §2.4 words[].speaker).
 *
 * Stability rule (issue 13 "Output shapes"): once a final carried a label for a person, later finals
 * use the same number for that person, and a label already sent is never changed. Online diarizers
 * re-cluster their history at each final and map clusters onto labels already emitted.
 *
 * The embedded implementation is classical (MFCC, speaker-change detection, clustering); a neural
 * speaker-embedding model can replace features and scoring behind the same interfaces.
 */

/** Speaker-count hints (Deepgram-style `diarize_speakers`/`min_speakers`/`max_speakers`, unified init option). */
export interface DiarizeOptions {
  /** Exact number of speakers when known. */
  numSpeakers?: number;
  /** Lower bound on the number of speakers. */
  minSpeakers?: number;
  /** Upper bound on the number of speakers. */
  maxSpeakers?: number;
}

/** One speaker turn: [start, end) seconds, label ≥ 0. */
export interface SpeakerTurn {
  start: number;
  end: number;
  speaker: number;
}

/** The label of one word span, with a confidence in [0, 1]. */
export interface SpeakerLabel {
  speaker: number;
  confidence: number;
}

/** A time span in seconds from stream start (a word of a final). */
export interface TimeSpan {
  start: number;
  end: number;
}

/** Live diarization of one stream. Not thread-safe; owned by one STT stream. */
export interface StreamDiarizer {
  /** Feed PCM (mono, the `sampleRate` the stream was opened with), in stream order. */
  write(pcm: Int16Array): void;
  /**
   * Label the words of a final (times in seconds from stream start, inside audio already written).
   * Labels returned are final: later calls never contradict them. Runs the online re-clustering;
   * cost is bounded by the capped history, not the stream length.
   * @returns one label per span, same order.
   */
  labelFinal(words: readonly TimeSpan[]): SpeakerLabel[];
  /** Release the history. Idempotent. */
  close(): void;
}

/** A diarizer: offline for files, online for streams. Capabilities as data. */
export interface Diarizer {
  /** Stable id (`classical`, …), shown in `/v1/models` capabilities. */
  readonly id: string;
  /** True while the quality is not production grade (the classical embedded one). */
  readonly experimental: boolean;
  /** Open a live diarization for a stream of `sampleRate` Hz PCM. */
  stream(sampleRate: number, opts?: DiarizeOptions): StreamDiarizer;
  /**
   * Diarize a whole recording (with re-segmentation).
   * @param pcm mono 16-bit PCM at `sampleRate` Hz.
   * @returns turns in time order, non-overlapping, covering the detected speech only.
   */
  diarize(pcm: Int16Array, sampleRate: number, opts?: DiarizeOptions): SpeakerTurn[];
}

/** A placeholder diarizer that labels everyone speaker 0 (until the classical diarizer lands; tests of the wiring). */
export class SingleSpeakerDiarizer implements Diarizer {
  readonly id = 'single';
  readonly experimental = true;
  stream(): StreamDiarizer {
    return { write: () => undefined, labelFinal: (w) => w.map(() => ({ speaker: 0, confidence: 0.5 })), close: () => undefined };
  }
  diarize(pcm: Int16Array, sampleRate: number): SpeakerTurn[] {
    return pcm.length ? [{ start: 0, end: pcm.length / sampleRate, speaker: 0 }] : [];
  }
}
