/**
 * The embedded classical speaker diarizer (issue 13 "Embedded diarizer"; EXPERIMENTAL).
 *
 * Offline (`diarize`, pre-recorded files):
 *  1. MFCC frames (mfcc.ts), 10 ms hop.
 *  2. Speech regions from Silero VAD (16 kHz) or an energy detector (speech.ts).
 *  3. Speaker-change detection inside each region: diagonal-Gaussian GLR between adjacent
 *     `changeWinS` windows, peaks above the recording's mean GLR; long segments are cut to ≤ `maxSegS`.
 *  4. Agglomerative clustering of the segments with full-covariance ΔBIC (gaussian.ts, cluster.ts),
 *     stopping at ΔBIC ≥ 0 or at the speaker-count hints.
 *  5. Re-segmentation: Viterbi over 0.1 s blocks of speech with one Gaussian per speaker and a
 *     switch penalty, models re-estimated, `resegIterations` times.
 *
 * Online (`stream` → {@link ClassicalStreamDiarizer}): features are computed as audio is written;
 * each `labelFinal` cuts the final's speech (its words, joined across pauses < 0.5 s) into
 * segments of ~2 s, re-clusters them with the capped history (plus one frozen "anchor" per label for
 * segments evicted from the history; anchors of different labels never merge), maps the clusters
 * onto the labels already emitted with a maximum-overlap (Hungarian) assignment
 * ({@link mapClustersToLabels}), re-segments the final's speech frame by frame (Viterbi) against the
 * labelled clusters, and gives each word the majority label of its frames. An emitted label never
 * changes, and the cost per final is bounded by the history cap (60 s of speech, consolidated into
 * ≤ 3 s segments per label).
 *
 * Known limits (measured, bench/results/diarize.json): no overlap detection (overlapped speech is
 * missed), and with the count unknown BIC over-splits long recordings (e.g. 28 clusters on a 5-minute
 * loop of 11 speakers) — pass `maxSpeakers`/`numSpeakers` when known. Offline memory is O(segments²).
 *
 * Pluggable: the feature extractor and the segment scorer are interfaces (mfcc.ts `FeatureExtractor`,
 * gaussian.ts `SegmentScorer`); a neural speaker embedding can replace them.
 */
import type { DiarizeOptions, Diarizer, SpeakerLabel, SpeakerTurn, StreamDiarizer, TimeSpan } from './types.js';
import { MfccExtractor, type FeatureExtractor, type Frames } from './mfcc.js';
import { BicScorer, globalCov, emptyStats, accumulate, type GaussStats, type SegmentScorer, type BicOptions } from './gaussian.js';
import { agglomerate, countBounds, type ClusterItem } from './cluster.js';
import { energyRegions, sileroRegions, type Region } from './speech.js';
import { maxWeightAssignment } from './hungarian.js';

/** Tuning of the classical diarizer (defaults measured on ../shared/data/diarization, see bench/diarize.ts). */
export interface ClassicalOptions extends BicOptions {
  /** Use Silero VAD for offline speech regions when possible (default true); else the energy detector. */
  silero?: boolean;
  /** Silero speech-probability threshold for offline regions (default 0.5). */
  vadThreshold?: number;
  /** Speech regions are widened by this many seconds on each side (default 0.1; VAD edges are tight). */
  padS?: number;
  /** Pauses shorter than this (seconds) inside speech are kept as speech (default 0.5; references label turns, not pauses). */
  fillGapS?: number;
  /** Change-detection window per side, seconds (default 1.0). */
  changeWinS?: number;
  /** Longest initial segment, seconds (default 2.0). */
  maxSegS?: number;
  /** Shortest initial segment, seconds (default 0.5). */
  minSegS?: number;
  /** Re-segmentation passes (default 2; 0 = off). */
  resegIterations?: number;
  /** Viterbi switch penalty in nats per speaker change (default 30). */
  switchPenalty?: number;
  /** Viterbi block, frames (default 10 = 0.1 s). */
  blockFrames?: number;
  /** Online: speech seconds of segments kept for re-clustering (default 60). */
  historyS?: number;
  /** Online: seconds of raw feature frames kept for words still to be labelled (default 60). */
  keepFramesS?: number;
  /** Online: target segment length for a final's words, seconds (default 2.0). */
  onlineSegS?: number;
  /** Online: history segments of one label are consolidated up to this many seconds of speech (default 3). */
  consolidateS?: number;
  /** Online: speech seconds of history before `numSpeakers`/`minSpeakers` force a minimum count (default 30). */
  minHintHistoryS?: number;
  /** Feature extractor factory (default MFCC, 16 cepstra). */
  features?: (sampleRate: number) => FeatureExtractor;
}

