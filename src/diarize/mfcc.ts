/**
 * MFCC features for the classical diarizer (issue 13 "Embedded diarizer"), plain JavaScript:
 * precomputed Hamming window, mel filterbank (sparse) and DCT-II matrix, and a real FFT computed as
 * an N/2-point complex radix-2 FFT plus the standard split step.
 *
 * Conventions (Kaldi/HTK-like): 25 ms frames every 10 ms, DC removal and 0.97 pre-emphasis per frame,
 * power spectrum, `numMel` triangular mel filters from 20 Hz to min(7600 Hz, Nyquist), log, DCT-II;
 * c1…c`numCeps` are kept (c0 is replaced by the frame's log energy, kept apart in `energy`).
 * Frame `i` covers samples `[i·hop, i·hop + win)`; its time is taken as `[i·hop, (i+1)·hop)` seconds.
 */

/** A block of feature frames: `count` rows of `dim` floats, row-major in `data`. */
export interface Frames {
  count: number;
  dim: number;
  /** `count × dim` features. */
  data: Float32Array;
  /** Natural-log frame energy (sum of squares of the raw frame, samples scaled to [-1, 1)), one per frame. */
  energy: Float32Array;
}

/** An incremental feature computation over one stream. */
export interface FeatureStream {
  /**
   * Feed the next samples (mono, the extractor's rate; Int16 PCM or floats in [-1, 1)).
   * @returns the frames completed by these samples (possibly none), in stream order.
   */
  push(pcm: Int16Array | Float32Array): Frames;
}

/**
 * A frame-level feature extractor. The classical diarizer uses {@link MfccExtractor}; a neural
 * front end (e.g. filterbanks for a sherpa-onnx speaker-embedding model) can implement the same shape.
 */
export interface FeatureExtractor {
  /** Floats per frame. */
  readonly dim: number;
  /** Frame hop in seconds (frame `i` starts at `i × hopS`). */
  readonly hopS: number;
  /** Sample rate (Hz) the extractor was built for. */
  readonly sampleRate: number;
  /** A fresh incremental stream. */
  stream(): FeatureStream;
}

/** Options of {@link MfccExtractor}. */
export interface MfccOptions {
  /** Frame length, seconds (default 0.025). */
  winS?: number;
  /** Frame hop, seconds (default 0.01). */
  hopS?: number;
  /** Mel filters (default 24). */
  numMel?: number;
  /** Cepstra kept, c1…cN (default 16). */
  numCeps?: number;
  /** Upper edge of the filterbank in Hz (default min(7600, Nyquist)). */
  highHz?: number;
}

/** An in-place iterative radix-2 complex FFT of fixed size `n` (power of two), twiddles precomputed. */
class ComplexFft {
  private readonly rev: Uint32Array;
  private readonly cos: Float64Array;
  private readonly sin: Float64Array;
  constructor(readonly n: number) {
    let bits = 0;
    while (1 << bits < n) bits++;
    this.rev = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      let r = 0;
      for (let b = 0; b < bits; b++) if (i & (1 << b)) r |= 1 << (bits - 1 - b);
      this.rev[i] = r;
    }
    this.cos = new Float64Array(n / 2);
    this.sin = new Float64Array(n / 2);
    for (let i = 0; i < n / 2; i++) {
      this.cos[i] = Math.cos((-2 * Math.PI * i) / n);
      this.sin[i] = Math.sin((-2 * Math.PI * i) / n);
    }
  }
  transform(re: Float64Array, im: Float64Array): void {
    const { n, rev, cos, sin } = this;
    for (let i = 0; i < n; i++) {
      const j = rev[i]!;
      if (j > i) {
        let t = re[i]!; re[i] = re[j]!; re[j] = t;
        t = im[i]!; im[i] = im[j]!; im[j] = t;
      }
    }
    for (let size = 2; size <= n; size <<= 1) {
      const half = size >> 1;
      const step = n / size;
      for (let start = 0; start < n; start += size) {
        for (let k = 0, t = 0; k < half; k++, t += step) {
          const a = start + k;
          const b = a + half;
          const wr = cos[t]!;
          const wi = sin[t]!;
          const xr = re[b]! * wr - im[b]! * wi;
          const xi = re[b]! * wi + im[b]! * wr;
          re[b] = re[a]! - xr;
          im[b] = im[a]! - xi;
          re[a] = re[a]! + xr;
          im[a] = im[a]! + xi;
        }
      }
    }
  }
}

