/**
 * VAD-segmented streaming: turns an *utterance decoder* (one that decodes audio into a hypothesis
 * but does not know when an utterance ends) into a full {@link SttStream} with endpointing, partials,
 * `speech_final`, `finalize` and draining `close` — issue #2 "Engine" (endpointing by Silero VAD).
 *
 * Any embedded engine that can (1) take PCM and report a partial hypothesis and (2) end an utterance
 * and return words can reuse this adapter; PocketSphinx is the first.
 *
 * Flow per 32 ms VAD window (512 samples at 16 kHz):
 *   - outside an utterance, audio goes to a pre-roll ring (so the words' onsets are not clipped);
 *   - `speech_start` opens an utterance: the pre-roll from (onset − preRoll) is decoded first;
 *   - inside an utterance every window is queued for decoding;
 *   - `endpoint` (trailing silence ≥ `endpointingMs`) queues the end of the utterance → a final with
 *     `speechFinal: true`.
 * Speculative finalisation: at a `pause` (trailing silence of `endpointingMs − SPECULATIVE_LEAD_MS`)
 * the decoder's segment is ended early and its result held. If the endpoint follows, the final is
 * ready at once; if speech resumes, the next segment is decoded and its words are merged into the
 * same final, so the client sees one final per utterance either way. The cut also tells where the
 * recognised speech ended: the utterance is then endpointed at *last word end + endpointingMs*
 * (if the VAD heard no speech since; never more than {@link DECODER_ENDPOINT_GUARD_MS} before the
 * VAD's own end-of-speech estimate), which is exact, rather than waiting for the VAD's own
 * estimate, whose release tail varies by 100–400 ms (median 80 ms more than its nominal hangover,
 * measured over shared/data/asr_en). The VAD endpoint stays the fallback.
 * No words shown are lost (issue 9 §1): when a segment's end-of-utterance result comes back empty
 * although its last partial had words, the final carries that partial's words (see
 * `fallbackFromPartial`); a result with fewer words is a genuine re-decode and is kept as is.
 * Partials carry `words` and `confidence` when the stream has word timestamps and the decoder offers
 * {@link UtteranceDecoder.processWithWords} (issue 9 §3).
 * All decoder work runs through one ordered queue, so a final always follows every partial of its
 * audio, `finalize` answers after earlier audio, and `close` resolves after the last final.
 * Audio is batched into ≥ {@link MIN_BATCH_SECONDS} per decoder call; a queued end-of-utterance
 * flushes the batch at once.
 */
import { EventEmitter } from 'node:events';
import type { EndpointEvent } from '../../audio/vad.js';
import type { SttFinal, SttPartial, SttStream, SttStreamConfig, SttStreamEvents, SttWord } from './types.js';

/**
 * Minimum audio per decoder call, seconds: one VAD window, so decoding keeps pace with the audio and
 * a `finalize` finds at most one window left to decode (per-call overhead is negligible; 100 ms
 * batches left up to 100 ms of end-of-utterance audio, 30+ ms of decoding, on the finalize path).
 */
export const MIN_BATCH_SECONDS = 0.032;
/** Maximum audio per decoder call, seconds (bounds the latency of one call when catching up). */
export const MAX_BATCH_SECONDS = 0.5;
/**
 * How long before a likely endpoint the decoder starts finishing the utterance, ms. Finishing an
 * utterance (search end, lattice, posteriors) costs 20–100 ms; starting it this much earlier — at a
 * `pause` of `endpointingMs − lead` — takes that cost off the end-of-speech → final path.
 */
export const SPECULATIVE_LEAD_MS = 150;
/**
 * How much earlier than the VAD's own end-of-speech estimate a decoder-anchored endpoint may place
 * the end of speech, ms. Silero's release tail exceeds its nominal hangover by about 80 ms (median,
 * shared/data/asr_en); speech the decoder does not turn into words (fillers, noise) must not shorten
 * the configured endpointing by more than this.
 */
export const DECODER_ENDPOINT_GUARD_MS = 100;