/** Frame range [from, to) of a recording. */
interface Seg {
  from: number;
  to: number;
}

/** Everything a feature pass produces for a whole recording. */
function extractAll(pcm: Int16Array, fx: FeatureExtractor): Frames {
  return fx.stream().push(pcm);
}

/** Diagonal-Gaussian log-det of frames [a, b) from prefix sums. */
function diagLogDet(cs: Float64Array, cq: Float64Array, d: number, a: number, b: number): number {
  const n = b - a;
  let s = 0;
  for (let i = 0; i < d; i++) {
    const m = (cs[b * d + i]! - cs[a * d + i]!) / n;
    const v = (cq[b * d + i]! - cq[a * d + i]!) / n - m * m;
    s += Math.log(Math.max(v, 1e-6));
  }
  return s;
}

/**
 * Splits speech regions into segments at speaker-change points (diagonal GLR peaks) and at most
 * `maxSeg` frames long. Returns segments in time order.
 */
export function changeSegments(frames: Frames, regions: Seg[], win: number, minSeg: number, maxSeg: number): Seg[] {
  const d = frames.dim;
  const n = frames.count;
  const cs = new Float64Array((n + 1) * d);
  const cq = new Float64Array((n + 1) * d);
  for (let f = 0; f < n; f++) {
    for (let i = 0; i < d; i++) {
      const x = frames.data[f * d + i]!;
      cs[(f + 1) * d + i] = cs[f * d + i]! + x;
      cq[(f + 1) * d + i] = cq[f * d + i]! + x * x;
    }
  }
  const step = 5;
  const curves: { region: Seg; t: number[]; v: number[] }[] = [];
  const all: number[] = [];
  for (const r of regions) {
    const t: number[] = [];
    const v: number[] = [];
    for (let c = r.from + win; c + win <= r.to; c += step) {
      const g = 0.5 * (2 * win * diagLogDet(cs, cq, d, c - win, c + win) - win * diagLogDet(cs, cq, d, c - win, c) - win * diagLogDet(cs, cq, d, c, c + win));
      t.push(c);
      v.push(g);
      all.push(g);
    }
    curves.push({ region: r, t, v });
  }
  const mean = all.length ? all.reduce((a, b) => a + b, 0) / all.length : 0;
  const sd = all.length ? Math.sqrt(all.reduce((a, b) => a + (b - mean) ** 2, 0) / all.length) : 0;
  const thr = mean + 0.5 * sd;
  const out: Seg[] = [];
  for (const { region, t, v } of curves) {
    const cuts: number[] = [];
    const radius = Math.max(1, Math.round(win / 2 / step));
    for (let i = 0; i < v.length; i++) {
      if (v[i]! < thr) continue;
      let peak = true;
      for (let j = Math.max(0, i - radius); j <= Math.min(v.length - 1, i + radius); j++) if (v[j]! > v[i]! || (v[j] === v[i] && j < i)) peak = false;
      if (peak && t[i]! - (cuts[cuts.length - 1] ?? region.from) >= minSeg && region.to - t[i]! >= minSeg) cuts.push(t[i]!);
    }
    const bounds = [region.from, ...cuts, region.to];
    for (let k = 0; k + 1 < bounds.length; k++) {
      const a = bounds[k]!, b = bounds[k + 1]!;
      const pieces = Math.max(1, Math.ceil((b - a) / maxSeg));
      for (let p = 0; p < pieces; p++) {
        const from = a + Math.round(((b - a) * p) / pieces);
        const to = a + Math.round(((b - a) * (p + 1)) / pieces);
        if (to > from) out.push({ from, to });
      }
    }
  }
  return out;
}

