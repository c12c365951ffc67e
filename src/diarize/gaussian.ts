/**
 * Gaussian sufficient statistics and the BIC segment scorer of the classical diarizer (issue 13):
 * full-covariance ΔBIC between speech segments (Chen & Gopalakrishnan 1998), covariances shrunk
 * towards a recording-wide prior so that short segments stay well conditioned, and per-frame
 * Gaussian log-likelihoods for re-segmentation.
 */
import type { Frames } from './mfcc.js';

/** Sufficient statistics of a set of `dim`-dimensional frames. */
export interface GaussStats {
  /** Frames counted. */
  n: number;
  /** Σx, length dim. */
  sum: Float64Array;
  /** Σxxᵀ, dim × dim row-major. */
  sq: Float64Array;
}

/** Empty statistics of dimension `dim`. */
export function emptyStats(dim: number): GaussStats {
  return { n: 0, sum: new Float64Array(dim), sq: new Float64Array(dim * dim) };
}

/** Adds rows `[from, to)` of `frames` into `s` (in place) and returns `s`. */
export function accumulate(s: GaussStats, frames: Frames, from: number, to: number): GaussStats {
  const d = frames.dim;
  const { sum, sq } = s;
  for (let f = from; f < to; f++) {
    const o = f * d;
    for (let i = 0; i < d; i++) {
      const xi = frames.data[o + i]!;
      sum[i] = sum[i]! + xi;
      const row = i * d;
      for (let j = i; j < d; j++) sq[row + j] = sq[row + j]! + xi * frames.data[o + j]!;
    }
  }
  s.n += Math.max(0, to - from);
  return s;
}

/** `a + b` as new statistics (upper triangles of `sq` only are meaningful). */
export function addStats(a: GaussStats, b: GaussStats): GaussStats {
  const sum = new Float64Array(a.sum.length);
  const sq = new Float64Array(a.sq.length);
  for (let i = 0; i < sum.length; i++) sum[i] = a.sum[i]! + b.sum[i]!;
  for (let i = 0; i < sq.length; i++) sq[i] = a.sq[i]! + b.sq[i]!;
  return { n: a.n + b.n, sum, sq };
}

/** Adds `b` into `a` in place. */
export function addInto(a: GaussStats, b: GaussStats): void {
  for (let i = 0; i < a.sum.length; i++) a.sum[i] = a.sum[i]! + b.sum[i]!;
  for (let i = 0; i < a.sq.length; i++) a.sq[i] = a.sq[i]! + b.sq[i]!;
  a.n += b.n;
}

/**
 * Mean and covariance of `s`, the covariance shrunk towards `prior` with weight `tau` frames:
 * Σ = (n·Σ_ML + τ·Σ_prior) / (n + τ). Returns the full symmetric matrix.
 */
export function meanCov(s: GaussStats, prior: Float64Array | null, tau: number): { mean: Float64Array; cov: Float64Array } {
  const d = s.sum.length;
  const n = Math.max(s.n, 1e-9);
  const mean = new Float64Array(d);
  for (let i = 0; i < d; i++) mean[i] = s.sum[i]! / n;
  const cov = new Float64Array(d * d);
  const w = prior ? tau : 0;
  for (let i = 0; i < d; i++) {
    for (let j = i; j < d; j++) {
      const ml = s.sq[i * d + j]! / n - mean[i]! * mean[j]!;
      const v = (s.n * ml + w * (prior ? prior[i * d + j]! : 0)) / (s.n + w || 1);
      cov[i * d + j] = v;
      cov[j * d + i] = v;
    }
  }
  return { mean, cov };
}

/**
 * In-place Cholesky factor (lower) of a symmetric positive-definite `d × d` matrix; a tiny ridge is
 * added to the diagonal when a pivot is not positive.
 * @returns log-determinant of the matrix.
 */
export function cholesky(a: Float64Array, d: number): number {
  let logdet = 0;
  for (let j = 0; j < d; j++) {
    let s = a[j * d + j]!;
    for (let k = 0; k < j; k++) s -= a[j * d + k]! ** 2;
    if (!(s > 1e-12)) s = 1e-12;
    const l = Math.sqrt(s);
    a[j * d + j] = l;
    logdet += 2 * Math.log(l);
    for (let i = j + 1; i < d; i++) {
      let t = a[i * d + j]!;
      for (let k = 0; k < j; k++) t -= a[i * d + k]! * a[j * d + k]!;
      a[i * d + j] = t / l;
    }
    for (let k = j + 1; k < d; k++) a[j * d + k] = 0;
  }
  return logdet;
}

/** log|Σ| of statistics `s` (shrunk as in {@link meanCov}). */
export function logDet(s: GaussStats, prior: Float64Array | null, tau: number): number {
  const d = s.sum.length;
  const { cov } = meanCov(s, prior, tau);
  return cholesky(cov, d);
}