/** Result of ending one utterance. Word times are seconds from the **utterance** start. */
export interface UtteranceResult {
  text: string;
  /** [0, 1]. */
  confidence: number;
  words: SttWord[];
}

/** A word of a partial hypothesis. Times are seconds from the **utterance** (decoder segment) start. */
export interface PartialWord {
  word: string;
  start: number;
  end: number;
}

/** A partial hypothesis with its words ({@link UtteranceDecoder.processWithWords}). */
export interface PartialHypothesis {
  text: string;
  /** The words of `text` in time order, without confidences (decoders score words when the utterance ends). */
  words: PartialWord[];
}

/** What the adapter needs from a decoder. Calls are never concurrent (the adapter serialises them). */
export interface UtteranceDecoder {
  /**
   * Decode more audio of the current utterance (starting one if none); resolves to the partial
   * hypothesis, or `''` when `wantPartial` is false (the decoder may then skip computing it).
   */
  process(pcm: Int16Array, wantPartial: boolean): Promise<string>;
  /**
   * Optional: like `process(pcm, true)`, also giving the partial's words with times. Used when the
   * stream wants partials with word timestamps (interim `words`, issue 9 §3).
   */
  processWithWords?(pcm: Int16Array): Promise<PartialHypothesis>;
  /**
   * End the current utterance; empty result when none is in progress. Must not come back empty for
   * audio in which its partials found words (the adapter then falls back to the last partial, see
   * {@link SegmentedStream}).
   */
  endUtterance(): Promise<UtteranceResult>;
}

/**
 * Confidence of a final word that had to be taken from a partial hypothesis (the decoder's end of
 * utterance came back empty for audio whose partials had words): there is no posterior for it.
 */
export const PARTIAL_FALLBACK_CONFIDENCE = 0.5;

/** Per-window voice activity decision (e.g. Silero via sherpa-onnx). */
export interface WindowVad {
  /** Samples per window. */
  readonly windowSize?: number;
  /** Feed exactly one window (float PCM in [-1, 1]); returns whether speech is currently detected. */
  acceptWindow(w: Float32Array): boolean;
}

/** The endpointing state machine the adapter drives. */
export interface WindowEndpointer {
  push(isSpeech: boolean, endSample: number): EndpointEvent[];
  reset(): void;
}

/** Construction options of a {@link SegmentedStream}. */
export interface SegmentedStreamOptions {
  decoder: UtteranceDecoder;
  /** VAD and endpointer, or `null` to treat the whole stream as one utterance (finals only on finalize/close/max length). */
  vad: { vad: WindowVad; endpointer: WindowEndpointer } | null;
  /** Hz of the PCM written (the engine's input rate). */
  sampleRate: number;
  config: SttStreamConfig;
  /** Audio kept before the detected onset, ms. Default 300. */
  preRollMs?: number;
  /** Longest utterance before a forced (non-`speech_final`) final, seconds. Default 20. */
  maxUtteranceSeconds?: number;
  /** Called exactly once, when the stream no longer needs its decoder and VAD. */
  release: () => void;
}

/**
 * Decoder work, in stream order. Positions are stream sample indices: `utt` where the utterance
 * began, `seg` where the decoder segment began (an utterance is one or more segments, see
 * speculative finalisation), `end` the sample after the last one covered.
 */
type Op =
  | { t: 'audio'; pcm: Int16Array; utt: number; seg: number; end: number }
  /** `vadEnd`: the VAD's end-of-speech estimate (sample) when the cut was decided; `end`: the segment's end. */
  | { t: 'cut'; seg: number; id: number; vadEnd: number; end: number }
  | { t: 'end'; start: number; seg: number; end: number; speechFinal: boolean; fromFinalize: boolean }
  | { t: 'empty'; at: number };

const WINDOW = 512;