/**
 * Viterbi re-segmentation of speech regions over blocks of `block` frames: one state per speaker
 * model, `penalty` nats per switch. Returns a label per frame (-1 outside speech).
 */
export function viterbiResegment(
  frames: Frames,
  regions: Seg[],
  models: ((frames: Frames, f: number) => number)[],
  block: number,
  penalty: number,
): Int32Array {
  const labels = new Int32Array(frames.count).fill(-1);
  const K = models.length;
  if (K === 0) return labels;
  for (const r of regions) {
    const nb = Math.ceil((r.to - r.from) / block);
    if (nb <= 0) continue;
    const score = new Float64Array(nb * K);
    for (let b = 0; b < nb; b++) {
      const a = r.from + b * block, e = Math.min(r.to, a + block);
      for (let k = 0; k < K; k++) {
        let s = 0;
        for (let f = a; f < e; f++) s += models[k]!(frames, f);
        score[b * K + k] = s;
      }
    }
    const delta = new Float64Array(K);
    const back = new Int32Array(nb * K);
    for (let k = 0; k < K; k++) delta[k] = score[k]!;
    const next = new Float64Array(K);
    for (let b = 1; b < nb; b++) {
      let best = 0;
      for (let k = 1; k < K; k++) if (delta[k]! > delta[best]!) best = k;
      for (let k = 0; k < K; k++) {
        const stay = delta[k]!;
        const sw = delta[best]! - penalty;
        if (stay >= sw || best === k) { next[k] = stay + score[b * K + k]!; back[b * K + k] = k; }
        else { next[k] = sw + score[b * K + k]!; back[b * K + k] = best; }
      }
      delta.set(next);
    }
    let k = 0;
    for (let j = 1; j < K; j++) if (delta[j]! > delta[k]!) k = j;
    for (let b = nb - 1; b >= 0; b--) {
      const a = r.from + b * block, e = Math.min(r.to, a + block);
      for (let f = a; f < e; f++) labels[f] = k;
      k = back[b * K + k]!;
    }
  }
  return labels;
}

/** Frame labels → turns (seconds), consecutive equal labels merged, -1 skipped, labels renumbered by first appearance. */
function labelsToTurns(labels: Int32Array, hopS: number, endS: number): SpeakerTurn[] {
  const turns: SpeakerTurn[] = [];
  const renum = new Map<number, number>();
  let f = 0;
  while (f < labels.length) {
    const l = labels[f]!;
    let g = f + 1;
    while (g < labels.length && labels[g] === l) g++;
    if (l >= 0) {
      if (!renum.has(l)) renum.set(l, renum.size);
      turns.push({ start: f * hopS, end: Math.min(g * hopS, endS), speaker: renum.get(l)! });
    }
    f = g;
  }
  return turns;
}

/** A scorer factory: given the feature dimension and the prior covariance of the speech. */
export type ScorerFactory<S> = (dim: number, prior: Float64Array) => SegmentScorer<S>;

/**
 * The classical diarizer (EXPERIMENTAL). See the module docstring for the pipeline.
 * Implements the issue-13 `Diarizer` contract (src/diarize/types.ts).
 */
export class ClassicalDiarizer<S = GaussStats> implements Diarizer {
  readonly id = 'classical';
  readonly experimental = true;
  readonly options: Required<Omit<ClassicalOptions, 'features'>>;
  private readonly features: (sampleRate: number) => FeatureExtractor;
  private readonly scorerFactory: ScorerFactory<S>;
  private readonly fxCache = new Map<number, FeatureExtractor>();

