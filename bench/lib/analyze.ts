/**
 * Latency extraction from one recorded real-time session (pure; no I/O).
 *
 * A real-time session maps stream time to wall time as `wall = t0 + seconds·1000` (`t0` from
 * {@link BenchSession.streamRealtime}); word times in finals are seconds from stream start.
 *
 * Word times are checked against their final's own span `[start, start + duration]`. When they fall
 * outside it (a server bug: the benchmark must not trust them then):
 *  1. if shifting them back by the summed durations of the session's earlier finals puts them inside
 *     the span (the shape of the bug seen so far: the decoder's frame clock runs on across utterances,
 *     so word times carry the audio of every earlier utterance; ±0.1 s), the shifted times are used and
 *     the utterance counted in `timingCorrected`;
 *  2. otherwise onset and end of speech are taken from the audio that was actually sent: the first and
 *     last 20 ms frame inside the final's span whose RMS is within 25 dB of the span's loudest frame
 *     (±0.3 s), counted in `timingFallbacks`.
 */
import type { FinalMsg, Received } from './session.js';

/** Slack when checking word times against the final's span, seconds. */
const SPAN_SLACK_S = 0.1;

/** Per-utterance latencies of one session, ms. */
export interface UtteranceLatencies {
  /** First non-empty partial of an utterance − its speech onset (`words[0].start`), ms; one per final with words that had a partial. */
  firstPartialMs: number[];
  /** Arrival of a `speech_final` final − end of its last word (`words.at(-1).end`), ms. */
  eosToFinalMs: number[];
  /** `speech_final` finals: end of the final's span (start + duration) − end of speech, ms (how long the endpointer waited). */
  endpointWaitMs: number[];
  /** `speech_final` finals: arrival − end of the final's span mapped to wall time, ms (decode + delivery after the endpoint). */
  spanEndToArrivalMs: number[];
  /** Finals with words but no non-empty partial before them. */
  finalsWithoutPartial: number;
  /** Non-empty finals without words (cannot be timed; words were requested). */
  finalsWithoutWords: number;
  /** Finals whose word times lie outside their own [start, start+duration] span. */
  wordTimingOutsideSpan: number;
  /** Utterances whose word times were shifted back into their span (see module docs). */
  timingCorrected: number;
  /** Utterances timed from the sent audio instead of the words (see module docs). */
  timingFallbacks: number;
  /** Finals (any) with a non-empty transcript. */
  nonEmptyFinals: number;
  /** `speech_final: true` finals. */
  speechFinals: number;
  /** Short descriptions of the first few inconsistent finals. */
  examples: string[];
}

/** Empty {@link UtteranceLatencies}. */
function empty(): UtteranceLatencies {
  return {
    firstPartialMs: [],
    eosToFinalMs: [],
    endpointWaitMs: [],
    spanEndToArrivalMs: [],
    finalsWithoutPartial: 0,
    finalsWithoutWords: 0,
    wordTimingOutsideSpan: 0,
    timingCorrected: 0,
    timingFallbacks: 0,
    nonEmptyFinals: 0,
    speechFinals: 0,
    examples: [],
  };
}

/**
 * Speech onset and end (seconds from stream start) inside `[from, to)` seconds of 16 kHz `pcm`, by
 * frame energy (20 ms frames, threshold 25 dB below the loudest frame of the span); `null` when the
 * span is empty or silent.
 */
export function speechBoundsInSpan(pcm: Int16Array, from: number, to: number, rate = 16000, thresholdDb = 25): { onset: number; end: number } | null {
  const frame = rate / 50;
  const a = Math.max(0, Math.floor((from * rate) / frame) * frame);
  const b = Math.min(pcm.length, Math.ceil(to * rate));
  const rms: number[] = [];
  for (let o = a; o < b; o += frame) {
    let s = 0;
    const e = Math.min(b, o + frame);
    for (let i = o; i < e; i++) s += pcm[i]! * pcm[i]!;
    rms.push(Math.sqrt(s / Math.max(1, e - o)));
  }
  const peak = Math.max(0, ...rms);
  if (peak < 30) return null;
  const thr = peak / 10 ** (thresholdDb / 20);
  const first = rms.findIndex((v) => v >= thr);
  let last = rms.length - 1;
  while (last > first && rms[last]! < thr) last--;
  return { onset: (a + first * frame) / rate, end: Math.min(b, a + (last + 1) * frame) / rate };
}

