/**
 * Streaming sample-rate conversion with a polyphase Kaiser-windowed-sinc filter.
 *
 * Why our own rather than a library (e.g. the libsamplerate or speex WASM ports on npm): the gateway
 * needs a synchronous, per-stream converter with no WASM start-up, whose output does not depend on
 * how the input is chunked, for every client rate (protocols.md §1.3 `SampleRate` enum 8000…48000)
 * to the engine rate and back (TTS output). A windowed-sinc of this size is easy to verify by
 * measurement (test/audio_resample.test.ts) and runs 150–500× faster than real time on one core.
 *
 * Filter design (all rates): the low-pass is placed relative to `min(inRate, outRate)`:
 * passband to 0.43 × min (flat to ±0.001 dB, 6.88 kHz for a 16 kHz side), stopband from
 * 0.5 × min (the lower Nyquist, so nothing aliases or images into the audible band) with ≥ 80 dB
 * attenuation; the Kaiser formula gives the length (e.g. 216 taps at 48 kHz for 48 k → 16 k,
 * 72 taps per output sample for 16 k → 48 k). For a rate ratio L/M in lowest terms with
 * L ≤ 1024 every output phase has its own exact coefficient set (this covers all pairs of
 * the standard rates); otherwise 512 phases are tabulated and linearly interpolated.
 *
 * Timing: output sample `n` is the signal at input time `n × inRate / outRate` exactly (no group
 * delay is added), so timestamps computed on either side agree. The price is look-ahead: output
 * for time t is produced once input up to t + {@link Resampler.latencySamples} has arrived.
 */

const STOPBAND_DB = 80;
/** Passband edge as a fraction of the lower of the two rates. */
const PASSBAND_EDGE = 0.43;
/** Stopband edge as a fraction of the lower of the two rates (its Nyquist frequency). */
const STOPBAND_EDGE = 0.5;
const MAX_EXACT_PHASES = 1024;
const INTERPOLATED_PHASES = 512;
const KERNEL_CACHE_LIMIT = 64;

interface Kernel {
  /** Half the number of taps; each output reads input `base - half + 1 … base + half`. */
  half: number;
  /** Tabulated phases P; the table holds P + 1 rows (row P is row 0 shifted by one input sample). */
  phases: number;
  /** Row `p` holds the taps for fractional position `p / P`; each row sums to 1 (unit DC gain). */
  coeffs: Float64Array;
}

const kernelCache = new Map<string, Kernel>();

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Modified Bessel function of the first kind, order 0 (power series). */
function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  for (let k = 1; term > sum * 1e-12; k++) {
    term *= (x / (2 * k)) ** 2;
    sum += term;
  }
  return sum;
}

function designKernel(inRate: number, outRate: number, upFactor: number): Kernel {
  const minRate = Math.min(inRate, outRate);
  const cutoff = ((PASSBAND_EDGE + STOPBAND_EDGE) / 2) * (minRate / inRate); // cycles per input sample
  const transition = (STOPBAND_EDGE - PASSBAND_EDGE) * (minRate / inRate);
  const beta = 0.1102 * (STOPBAND_DB - 8.7);
  const halfLength = (STOPBAND_DB - 7.95) / (2.285 * 2 * Math.PI * transition) / 2; // input samples
  const half = Math.ceil(halfLength);
  const taps = 2 * half;
  const phases = upFactor <= MAX_EXACT_PHASES ? upFactor : INTERPOLATED_PHASES;
  const coeffs = new Float64Array((phases + 1) * taps);
  const i0Beta = besselI0(beta);
  const row = new Float64Array(taps);
  for (let p = 0; p <= phases; p++) {
    let sum = 0;
    for (let j = 0; j < taps; j++) {
      const tau = p / phases + half - 1 - j; // output time minus the time of input tap j
      const r = tau / halfLength;
      const window = Math.abs(r) < 1 ? besselI0(beta * Math.sqrt(1 - r * r)) / i0Beta : 0;
      const arg = Math.PI * 2 * cutoff * tau;
      row[j] = (arg === 0 ? 1 : Math.sin(arg) / arg) * window;
      sum += row[j]!;
    }
    for (let j = 0; j < taps; j++) coeffs[p * taps + j] = row[j]! / sum;
  }
  return { half, phases, coeffs };
}

function kernelFor(inRate: number, outRate: number, upFactor: number): Kernel {
  const key = `${inRate}:${outRate}`;
  let kernel = kernelCache.get(key);
  if (!kernel) {
    kernel = designKernel(inRate, outRate, upFactor);
    if (kernelCache.size >= KERNEL_CACHE_LIMIT) kernelCache.delete(kernelCache.keys().next().value!);
    kernelCache.set(key, kernel);
  }
  return kernel;
}

/**
 * A stateful mono int16 sample-rate converter for one stream (not thread-shared; instances are cheap,
 * coefficient tables are cached per rate pair).
 *
 * Chunk boundaries never change the output: feeding a signal in any split gives exactly the same
 * samples as one call. Over a whole stream, `process()` calls followed by `flush()` return
 * `ceil(inputLength × outRate / inRate)` samples. When `inRate === outRate` it is a pass-through.
 *
 * Serves shared/spec/protocols.md §1.3 / §2.2 / §4.1 (client `sample_rate` → engine rate) and
 * §1.5 / §3 (engine rate → TTS `sample_rate`).
 */