  /**
   * @param opts tuning (see {@link ClassicalOptions}).
   * @param scorer segment scorer factory (default {@link BicScorer} with `lambda`/`tau`).
   */
  constructor(opts: ClassicalOptions = {}, scorer?: ScorerFactory<S>) {
    this.options = {
      lambda: opts.lambda ?? 1.6,
      tau: opts.tau ?? 30,
      silero: opts.silero ?? true,
      vadThreshold: opts.vadThreshold ?? 0.5,
      fillGapS: opts.fillGapS ?? 0.5,
      padS: opts.padS ?? 0.1,
      changeWinS: opts.changeWinS ?? 1.0,
      maxSegS: opts.maxSegS ?? 2.0,
      minSegS: opts.minSegS ?? 0.5,
      resegIterations: opts.resegIterations ?? 2,
      switchPenalty: opts.switchPenalty ?? 30,
      blockFrames: opts.blockFrames ?? 10,
      historyS: opts.historyS ?? 60,
      keepFramesS: opts.keepFramesS ?? 60,
      onlineSegS: opts.onlineSegS ?? 2.0,
      minHintHistoryS: opts.minHintHistoryS ?? 30,
      consolidateS: opts.consolidateS ?? 3,
    };
    this.features = opts.features ?? ((rate) => new MfccExtractor(rate));
    this.scorerFactory =
      scorer ?? (((dim: number, prior: Float64Array) => new BicScorer(dim, prior, { lambda: this.options.lambda, tau: this.options.tau })) as unknown as ScorerFactory<S>);
  }

  /** The (cached) feature extractor for a sample rate. */
  extractor(sampleRate: number): FeatureExtractor {
    let fx = this.fxCache.get(sampleRate);
    if (!fx) {
      fx = this.features(sampleRate);
      this.fxCache.set(sampleRate, fx);
    }
    return fx;
  }

  /** Builds a scorer (used by streams too). */
  scorer(dim: number, prior: Float64Array): SegmentScorer<S> {
    return this.scorerFactory(dim, prior);
  }

  /**
   * Diarizes a whole recording (see module docstring).
   * @param pcm mono 16-bit PCM; @param sampleRate Hz (> 0).
   * @returns non-overlapping turns in time order over detected speech, labels from 0 in order of first appearance.
   * @throws RangeError on a non-positive sample rate.
   */
  diarize(pcm: Int16Array, sampleRate: number, opts?: DiarizeOptions): SpeakerTurn[] {
    if (!(sampleRate > 0)) throw new RangeError(`invalid sample rate ${sampleRate}`);
    const o = this.options;
    const fx = this.extractor(sampleRate);
    const frames = extractAll(pcm, fx);
    if (frames.count === 0) return [];
    const hop = fx.hopS;
    const endS = pcm.length / sampleRate;
    const regionsS: Region[] = (o.silero ? sileroRegions(pcm, sampleRate, o.vadThreshold) : null) ?? energyRegions(frames.energy, hop);
    const filled: Region[] = [];
    for (const r0 of regionsS) {
      const r = { start: Math.max(0, r0.start - o.padS), end: Math.min(endS, r0.end + o.padS) };
      const last = filled[filled.length - 1];
      if (last && r.start - last.end < o.fillGapS) last.end = Math.max(last.end, r.end);
      else filled.push(r);
    }
    const regions: Seg[] = filled
      .map((r) => ({ from: Math.max(0, Math.round(r.start / hop)), to: Math.min(frames.count, Math.round(r.end / hop)) }))
      .filter((r) => r.to - r.from >= 5);
    if (regions.length === 0) return [];
    const mask = new Uint8Array(frames.count);
    for (const r of regions) mask.fill(1, r.from, r.to);
    const prior = globalCov(frames, mask);
    const scorer = this.scorer(frames.dim, prior);
    const win = Math.max(10, Math.round(o.changeWinS / hop));
    const segs = changeSegments(frames, regions, win, Math.round(o.minSegS / hop), Math.max(10, Math.round(o.maxSegS / hop)));
    const items: ClusterItem<S>[] = segs.map((s) => ({ stats: scorer.stats(frames, s.from, s.to) }));
    const bounds = countBounds(opts);
    const { assign, clusters } = agglomerate(items, scorer, bounds);
    let labels: Int32Array = new Int32Array(frames.count).fill(-1);
    segs.forEach((s, i) => labels.fill(assign[i]!, s.from, s.to));
    if (scorer.frameModel && clusters.length > 1) {
      let models = clusters;
      for (let it = 0; it < o.resegIterations; it++) {
        labels = viterbiResegment(frames, regions, models.map((c) => scorer.frameModel!(c)), o.blockFrames, o.switchPenalty);
        const next: S[] = [];
        const present: number[] = [];
        for (let k = 0; k < models.length; k++) {
          let from = -1;
          let st: S | null = null;
          for (let f = 0; f <= frames.count; f++) {
            const on = f < frames.count && labels[f] === k;
            if (on && from < 0) from = f;
            else if (!on && from >= 0) {
              const piece = scorer.stats(frames, from, f);
              st = st ? scorer.merge(st, piece) : piece;
              from = -1;
            }
          }
          if (st && scorer.size(st) > 0) { next.push(st); present.push(k); }
        }
        if (present.length !== models.length) {
          const remap = new Map(present.map((k, i) => [k, i]));
          for (let f = 0; f < labels.length; f++) if (labels[f]! >= 0) labels[f] = remap.get(labels[f]!) ?? -1;
        }
        models = next;
        if (models.length < 2) break;
      }
    }
    return labelsToTurns(labels, hop, endS);
  }