function concat(parts: Int16Array[], total: number): Int16Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Int16Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** See the module documentation. */
export class SegmentedStream extends EventEmitter<SttStreamEvents> implements SttStream {
  private readonly rate: number;
  private readonly preRoll: number;
  private readonly maxUtt: number;
  private readonly win: Int16Array = new Int16Array(WINDOW);
  private winFill = 0;
  /** Stream sample index of the first sample not yet windowed. */
  private written = 0;
  /** Pre-roll ring: windows outside an utterance, oldest first. */
  private ring: { start: number; pcm: Int16Array }[] = [];
  private ringSamples = 0;
  private inUtt = false;
  private uttStart = 0;
  /** Start sample of the current decoder segment (= `uttStart` until a speculative cut). */
  private segStart = 0;
  /** Results of segments ended speculatively, not yet part of a final (async side). */
  private held: { offset: number; r: UtteranceResult }[] = [];
  /** Speculative cuts so far; identifies the cut a decoder endpoint belongs to. */
  private cutSeq = 0;
  /** The VAD reported speech after the latest cut (the decoder endpoint is then void). */
  private speechSinceCut = false;
  /** Endpoint derived from the latest cut's last word: stream sample at which to end the utterance. */
  private decoderEndpoint: { cut: number; sample: number } | null = null;
  private lastPartial = '';
  /**
   * The latest non-empty partial hypothesis of the current decoder segment (words, when known, on the
   * segment clock), and how many consecutive partials each of its words has survived (for the interim
   * word confidence). Reset when the segment ends (cut or end).
   */
  private segPartial: { text: string; words: PartialWord[] | null; seen: number[] } | null = null;
  /** Segment ends whose empty result was replaced by the segment's last partial (see {@link fallbackFromPartial}). */
  private partialFallbacks = 0;
  private readonly ops: Op[] = [];
  private queuedSamples = 0;
  private running = false;
  private closing: Promise<void> | null = null;
  private drained: (() => void) | null = null;
  private aborted = false;
  private released = false;

  constructor(private readonly o: SegmentedStreamOptions) {
    super();
    this.rate = o.sampleRate;
    this.preRoll = Math.round(((o.preRollMs ?? 300) / 1000) * o.sampleRate);
    this.maxUtt = Math.round((o.maxUtteranceSeconds ?? 20) * o.sampleRate);
  }

  get audioSeconds(): number {
    return (this.written + this.winFill) / this.rate;
  }

  /**
   * How many times a segment's end-of-utterance result came back empty although its partials had
   * words, so the final carried the last partial's words instead (diagnostics; 0 with a sound decoder).
   */
  get partialFallbackCount(): number {
    return this.partialFallbacks;
  }

  /** Seconds of audio queued for the decoder but not yet decoded (a backlog measure). */
  get backlogSeconds(): number {
    return this.queuedSamples / this.rate;
  }

  write(pcm: Int16Array): void {
    if (this.aborted || this.closing) return;
    let i = 0;
    while (i < pcm.length) {
      const n = Math.min(WINDOW - this.winFill, pcm.length - i);
      this.win.set(pcm.subarray(i, i + n), this.winFill);
      this.winFill += n;
      i += n;
      if (this.winFill === WINDOW) {
        this.winFill = 0;
        this.onWindow(this.win.slice());
      }
    }
    this.pump();
  }