/**
 * Power spectrum of a real frame of length `n` (power of two) via one `n/2`-point complex FFT.
 * Output has `n/2 + 1` bins.
 */
export class RealFft {
  private readonly half: ComplexFft;
  private readonly re: Float64Array;
  private readonly im: Float64Array;
  private readonly wr: Float64Array;
  private readonly wi: Float64Array;
  /** @throws RangeError unless `n` is a power of two ≥ 4. */
  constructor(readonly n: number) {
    if (n < 4 || (n & (n - 1)) !== 0) throw new RangeError(`FFT size ${n} is not a power of two ≥ 4`);
    const h = n / 2;
    this.half = new ComplexFft(h);
    this.re = new Float64Array(h);
    this.im = new Float64Array(h);
    this.wr = new Float64Array(h);
    this.wi = new Float64Array(h);
    for (let k = 0; k < h; k++) {
      this.wr[k] = Math.cos((-2 * Math.PI * k) / n);
      this.wi[k] = Math.sin((-2 * Math.PI * k) / n);
    }
  }
  /** Writes |X[k]|² for k = 0…n/2 into `out` (length ≥ n/2 + 1). `x` has length n. */
  power(x: Float64Array, out: Float64Array): void {
    const h = this.n / 2;
    const { re, im, wr, wi } = this;
    for (let i = 0; i < h; i++) {
      re[i] = x[2 * i]!;
      im[i] = x[2 * i + 1]!;
    }
    this.half.transform(re, im);
    // X[k] = E[k] + W^k O[k], E = (Z[k] + conj Z[h-k]) / 2, O = (Z[k] - conj Z[h-k]) / 2i.
    out[0] = (re[0]! + im[0]!) ** 2;
    out[h] = (re[0]! - im[0]!) ** 2;
    for (let k = 1; k < h; k++) {
      const zr = re[k]!, zi = im[k]!;
      const cr = re[h - k]!, ci = -im[h - k]!;
      const er = (zr + cr) / 2, ei = (zi + ci) / 2;
      // (Z - conjZ) / 2i: (a + ib) / (2i) = (b - ia) / 2
      const dr = zr - cr, di = zi - ci;
      const or = di / 2, oi = -dr / 2;
      const xr = er + wr[k]! * or - wi[k]! * oi;
      const xi = ei + wr[k]! * oi + wi[k]! * or;
      out[k] = xr * xr + xi * xi;
    }
  }
}

const melOf = (hz: number): number => 1127 * Math.log(1 + hz / 700);

/**
 * MFCC extractor (see the module docstring for the conventions). Construction precomputes all
 * tables; {@link stream} objects share them.
 */
export class MfccExtractor implements FeatureExtractor {
  readonly dim: number;
  readonly hopS: number;
  readonly win: number;
  readonly hop: number;
  private readonly fft: RealFft;
  private readonly window: Float64Array;
  /** Per mel filter: first FFT bin and weights. */
  private readonly filters: { start: number; w: Float64Array }[];
  /** numCeps × numMel DCT-II rows for c1…cN. */
  private readonly dct: Float64Array;
  private readonly numMel: number;