  /** Opens an online diarization for a stream (see {@link ClassicalStreamDiarizer}). */
  stream(sampleRate: number, opts?: DiarizeOptions): ClassicalStreamDiarizer<S> {
    return new ClassicalStreamDiarizer(this, sampleRate, opts);
  }
}

/**
 * Maps the clusters of an online re-clustering onto speaker labels (issue 13 stability rule):
 * a one-to-one maximum-overlap assignment (Hungarian) of clusters to labels already emitted, by
 * `weight[k][l]` = frames of cluster k that were emitted as label l; a cluster left unmapped that
 * holds new speech gets the next new label while fewer than `maxLabels` exist, otherwise the label
 * of the mapped cluster `nearest(k, mappedClusters)` picks.
 * @returns `labels[k]` (-1 for an unmapped cluster without new speech) and the next free label.
 */
export function mapClustersToLabels(
  weight: readonly (readonly number[])[],
  hasNew: readonly boolean[],
  nextLabel: number,
  maxLabels: number,
  nearest: (k: number, mapped: number[]) => number,
): { labels: number[]; nextLabel: number } {
  const labels = maxWeightAssignment(weight);
  while (labels.length < hasNew.length) labels.push(-1);
  for (let k = 0; k < labels.length; k++) {
    if (labels[k]! >= 0 || !hasNew[k]) continue;
    if (nextLabel < maxLabels) labels[k] = nextLabel++;
    else {
      const mapped = [...labels.keys()].filter((j) => labels[j]! >= 0 && j !== k);
      labels[k] = mapped.length ? labels[nearest(k, mapped)]! : 0;
    }
  }
  return { labels, nextLabel };
}

/** A labelled segment of the online history. */
interface HistSeg<S> {
  /** Absolute frame range. */
  from: number;
  to: number;
  stats: S;
  /** Frames of speech in it (≤ to − from: a consolidated segment skips pauses). */
  frames: number;
  /** Label emitted for it. */
  label: number;
}

/** Counters of a {@link ClassicalStreamDiarizer} (for tests and metrics). */
export interface StreamDiarizerStats {
  /** Segments in the re-clustered history. */
  historySegments: number;
  /** Speech seconds in the history. */
  historyS: number;
  /** Feature frames held in memory. */
  framesHeld: number;
  /** Labels emitted so far (distinct). */
  labels: number;
  /** Segments evicted into label anchors. */
  evicted: number;
}

/**
 * Online diarization of one stream (EXPERIMENTAL): see {@link ClassicalDiarizer} module docstring.
 * Emitted labels are final; the history used for re-clustering is capped at `historyS` seconds of
 * speech (older segments are folded into a per-label anchor), and raw frames are kept for
 * `keepFramesS` seconds, so memory and per-final cost stay flat over a long session.
 */