export class Resampler {
  /**
   * Look-ahead in **input** samples: output for input time t is emitted once input sample
   * `t + latencySamples` has been pushed (0 for pass-through). E.g. 108 at 48 kHz → 16 kHz (2.25 ms).
   */
  readonly latencySamples: number;

  private readonly kernel: Kernel | null;
  /** Rate ratio in lowest terms: output n sits at input time n × down / up. */
  private readonly up: number;
  private readonly down: number;
  /** Pending input; `buf[0]` is input sample index `bufStart` (negative indices are leading zeros). */
  private buf = new Float64Array(0);
  private bufLen = 0;
  private bufStart = 0;
  /** Position of the next output: input index `base` plus `frac / up` of a sample. */
  private base = 0;
  private frac = 0;
  private received = 0;
  private produced = 0;

  /**
   * @param inRate Input rate in Hz (positive integer).
   * @param outRate Output rate in Hz (positive integer).
   * @throws RangeError if a rate is not a positive integer.
   */
  constructor(
    readonly inRate: number,
    readonly outRate: number,
  ) {
    for (const rate of [inRate, outRate]) {
      if (!Number.isInteger(rate) || rate < 1) throw new RangeError(`invalid sample rate ${rate}`);
    }
    const g = gcd(inRate, outRate);
    this.up = outRate / g;
    this.down = inRate / g;
    this.kernel = inRate === outRate ? null : kernelFor(inRate, outRate, this.up);
    this.latencySamples = this.kernel?.half ?? 0;
    this.reset();
  }

  /**
   * Converts the next chunk of the stream.
   * @param x Input samples at `inRate` (any length, including 0).
   * @returns The output samples that became computable (possibly empty); `x` itself when passing through.
   */
  process(x: Int16Array): Int16Array {
    if (!this.kernel) return x;
    this.append(x, x.length);
    this.received += x.length;
    return this.drain(Infinity);
  }

  /**
   * Ends the stream: returns the remaining output (the last `latencySamples` of input, zero-padded)
   * and resets the converter, so the instance can start a new stream.
   * @returns The tail samples (empty when passing through).
   */
  flush(): Int16Array {
    if (!this.kernel) return new Int16Array(0);
    this.append(null, this.kernel.half);
    const total = Math.ceil((this.received * this.up) / this.down);
    const tail = this.drain(total - this.produced);
    this.reset();
    return tail;
  }

  private reset(): void {
    const half = this.kernel?.half ?? 0;
    this.bufStart = 1 - half;
    this.bufLen = Math.max(0, half - 1);
    this.buf = new Float64Array(Math.max(this.bufLen, 1024));
    this.base = 0;
    this.frac = 0;
    this.received = 0;
    this.produced = 0;
  }

  /** Appends `count` samples from `x`, or `count` zeros when `x` is null. */
  private append(x: Int16Array | null, count: number): void {
    if (this.bufLen + count > this.buf.length) {
      const grown = new Float64Array(Math.max(this.bufLen + count, this.buf.length * 2));
      grown.set(this.buf.subarray(0, this.bufLen));
      this.buf = grown;
    }
    if (x) this.buf.set(x, this.bufLen);
    else this.buf.fill(0, this.bufLen, this.bufLen + count);
    this.bufLen += count;
  }

  /** Computes up to `limit` outputs whose input window is complete, then drops consumed input. */
  private drain(limit: number): Int16Array {
    const { half, phases, coeffs } = this.kernel!;
    const taps = 2 * half;
    const { up, down, buf } = this;
    const end = this.bufStart + this.bufLen; // first input index not yet received
    const room = Math.max(0, Math.ceil(((end - half - this.base) * up - this.frac) / down));
    const out = new Int16Array(Math.min(room, limit));
    let { base, frac } = this;
    let n = 0;
    while (n < out.length && base + half < end) {
      const first = base - half + 1 - this.bufStart;
      let acc: number;
      if (phases === up) {
        let a0 = 0;
        let a1 = 0;
        for (let i = first, c = frac * taps, stop = first + taps; i < stop; i += 2, c += 2) {
          a0 += buf[i]! * coeffs[c]!;
          a1 += buf[i + 1]! * coeffs[c + 1]!;
        }
        acc = a0 + a1;
      } else {
        const pos = (frac * phases) / up;
        const p = Math.floor(pos);
        let a0 = 0;
        let a1 = 0;
        for (let j = 0, c = p * taps; j < taps; j++, c++) {
          const s = buf[first + j]!;
          a0 += s * coeffs[c]!;
          a1 += s * coeffs[c + taps]!;
        }
        acc = a0 + (pos - p) * (a1 - a0);
      }
      const v = Math.round(acc);
      out[n++] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
      frac += down;
      if (frac >= up) {
        base += Math.floor(frac / up);
        frac %= up;
      }
    }
    this.base = base;
    this.frac = frac;
    this.produced += n;
    const consumed = base - half + 1 - this.bufStart;
    if (consumed > 0) {
      buf.copyWithin(0, consumed, this.bufLen);
      this.bufLen -= consumed;
      this.bufStart += consumed;
    }
    return n === out.length ? out : out.subarray(0, n);
  }
}