/** A Gaussian with precomputed Cholesky factor, for frame log-likelihoods. */
export class GaussModel {
  readonly mean: Float64Array;
  private readonly chol: Float64Array;
  private readonly norm: number;
  private readonly tmp: Float64Array;
  constructor(s: GaussStats, prior: Float64Array | null, tau: number) {
    const d = s.sum.length;
    const { mean, cov } = meanCov(s, prior, tau);
    this.mean = mean;
    const logdet = cholesky(cov, d);
    this.chol = cov;
    this.norm = -0.5 * (d * Math.log(2 * Math.PI) + logdet);
    this.tmp = new Float64Array(d);
  }
  /** log N(x; μ, Σ) of row `f` of `frames`. */
  logLik(frames: Frames, f: number): number {
    const d = frames.dim;
    const o = f * d;
    const { chol, mean, tmp } = this;
    let q = 0;
    // Solve L y = x - μ by forward substitution; q = |y|².
    for (let i = 0; i < d; i++) {
      let t = frames.data[o + i]! - mean[i]!;
      const row = i * d;
      for (let k = 0; k < i; k++) t -= chol[row + k]! * tmp[k]!;
      const y = t / chol[row + i]!;
      tmp[i] = y;
      q += y * y;
    }
    return this.norm - 0.5 * q;
  }
}

/**
 * Scores speech segments for clustering: statistics per segment, merging, and a merge cost.
 * Implementations: {@link BicScorer} (classical). A neural speaker-embedding scorer plugs in with the
 * same shapes: a `FeatureExtractor` whose frames are the raw samples of each 10 ms hop (dim = hop
 * samples), and a scorer whose `stats` runs sherpa-onnx-node's `SpeakerEmbeddingExtractor` on the
 * segment's samples (S = {embedding, frames}), `merge` averages embeddings weighted by frames, and
 * `distance` is cosine distance minus a threshold (no `frameModel`, so re-segmentation is skipped).
 * Pass it as the second argument of `new ClassicalDiarizer(opts, scorerFactory)`.
 */
export interface SegmentScorer<S> {
  /** Statistics of rows `[from, to)` of `frames`. */
  stats(frames: Frames, from: number, to: number): S;
  /** Statistics of the union of two sets (new object; inputs unchanged). */
  merge(a: S, b: S): S;
  /**
   * Cost of merging `a` and `b`: below 0 means the scorer's own criterion says "same speaker"
   * (ΔBIC for {@link BicScorer}); larger is more different. Used to pick merges and to stop.
   */
  distance(a: S, b: S): number;
  /** Frames (duration weight) in `s`. */
  size(s: S): number;
  /**
   * Optional frame model for re-segmentation: a function giving log p(frame f | speaker of `s`).
   * Scorers without a frame model (embeddings) skip re-segmentation.
   */
  frameModel?(s: S): (frames: Frames, f: number) => number;
}

/** Options of {@link BicScorer}. */
export interface BicOptions {
  /** BIC penalty weight λ (default 1.0). Larger → fewer speakers when the count is unknown. */
  lambda?: number;
  /** Shrinkage weight τ in frames towards the prior covariance (default 30). */
  tau?: number;
}

/**
 * Full-covariance ΔBIC scorer:
 * ΔBIC(a, b) = ½[N·log|Σ| − Na·log|Σa| − Nb·log|Σb|] − λ·½·(d + d(d+1)/2)·log N, N = Na + Nb,
 * with every Σ shrunk towards the prior covariance (the recording's, or the stream history's).
 * Caches log|Σ| per statistics object.
 */
export class BicScorer implements SegmentScorer<GaussStats> {
  readonly lambda: number;
  readonly tau: number;
  private readonly cache = new WeakMap<GaussStats, number>();
  /** @param prior covariance (dim × dim) to shrink towards, or null for none. */
  constructor(readonly dim: number, readonly prior: Float64Array | null, opts: BicOptions = {}) {
    this.lambda = opts.lambda ?? 1.0;
    this.tau = opts.tau ?? 30;
  }
  stats(frames: Frames, from: number, to: number): GaussStats {
    return accumulate(emptyStats(frames.dim), frames, from, to);
  }
  merge(a: GaussStats, b: GaussStats): GaussStats {
    return addStats(a, b);
  }
  size(s: GaussStats): number {
    return s.n;
  }
  /** log|Σ| (cached per object). */
  logDet(s: GaussStats): number {
    let v = this.cache.get(s);
    if (v === undefined) {
      v = logDet(s, this.prior, this.tau);
      this.cache.set(s, v);
    }
    return v;
  }
  distance(a: GaussStats, b: GaussStats): number {
    const m = addStats(a, b);
    const d = this.dim;
    const n = m.n;
    const glr = 0.5 * (n * this.logDet(m) - a.n * this.logDet(a) - b.n * this.logDet(b));
    const penalty = 0.5 * this.lambda * (d + (d * (d + 1)) / 2) * Math.log(Math.max(n, 2));
    return glr - penalty;
  }
  frameModel(s: GaussStats): (frames: Frames, f: number) => number {
    const g = new GaussModel(s, this.prior, this.tau);
    return (frames, f) => g.logLik(frames, f);
  }
}

/** Covariance (dim × dim) of all rows of `frames` selected by `mask` (all when null); identity if empty. */
export function globalCov(frames: Frames, mask: Uint8Array | null): Float64Array {
  const s = emptyStats(frames.dim);
  for (let f = 0; f < frames.count; f++) if (!mask || mask[f]) accumulate(s, frames, f, f + 1);
  if (s.n < 2) {
    const id = new Float64Array(frames.dim * frames.dim);
    for (let i = 0; i < frames.dim; i++) id[i * frames.dim + i] = 1;
    return id;
  }
  return meanCov(s, null, 0).cov;
}