export class ClassicalStreamDiarizer<S = GaussStats> implements StreamDiarizer {
  private readonly fx: FeatureExtractor;
  private readonly feat: ReturnType<FeatureExtractor['stream']>;
  private readonly hop: number;
  private readonly bounds: { min: number; max: number };
  /** Frame buffer: frames [base, base + count). */
  private buf: Float32Array;
  private base = 0;
  private count = 0;
  private readonly dim: number;
  private readonly history: HistSeg<S>[] = [];
  private historyFrames = 0;
  private readonly anchors = new Map<number, S>();
  private nextLabel = 0;
  private evicted = 0;
  /** Running covariance statistics of all labelled speech (prior for shrinkage). */
  private readonly priorStats: GaussStats;
  private closed = false;
  private lastLabel = 0;

  constructor(private readonly owner: ClassicalDiarizer<S>, readonly sampleRate: number, opts?: DiarizeOptions) {
    if (!(sampleRate > 0)) throw new RangeError(`invalid sample rate ${sampleRate}`);
    this.fx = owner.extractor(sampleRate);
    this.feat = this.fx.stream();
    this.hop = this.fx.hopS;
    this.dim = this.fx.dim;
    this.bounds = countBounds(opts);
    this.buf = new Float32Array(1024 * this.dim);
    this.priorStats = emptyStats(this.dim);
  }

  /** Feeds PCM (mono, the stream's rate) in order; computes its feature frames. No-op after close. */
  write(pcm: Int16Array): void {
    if (this.closed || pcm.length === 0) return;
    const fr = this.feat.push(pcm);
    if (fr.count === 0) return;
    const d = this.dim;
    const keep = Math.max(1, Math.round(this.owner.options.keepFramesS / this.hop));
    if (this.count + fr.count > keep) {
      const drop = Math.min(this.count, this.count + fr.count - keep);
      this.buf.copyWithin(0, drop * d, this.count * d);
      this.base += drop;
      this.count -= drop;
    }
    if ((this.count + fr.count) * d > this.buf.length) {
      const nb = new Float32Array(Math.max(this.buf.length * 2, (this.count + fr.count) * d));
      nb.set(this.buf.subarray(0, this.count * d));
      this.buf = nb;
    }
    this.buf.set(fr.data.subarray(0, fr.count * d), this.count * d);
    this.count += fr.count;
  }

  /** Current counters. */
  stats(): StreamDiarizerStats {
    return {
      historySegments: this.history.length,
      historyS: this.historyFrames * this.hop,
      framesHeld: this.count,
      labels: this.nextLabel,
      evicted: this.evicted,
    };
  }