/**
 * Walk the frames in arrival order: each final closes an utterance whose partials are the ones that
 * arrived after the previous final (partials of an utterance always precede its final).
 * @param t0 wall time of stream sample 0, ms.
 * @param pcm the whole stream's audio as sent (16 kHz), for the fallback timing.
 */
export function utteranceLatencies(received: readonly Received[], t0: number, pcm?: Int16Array): UtteranceLatencies {
  const out = empty();
  let firstPartialAt: number | null = null;
  /** Summed durations of the finals so far, seconds. */
  let decodedBefore = 0;
  for (const r of received) {
    if (r.msg.type === 'partial_transcript') {
      if (firstPartialAt === null && String((r.msg as { transcript?: unknown }).transcript ?? '').trim()) firstPartialAt = r.atMs;
      continue;
    }
    if (r.msg.type !== 'final_transcript') continue;
    const f = r.msg as FinalMsg;
    const partialAt = firstPartialAt;
    firstPartialAt = null;
    const shift = decodedBefore;
    decodedBefore += f.duration;
    const words = f.words ?? [];
    const hasText = f.transcript.trim().length > 0;
    if (hasText) out.nonEmptyFinals++;
    if (f.speech_final) out.speechFinals++;
    if (!hasText) continue;
    const spanEnd = f.start + f.duration;
    let onset: number | null = null;
    let end: number | null = null;
    if (words.length > 0) {
      onset = words[0]!.start;
      end = words.at(-1)!.end;
      const inside = (a: number, b: number) => a >= f.start - SPAN_SLACK_S && b <= spanEnd + SPAN_SLACK_S && b >= a;
      if (!inside(onset, end)) {
        out.wordTimingOutsideSpan++;
        if (out.examples.length < 5) {
          out.examples.push(`final span ${f.start.toFixed(2)}–${spanEnd.toFixed(2)} s but words ${onset.toFixed(2)}–${end.toFixed(2)} s, earlier finals' audio ${shift.toFixed(2)} s ("${f.transcript.slice(0, 40)}")`);
        }
        if (shift > 0 && inside(onset - shift, end - shift)) {
          onset -= shift;
          end -= shift;
          out.timingCorrected++;
        } else {
          onset = end = null;
        }
      }
    } else {
      out.finalsWithoutWords++;
    }
    if (onset === null && pcm) {
      const b = speechBoundsInSpan(pcm, f.start, spanEnd);
      if (b) {
        onset = b.onset;
        end = b.end;
        out.timingFallbacks++;
      }
    }
    if (onset === null || end === null) continue;
    if (partialAt !== null) out.firstPartialMs.push(partialAt - (t0 + onset * 1000));
    else out.finalsWithoutPartial++;
    if (f.speech_final) {
      out.eosToFinalMs.push(r.atMs - (t0 + end * 1000));
      out.endpointWaitMs.push((spanEnd - end) * 1000);
      out.spanEndToArrivalMs.push(r.atMs - (t0 + spanEnd * 1000));
    }
  }
  return out;
}

/** Merge several {@link UtteranceLatencies}. */
export function mergeLatencies(list: readonly UtteranceLatencies[]): UtteranceLatencies {
  const out = empty();
  for (const l of list) {
    out.firstPartialMs.push(...l.firstPartialMs);
    out.eosToFinalMs.push(...l.eosToFinalMs);
    out.endpointWaitMs.push(...l.endpointWaitMs);
    out.spanEndToArrivalMs.push(...l.spanEndToArrivalMs);
    out.finalsWithoutPartial += l.finalsWithoutPartial;
    out.finalsWithoutWords += l.finalsWithoutWords;
    out.wordTimingOutsideSpan += l.wordTimingOutsideSpan;
    out.timingCorrected += l.timingCorrected;
    out.timingFallbacks += l.timingFallbacks;
    out.nonEmptyFinals += l.nonEmptyFinals;
    out.speechFinals += l.speechFinals;
    for (const e of l.examples) if (out.examples.length < 5) out.examples.push(e);
  }
  return out;
}