  /** @throws RangeError on a non-positive sample rate or option. */
  constructor(readonly sampleRate: number, opts: MfccOptions = {}) {
    if (!(sampleRate > 0)) throw new RangeError(`invalid sample rate ${sampleRate}`);
    const { winS = 0.025, hopS = 0.01, numMel = 24, numCeps = 16 } = opts;
    if (!(winS > 0 && hopS > 0 && numMel > 1 && numCeps > 0 && numCeps < numMel)) throw new RangeError('invalid MFCC options');
    this.win = Math.round(winS * sampleRate);
    this.hop = Math.round(hopS * sampleRate);
    this.hopS = this.hop / sampleRate;
    this.dim = numCeps;
    this.numMel = numMel;
    let n = 4;
    while (n < this.win) n <<= 1;
    this.fft = new RealFft(n);
    this.window = new Float64Array(this.win);
    for (let i = 0; i < this.win; i++) this.window[i] = 0.54 - 0.46 * Math.cos((2 * Math.PI * i) / (this.win - 1));
    const highHz = Math.min(opts.highHz ?? 7600, sampleRate / 2);
    const lo = melOf(20), hi = melOf(highHz);
    const binHz = sampleRate / n;
    this.filters = [];
    for (let m = 0; m < numMel; m++) {
      const l = lo + ((hi - lo) * m) / (numMel + 1);
      const c = lo + ((hi - lo) * (m + 1)) / (numMel + 1);
      const r = lo + ((hi - lo) * (m + 2)) / (numMel + 1);
      const ws: number[] = [];
      let start = -1;
      for (let k = 0; k <= n / 2; k++) {
        const mel = melOf(k * binHz);
        const w = mel > l && mel < r ? (mel <= c ? (mel - l) / (c - l) : (r - mel) / (r - c)) : 0;
        if (w > 0) {
          if (start < 0) start = k;
          ws.push(w);
        } else if (start >= 0) break;
      }
      this.filters.push({ start: Math.max(start, 0), w: Float64Array.from(ws) });
    }
    this.dct = new Float64Array(numCeps * numMel);
    for (let c = 1; c <= numCeps; c++) {
      for (let m = 0; m < numMel; m++) this.dct[(c - 1) * numMel + m] = Math.sqrt(2 / numMel) * Math.cos((Math.PI * c * (m + 0.5)) / numMel);
    }
  }

  /** A fresh incremental stream over this extractor's tables. */
  stream(): FeatureStream {
    const self = this;
    const frame = new Float64Array(this.fft.n);
    const spec = new Float64Array(this.fft.n / 2 + 1);
    const logMel = new Float64Array(this.numMel);
    /** Unconsumed samples (float), from the start of the next frame. */
    let pending = new Float32Array(0);
    return {
      push(pcm: Int16Array | Float32Array): Frames {
        const scale = pcm instanceof Int16Array ? 1 / 32768 : 1;
        const buf = new Float32Array(pending.length + pcm.length);
        buf.set(pending);
        for (let i = 0; i < pcm.length; i++) buf[pending.length + i] = pcm[i]! * scale;
        const { win, hop, dim } = self;
        const count = buf.length >= win ? Math.floor((buf.length - win) / hop) + 1 : 0;
        const data = new Float32Array(count * dim);
        const energy = new Float32Array(count);
        for (let f = 0; f < count; f++) {
          const off = f * hop;
          let mean = 0;
          let e = 0;
          for (let i = 0; i < win; i++) {
            const s = buf[off + i]!;
            mean += s;
            e += s * s;
          }
          mean /= win;
          energy[f] = Math.log(e + 1e-10);
          let prev = buf[off]! - mean;
          for (let i = 0; i < win; i++) {
            const s = buf[off + i]! - mean;
            frame[i] = (s - 0.97 * prev) * self.window[i]!;
            prev = s;
          }
          frame.fill(0, win);
          self.fft.power(frame, spec);
          for (let m = 0; m < self.numMel; m++) {
            const { start, w } = self.filters[m]!;
            let acc = 0;
            for (let k = 0; k < w.length; k++) acc += w[k]! * spec[start + k]!;
            logMel[m] = Math.log(acc + 1e-10);
          }
          for (let c = 0; c < dim; c++) {
            let acc = 0;
            const row = c * self.numMel;
            for (let m = 0; m < self.numMel; m++) acc += self.dct[row + m]! * logMel[m]!;
            data[f * dim + c] = acc;
          }
        }
        pending = buf.slice(count * hop);
        return { count, dim, data, energy };
      },
    };
  }
}