  /**
   * Labels a final's words (seconds from stream start). Words with no written audio get the label of
   * their nearest labelled neighbour (or the last label emitted). Never throws on odd spans
   * (negative, reversed, NaN are treated as empty).
   * @returns one {@link SpeakerLabel} per word, same order.
   */
  labelFinal(words: readonly TimeSpan[]): SpeakerLabel[] {
    if (words.length === 0) return [];
    if (this.closed) return words.map(() => ({ speaker: this.lastLabel, confidence: 0 }));
    const frames: Frames = { count: this.count, dim: this.dim, data: this.buf, energy: new Float32Array(0) };
    const o = this.owner.options;
    const toFrame = (t: number): number => (Number.isFinite(t) ? Math.round(t / this.hop) : -1);
    // Word spans → local frame ranges, clipped to the frames held.
    const spans = words.map((w) => {
      const a = Math.max(toFrame(w.start) - this.base, 0);
      const b = Math.min(toFrame(w.end) - this.base, this.count);
      return b > a ? { a, b } : null;
    });
    // Speech regions of the final (words closer than 0.5 s joined) and ~onlineSegS groups for clustering.
    const target = Math.max(10, Math.round(o.onlineSegS / this.hop));
    const gapMax = Math.round(0.5 / this.hop);
    const ordered = spans.filter((s): s is { a: number; b: number } => s !== null).sort((x, y) => x.a - y.a);
    const regions: Seg[] = [];
    for (const s of ordered) {
      const r = regions[regions.length - 1];
      if (r && s.a - r.to <= gapMax) r.to = Math.max(r.to, s.b);
      else regions.push({ from: s.a, to: s.b });
    }
    const groups: Seg[] = [];
    for (const r of regions) {
      const pieces = Math.max(1, Math.round((r.to - r.from) / target));
      for (let p = 0; p < pieces; p++) {
        const from = r.from + Math.round(((r.to - r.from) * p) / pieces);
        const to = r.from + Math.round(((r.to - r.from) * (p + 1)) / pieces);
        if (to > from) groups.push({ from, to });
      }
    }
    const frameLabel = new Int32Array(this.count).fill(-1);
    const frameConf = new Float32Array(this.count);
    if (groups.length > 0) {
      const scorer = this.owner.scorer(this.dim, this.prior());
      for (const g of groups) accumulate(this.priorStats, frames, g.from, g.to);
      const fresh = groups.map((g) => scorer.stats(frames, g.from, g.to));
      // Re-cluster anchors + history + fresh segments.
      const anchorLabels = [...this.anchors.keys()];
      const items: ClusterItem<S>[] = [
        ...anchorLabels.map((l) => ({ stats: this.anchors.get(l)!, anchor: l })),
        ...this.history.map((h) => ({ stats: h.stats })),
        ...fresh.map((stats) => ({ stats })),
      ];
      const histS = (this.historyFrames + regions.reduce((a, r) => a + r.to - r.from, 0)) * this.hop;
      const bounds = { min: histS >= o.minHintHistoryS ? this.bounds.min : 1, max: this.bounds.max };
      const { assign, clusters } = agglomerate(items, scorer, bounds);
      const K = clusters.length;
      const freshBase = anchorLabels.length + this.history.length;
      // Overlap (frames) of each cluster with each emitted label → maximum-overlap one-to-one mapping.
      const weight: number[][] = [];
      for (let k = 0; k < K; k++) weight.push(new Array<number>(this.nextLabel).fill(0));
      anchorLabels.forEach((l, i) => { weight[assign[i]!]![l]! += scorer.size(this.anchors.get(l)!); });
      this.history.forEach((h, i) => { weight[assign[anchorLabels.length + i]!]![h.label]! += h.frames; });
      const mapped = mapClustersToLabels(weight, clusters.map((_, k) => fresh.some((_, i) => assign[freshBase + i] === k)), this.nextLabel, this.bounds.max, (k, candidates) => {
        let best = candidates[0]!, bestD = Infinity;
        for (const j of candidates) {
          const dd = scorer.distance(clusters[k]!, clusters[j]!);
          if (dd < bestD) { bestD = dd; best = j; }
        }
        return best;
      });
      const clusterLabel = mapped.labels;
      this.nextLabel = mapped.nextLabel;
      const live = [...clusterLabel.keys()].filter((k) => clusterLabel[k]! >= 0);
      if (scorer.frameModel && live.length > 1) {
        // Frame-level re-segmentation of the final's speech against the labelled clusters.
        const models = live.map((k) => scorer.frameModel!(clusters[k]!));
        const lab = viterbiResegment(frames, regions, models, o.blockFrames, o.switchPenalty);
        for (const r of regions) {
          for (let f = r.from; f < r.to; f++) frameLabel[f] = clusterLabel[live[lab[f]!]!]!;
          // Confidence per 0.1 s block: posterior of the chosen model against the best other one.
          for (let a = r.from; a < r.to; a += o.blockFrames) {
            const e = Math.min(r.to, a + o.blockFrames);
            const ll = models.map((m) => { let s = 0; for (let f = a; f < e; f++) s += m(frames, f); return s / (e - a); });
            const k = lab[a]!;
            let other = -Infinity;
            ll.forEach((v, j) => { if (j !== k && v > other) other = v; });
            const c = 1 / (1 + Math.exp(-(ll[k]! - other)));
            frameConf.fill(c, a, e);
          }
        }
      } else {
        groups.forEach((g, i) => {
          frameLabel.fill(clusterLabel[assign[freshBase + i]!]!, g.from, g.to);
          frameConf.fill(0.5, g.from, g.to);
        });
      }
      // The final's speech joins the history as runs of one label (≤ 2 × onlineSegS), labels now final.
      const minRun = Math.round(0.2 / this.hop);
      for (const r of regions) {
        let f = r.from;
        while (f < r.to) {
          let g = f + 1;
          while (g < r.to && frameLabel[g] === frameLabel[f] && g - f < 2 * target) g++;
          if (g - f >= minRun && frameLabel[f]! >= 0) {
            // Consolidate with the previous segment of the same label when close and short enough,
            // so the clustering sees few, well-estimated segments (bounded cost per final).
            const last = this.history[this.history.length - 1];
            const st = scorer.stats(frames, f, g);
            if (last && last.label === frameLabel[f] && f + this.base - last.to <= gapMax && last.frames + g - f <= o.consolidateS / this.hop) {
              last.stats = scorer.merge(last.stats, st);
              last.frames += g - f;
              last.to = g + this.base;
            } else this.history.push({ from: f + this.base, to: g + this.base, stats: st, frames: g - f, label: frameLabel[f]! });
            this.historyFrames += g - f;
          }
          f = g;
        }
      }
      const cap = Math.round(o.historyS / this.hop);
      while (this.historyFrames > cap && this.history.length > 1) {
        const h = this.history.shift()!;
        this.historyFrames -= h.frames;
        const a = this.anchors.get(h.label);
        this.anchors.set(h.label, a ? scorer.merge(a, h.stats) : h.stats);
        this.evicted++;
      }
    }
    // Word labels: majority of the word's frames.
    const out: (SpeakerLabel | null)[] = spans.map((s) => {
      if (!s) return null;
      const votes = new Map<number, { n: number; c: number }>();
      for (let f = s.a; f < s.b; f++) {
        const l = frameLabel[f]!;
        if (l < 0) continue;
        const v = votes.get(l) ?? { n: 0, c: 0 };
        v.n++;
        v.c += frameConf[f]!;
        votes.set(l, v);
      }
      let best: [number, { n: number; c: number }] | null = null;
      for (const e of votes) if (!best || e[1].n > best[1].n) best = e;
      return best ? { speaker: best[0], confidence: round3(best[1].c / best[1].n) } : null;
    });
    if (this.nextLabel === 0) this.nextLabel = 1; // a final with no audio still names speaker 0
    const final: SpeakerLabel[] = out.map((l, i) => {
      if (l) return l;
      for (let d = 1; d < words.length; d++) {
        if (out[i - d]) return { speaker: out[i - d]!.speaker, confidence: 0 };
        if (out[i + d]) return { speaker: out[i + d]!.speaker, confidence: 0 };
      }
      return { speaker: this.lastLabel, confidence: 0 };
    });
    this.lastLabel = final[final.length - 1]!.speaker;
    return final;
  }

  /** Releases the history and frames. Idempotent. */
  close(): void {
    this.closed = true;
    this.history.length = 0;
    this.anchors.clear();
    this.buf = new Float32Array(0);
    this.count = 0;
  }

  private prior(): Float64Array {
    const d = this.dim;
    if (this.priorStats.n < 4 * d) {
      const frames: Frames = { count: this.count, dim: d, data: this.buf, energy: new Float32Array(0) };
      return globalCov(frames, null);
    }
    const n = this.priorStats.n;
    const cov = new Float64Array(d * d);
    for (let i = 0; i < d; i++) {
      for (let j = i; j < d; j++) {
        const v = this.priorStats.sq[i * d + j]! / n - (this.priorStats.sum[i]! / n) * (this.priorStats.sum[j]! / n);
        cov[i * d + j] = v;
        cov[j * d + i] = v;
      }
    }
    return cov;
  }

}

const round3 = (v: number): number => Math.round(v * 1000) / 1000;
