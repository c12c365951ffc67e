/**
 * Speaker labels for pre-recorded transcriptions (issue 13; shared/spec/protocols.md §1.7 "`speaker`
 * appears on words when diarize=true"). Pure functions over finals; the pipeline
 * (src/transcribe/pipeline.ts) decides the source of the labels:
 *
 * - offline diarization ({@link labelByTurns}): the embedded `Diarizer.diarize` ran over the whole
 *   file (with re-segmentation), and each word takes the speaker of the turn it overlaps most;
 * - multichannel ({@link labelByChannel}): each channel is its own speaker;
 * - a backend that diarizes: its word labels are kept, only the segment speaker is derived
 *   ({@link withSegmentSpeaker}).
 *
 * Times are seconds from the start of the file.
 */
import type { SpeakerTurn } from '../diarize/types.js';
import type { SttFinal, SttWord } from '../engines/stt/types.js';
import { segmentSpeaker } from '../engines/stt/diarizing.js';

/**
 * The speaker of a span from diarization turns: the turn overlapping it most; when none overlaps
 * (a word the diarizer's VAD left out), the nearest turn. `confidence` is the share of the span the
 * chosen turn covers (0 for a nearest-turn guess; 1 for a zero-length span inside a turn) — the only
 * per-word evidence an offline turn list gives.
 * @param turns time-ordered, non-overlapping (Diarizer contract); may be empty.
 * @returns undefined when there are no turns.
 */
export function speakerOfSpan(start: number, end: number, turns: readonly SpeakerTurn[]): { speaker: number; confidence: number } | undefined {
  if (turns.length === 0) return undefined;
  const len = Math.max(0, end - start);
  const byOverlap = new Map<number, number>();
  for (const t of turns) {
    if (t.end < start || t.start > end) continue;
    const ov = len === 0 ? (t.start <= start && start <= t.end ? 1 : 0) : Math.max(0, Math.min(end, t.end) - Math.max(start, t.start));
    if (ov > 0) byOverlap.set(t.speaker, (byOverlap.get(t.speaker) ?? 0) + ov);
  }
  let best: { speaker: number; ov: number } | undefined;
  for (const [speaker, ov] of byOverlap) if (!best || ov > best.ov) best = { speaker, ov };
  if (best) return { speaker: best.speaker, confidence: len === 0 ? 1 : Math.min(1, best.ov / len) };
  const mid = (start + end) / 2;
  let near = turns[0]!;
  const dist = (t: SpeakerTurn): number => (mid < t.start ? t.start - mid : mid > t.end ? mid - t.end : 0);
  for (const t of turns) if (dist(t) < dist(near)) near = t;
  return { speaker: near.speaker, confidence: 0 };
}

/** `f` with its segment `speaker` derived from its words' labels (unchanged when none is labelled). */
export function withSegmentSpeaker(f: SttFinal): SttFinal {
  const s = f.words ? segmentSpeaker(f.words) : undefined;
  return s === undefined ? f : { ...f, speaker: s };
}

/**
 * Label every word of `finals` from offline diarization turns ({@link speakerOfSpan}), then each
 * final's segment speaker. A final without words takes the speaker of its own span. When the
 * diarizer found no speech at all (no turns) while the recogniser found words, everything is
 * speaker 0 with confidence 0, so every word still carries a `speaker`.
 * @returns new finals; the input is not modified.
 */
export function labelByTurns(finals: readonly SttFinal[], turns: readonly SpeakerTurn[]): SttFinal[] {
  const of = (start: number, end: number) => speakerOfSpan(start, end, turns) ?? { speaker: 0, confidence: 0 };
  return finals.map((f) => {
    if (!f.words || f.words.length === 0) {
      return f.transcript ? { ...f, speaker: of(f.start, f.start + f.duration).speaker } : { ...f };
    }
    const words: SttWord[] = f.words.map((w) => {
      const s = of(w.start, w.end);
      return { ...w, speaker: s.speaker, speakerConfidence: s.confidence };
    });
    return withSegmentSpeaker({ ...f, words });
  });
}

/** Label every word of a channel's finals with the channel index (confidence 1): multichannel as diarization. */
export function labelByChannel(finals: readonly SttFinal[], channel: number): SttFinal[] {
  return finals.map((f) => ({ ...f, speaker: channel, ...(f.words ? { words: f.words.map((w) => ({ ...w, speaker: channel, speakerConfidence: 1 })) } : {}) }));
}
