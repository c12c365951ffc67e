/**
 * Live latency readouts of one transcription session, computed from the server's own word timing:
 *
 * - time to first partial: arrival of the first non-empty `partial_transcript` of an utterance
 *   minus the moment the audio at the utterance's first word start left the browser;
 * - end of speech → final: arrival of the `final_transcript` minus the moment the audio at its
 *   last word's end left the browser (finals forced by `finalize`/`close` are excluded).
 *
 * "Left the browser" is when the 20 ms chunk holding that instant was handed to the socket, minus
 * the part of the chunk after the instant (stream time is the sample count sent; the unified
 * dialect's `words[].start/end` and `start`/`duration` are seconds on that axis).
 */

/** A word as the unified dialect reports it (seconds, confidence 0–1). */
export interface TimedWord {
  word: string;
  start: number;
  end: number;
  confidence: number;
}

/** Summary of one metric (ms). */
export interface LatencySummary {
  last: number | null;
  median: number | null;
  count: number;
}

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Per-session latency tracker. Times are `performance.now()` ms. */
export class LatencyTracker {
  /** Chunk send records: stream second at the chunk's end, and wall time it was sent (ms). */
  private sends: { endSec: number; at: number }[] = [];
  private sentSamples = 0;
  private firstPartialAt: number | null = null;
  private readonly ttfp: number[] = [];
  private readonly eos: number[] = [];

  constructor(private readonly sampleRate: number) {}

  /** Record that `samples` more samples were sent at `at` (ms). */
  recordSend(samples: number, at = performance.now()): void {
    this.sentSamples += samples;
    this.sends.push({ endSec: this.sentSamples / this.sampleRate, at });
  }

  /** Seconds of audio sent so far. */
  get sentSeconds(): number {
    return this.sentSamples / this.sampleRate;
  }

  /** Wall time (ms) at which stream time `sec` left the browser, or null if not sent yet. */
  wallAt(sec: number): number | null {
    const s = this.sends;
    let lo = 0;
    let hi = s.length - 1;
    if (hi < 0 || s[hi]!.endSec < sec) return null;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (s[mid]!.endSec >= sec) hi = mid;
      else lo = mid + 1;
    }
    return s[lo]!.at - (s[lo]!.endSec - sec) * 1000;
  }

  /** A partial arrived at `at`; only the first non-empty one of an utterance counts. */
  onPartial(transcript: string, at = performance.now()): void {
    if (this.firstPartialAt === null && transcript.trim()) this.firstPartialAt = at;
  }

  /**
   * A final arrived at `at`. `words` (or, lacking them, `start`/`duration` in seconds) place the
   * utterance on the stream axis. Closes the current utterance.
   */
  onFinal(f: { transcript: string; words?: TimedWord[]; start?: number; duration?: number; from_finalize?: boolean }, at = performance.now()): void {
    const first = this.firstPartialAt;
    this.firstPartialAt = null;
    if (!f.transcript.trim()) return;
    const onset = f.words?.length ? f.words[0]!.start : f.start;
    const end = f.words?.length ? f.words[f.words.length - 1]!.end : f.start !== undefined && f.duration !== undefined ? f.start + f.duration : undefined;
    if (first !== null && onset !== undefined) {
      const w = this.wallAt(onset);
      if (w !== null && first >= w) this.ttfp.push(first - w);
    }
    if (!f.from_finalize && end !== undefined) {
      const w = this.wallAt(end);
      if (w !== null && at >= w) this.eos.push(at - w);
    }
  }

  /** Time to first partial (ms). */
  get firstPartial(): LatencySummary {
    return { last: this.ttfp.at(-1) ?? null, median: median(this.ttfp), count: this.ttfp.length };
  }

  /** End of speech → final (ms). */
  get endOfSpeechToFinal(): LatencySummary {
    return { last: this.eos.at(-1) ?? null, median: median(this.eos), count: this.eos.length };
  }
}

/** "412 ms (median 398 ms, n = 3)" or "—". */
export function formatSummary(s: LatencySummary): string {
  if (s.last === null) return '—';
  return `${Math.round(s.last)} ms (median ${Math.round(s.median!)} ms, n = ${s.count})`;
}