  finalize(): void {
    if (this.aborted || this.closing) return;
    this.flushPartialWindow();
    if (this.inUtt) {
      this.queueEnd(false, true);
    } else {
      this.push({ t: 'empty', at: this.written });
    }
    this.o.vad?.endpointer.reset();
    this.pump();
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    if (this.aborted) return Promise.resolve();
    this.flushPartialWindow();
    if (this.inUtt) this.queueEnd(false, false);
    this.closing = new Promise<void>((resolve) => {
      this.drained = resolve;
    });
    this.pump();
    return this.closing;
  }

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.ops.length = 0;
    this.queuedSamples = 0;
    if (!this.running) this.releaseOnce();
    this.drained?.();
  }

  // ---- windowing and segmentation (synchronous, on write) ----

  private onWindow(w: Int16Array): void {
    const start = this.written;
    this.written += w.length;
    const vad = this.o.vad;
    if (!vad) {
      if (!this.inUtt) this.openUtterance(start);
      this.pushAudio(w);
      this.checkMaxLength();
      return;
    }
    const f = new Float32Array(w.length);
    for (let k = 0; k < w.length; k++) f[k] = w[k]! / 32768;
    const speech = vad.vad.acceptWindow(f);
    if (speech) this.speechSinceCut = true;
    if (this.inUtt) this.pushAudio(w);
    else this.toRing(start, w);
    for (const ev of vad.endpointer.push(speech, this.written)) {
      if (ev.type === 'speech_start' && !this.inUtt) {
        this.startFromRing(ev.sample);
        this.emit('speech_started', { timestamp: ev.sample / this.rate });
      } else if (ev.type === 'pause' && this.inUtt && this.written > this.segStart) {
        this.push({ t: 'cut', seg: this.segStart, id: ++this.cutSeq, vadEnd: ev.lastSpeechSample, end: this.written });
        this.segStart = this.written;
        this.speechSinceCut = false;
        this.decoderEndpoint = null;
      } else if (ev.type === 'endpoint' && this.inUtt && this.o.config.endpointingMs !== null) {
        this.queueEnd(true, false);
      }
    }
    this.checkDecoderEndpoint();
    this.checkMaxLength();
  }

  /** End the utterance once the stream passes the endpoint implied by the latest cut's last word. */
  private checkDecoderEndpoint(): void {
    const d = this.decoderEndpoint;
    if (!d || !this.inUtt || d.cut !== this.cutSeq || this.speechSinceCut || this.written < d.sample) return;
    this.decoderEndpoint = null;
    this.queueEnd(true, false);
    this.o.vad?.endpointer.reset();
  }

  private checkMaxLength(): void {
    if (this.inUtt && this.written - this.uttStart >= this.maxUtt) {
      this.queueEnd(false, false);
      this.openUtterance(this.written);
    }
  }

  private toRing(start: number, w: Int16Array): void {
    this.ring.push({ start, pcm: w });
    this.ringSamples += w.length;
    // Keep the pre-roll plus slack for the VAD's onset delay.
    const keep = this.preRoll + this.rate;
    while (this.ring.length > 1 && this.ringSamples - this.ring[0]!.pcm.length >= keep) {
      this.ringSamples -= this.ring.shift()!.pcm.length;
    }
  }

  /** Open an utterance at `onset − preRoll`, decoding the buffered audio from there. */
  private startFromRing(onset: number): void {
    const from = Math.max(onset - this.preRoll, this.ring[0]?.start ?? this.written);
    this.openUtterance(from);
    for (const r of this.ring) {
      const end = r.start + r.pcm.length;
      if (end <= from) continue;
      const pcm = r.start >= from ? r.pcm : r.pcm.subarray(from - r.start);
      this.push({ t: 'audio', pcm, utt: from, seg: from, end });
    }
    this.ring = [];
    this.ringSamples = 0;
  }

  private openUtterance(at: number): void {
    this.inUtt = true;
    this.uttStart = this.segStart = at;
  }

  /** Queue one window of the open utterance (the window ends at `this.written`). */
  private pushAudio(pcm: Int16Array): void {
    this.push({ t: 'audio', pcm, utt: this.uttStart, seg: this.segStart, end: this.written });
  }

  private queueEnd(speechFinal: boolean, fromFinalize: boolean): void {
    this.push({ t: 'end', start: this.uttStart, seg: this.segStart, end: this.written, speechFinal, fromFinalize });
    this.inUtt = false;
  }

  /** Samples that never filled a whole VAD window: decode them if an utterance is open. */
  private flushPartialWindow(): void {
    if (this.winFill === 0) return;
    const tail = this.win.slice(0, this.winFill);
    const start = this.written;
    this.written += tail.length;
    this.winFill = 0;
    if (this.inUtt || !this.o.vad) {
      if (!this.inUtt) this.openUtterance(start);
      this.pushAudio(tail);
    } else {
      this.toRing(start, tail);
    }
  }

  private push(op: Op): void {
    if (op.t === 'audio') this.queuedSamples += op.pcm.length;
    this.ops.push(op);
  }

  // ---- the ordered decoder queue (asynchronous) ----

  /** Whether the head of the queue is ready to run (audio waits for a full batch unless something follows it). */
  private headReady(): boolean {
    const head = this.ops[0];
    if (!head) return false;
    if (head.t !== 'audio') return true;
    if (this.closing || this.ops.some((op) => op.t !== 'audio')) return true;
    return this.queuedSamples >= MIN_BATCH_SECONDS * this.rate;
  }

  private pump(): void {
    if (this.running || this.aborted) return;
    if (!this.headReady()) {
      if (this.ops.length === 0) this.checkDrained();
      return;
    }
    this.running = true;
    void this.runQueue();
  }

  private async runQueue(): Promise<void> {
    try {
      while (!this.aborted && this.headReady()) {
        const op = this.ops.shift()!;
        if (op.t === 'audio') await this.runAudio(op);
        else if (op.t === 'cut') await this.runCut(op);
        else if (op.t === 'end') await this.runEnd(op);
        else this.emitFinal({ transcript: '', confidence: 0, words: this.o.config.wordTimestamps ? [] : undefined, start: op.at / this.rate, duration: 0, language: this.o.config.language, speechFinal: false, fromFinalize: true });
      }
    } catch (err) {
      this.running = false;
      this.fail(err);
      return;
    }
    this.running = false;
    if (this.aborted) this.releaseOnce();
    else this.checkDrained();
  }

  private async runAudio(first: Extract<Op, { t: 'audio' }>): Promise<void> {
    const parts = [first.pcm];
    let total = first.pcm.length;
    let end = first.end;
    const cap = MAX_BATCH_SECONDS * this.rate;
    while (total < cap && this.ops[0]?.t === 'audio') {
      const next = this.ops.shift() as Extract<Op, { t: 'audio' }>;
      parts.push(next.pcm);
      total += next.pcm.length;
      end = next.end;
    }
    this.queuedSamples -= total;
    const pcm = concat(parts, total);
    const cfg = this.o.config;
    const withWords = cfg.partials && cfg.wordTimestamps && this.o.decoder.processWithWords !== undefined;
    let hyp: string;
    let hypWords: PartialWord[] | null = null;
    if (withWords) {
      const p = await this.o.decoder.processWithWords!(pcm);
      hyp = p.text;
      hypWords = p.words;
    } else {
      hyp = await this.o.decoder.process(pcm, cfg.partials);
    }
    if (this.aborted || !cfg.partials) return;
    if (hyp) this.noteSegmentPartial(hyp, hypWords);
    const text = [...this.held.map((h) => h.r.text), hyp].filter(Boolean).join(' ');
    if (!text || text === this.lastPartial) return;
    this.lastPartial = text;
    const partial: SttPartial = { transcript: text, start: first.utt / this.rate, duration: (end - first.utt) / this.rate };
    if (withWords) {
      const words = this.interimWords(hyp ? hypWords ?? [] : [], first.seg);
      partial.words = words;
      partial.confidence = words.length > 0 ? words.reduce((sum, w) => sum + w.confidence, 0) / words.length : 0;
    }
    this.emit('partial', partial);
  }

  /**
   * Remember the segment's latest partial, counting for each word how many consecutive partials it
   * has survived (same word starting within 50 ms in the previous partial).
   */
  private noteSegmentPartial(text: string, words: PartialWord[] | null): void {
    const prev = this.segPartial;
    const seen = (words ?? []).map((w) => {
      const k = prev?.words?.findIndex((p) => p.word === w.word && Math.abs(p.start - w.start) <= 0.05) ?? -1;
      return k >= 0 ? prev!.seen[k]! + 1 : 1;
    });
    this.segPartial = { text, words, seen };
  }

  /**
   * Interim words on the stream clock: the held segments' final words (with their posteriors), then
   * the live segment's partial words. A live word has no posterior yet; its confidence is its
   * stability, n / (n + 1) after surviving n consecutive partials (0.5 when first seen).
   */
  private interimWords(live: PartialWord[], seg: number): SttWord[] {
    const out: SttWord[] = [];
    for (const h of this.held) for (const w of h.r.words) out.push({ ...w, start: w.start + h.offset, end: w.end + h.offset });
    const offset = seg / this.rate;
    const seen = this.segPartial?.words === live ? this.segPartial.seen : [];
    live.forEach((w, i) => {
      const n = seen[i] ?? 1;
      out.push({ word: w.word, start: w.start + offset, end: w.end + offset, confidence: n / (n + 1) });
    });
    return out;
  }

  /**
   * The decoder's end-of-segment result, or — when that came back empty although the segment's last
   * partial showed words — that partial's words (confidence {@link PARTIAL_FALLBACK_CONFIDENCE}; times
   * from the partial, or spread evenly over the segment when the decoder gave none). A final never
   * silently drops words the client was shown (issue 9 §1). Resets the segment's partial state.
   */
  private fallbackFromPartial(r: UtteranceResult, segSamples: number): UtteranceResult {
    const p = this.segPartial;
    this.segPartial = null;
    if (r.text || r.words.length > 0 || !p || !p.text) return r;
    this.partialFallbacks++;
    const texts = p.text.split(' ').filter(Boolean);
    const span = Math.max(segSamples, 1) / this.rate;
    const words: SttWord[] =
      p.words && p.words.length === texts.length
        ? p.words.map((w) => ({ ...w, confidence: PARTIAL_FALLBACK_CONFIDENCE }))
        : texts.map((word, i) => ({ word, start: (i * span) / texts.length, end: ((i + 1) * span) / texts.length, confidence: PARTIAL_FALLBACK_CONFIDENCE }));
    return { text: texts.join(' '), confidence: PARTIAL_FALLBACK_CONFIDENCE, words };
  }

  /** End the decoder's segment early and hold its result for the utterance's final. */
  private async runCut(op: Extract<Op, { t: 'cut' }>): Promise<void> {
    const r = this.fallbackFromPartial(await this.o.decoder.endUtterance(), op.end - op.seg);
    if (r.text || r.words.length > 0) this.held.push({ offset: op.seg / this.rate, r });
    const last = r.words.at(-1);
    const ep = this.o.config.endpointingMs;
    if (last && ep !== null && op.id === this.cutSeq) {
      const speechEnd = Math.max(op.seg + Math.round(last.end * this.rate), op.vadEnd - Math.round((DECODER_ENDPOINT_GUARD_MS / 1000) * this.rate));
      this.decoderEndpoint = { cut: op.id, sample: speechEnd + Math.round((ep / 1000) * this.rate) };
      this.checkDecoderEndpoint();
    }
  }

  private async runEnd(op: Extract<Op, { t: 'end' }>): Promise<void> {
    const r = this.fallbackFromPartial(await this.o.decoder.endUtterance(), op.end - op.seg);
    const segments = [...this.held, { offset: op.seg / this.rate, r }].filter((s) => s.r.text || s.r.words.length > 0);
    this.held = [];
    this.lastPartial = '';
    if (this.aborted) return;
    const words = segments.flatMap((s) => s.r.words.map((w) => ({ ...w, start: w.start + s.offset, end: w.end + s.offset })));
    // One segment: its own confidence; several: the mean word posterior over all of them.
    const confidence =
      segments.length === 1 ? segments[0]!.r.confidence : words.length > 0 ? words.reduce((sum, w) => sum + w.confidence, 0) / words.length : 0;
    this.emitFinal({
      transcript: segments.map((s) => s.r.text).join(' '),
      confidence,
      words: this.o.config.wordTimestamps ? words : undefined,
      start: op.start / this.rate,
      duration: (op.end - op.start) / this.rate,
      language: this.o.config.language,
      speechFinal: op.speechFinal,
      fromFinalize: op.fromFinalize,
    });
  }

  private emitFinal(f: SttFinal): void {
    this.emit('final', f);
  }

  private checkDrained(): void {
    if (this.closing && this.ops.length === 0 && !this.running) {
      this.releaseOnce();
      this.drained?.();
      this.drained = null;
    }
  }

  private fail(err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    this.abort();
    this.emit('error', e);
  }

  private releaseOnce(): void {
    if (this.released) return;
    this.released = true;
    this.o.release();
  }
}
