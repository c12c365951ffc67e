/**
 * Tests of src/audio/resample.ts: measured frequency response (passband gain, stopband / alias
 * attenuation, upsampling images), timing alignment, chunking invariance, lengths and throughput.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Resampler } from '../src/audio/resample.js';

const AMP = 16384; // −6 dBFS test tones

function tone(rate: number, freq: number, seconds: number, amp = AMP): Int16Array {
  return Int16Array.from({ length: Math.round(rate * seconds) }, (_, i) => Math.round(amp * Math.sin((2 * Math.PI * freq * i) / rate)));
}

function resampleAll(r: Resampler, x: Int16Array): Int16Array {
  const a = r.process(x);
  const b = r.flush();
  const out = new Int16Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Peak amplitude of the component at `freq` (Hz), by a Blackman-Harris windowed DFT over [from, to). */
function amplitudeAt(y: Int16Array, rate: number, freq: number, from: number, to: number): number {
  const n = to - from;
  let re = 0;
  let im = 0;
  let wsum = 0;
  for (let i = 0; i < n; i++) {
    const p = (2 * Math.PI * i) / (n - 1);
    const w = 0.35875 - 0.48829 * Math.cos(p) + 0.14128 * Math.cos(2 * p) - 0.01168 * Math.cos(3 * p);
    const ph = (2 * Math.PI * freq * (from + i)) / rate;
    re += w * y[from + i]! * Math.cos(ph);
    im -= w * y[from + i]! * Math.sin(ph);
    wsum += w;
  }
  return (2 * Math.hypot(re, im)) / wsum;
}

function rms(y: Int16Array, from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i++) s += y[i]! ** 2;
  return Math.sqrt(s / (to - from));
}

const db = (ratio: number): number => 20 * Math.log10(ratio);

/** Resamples a 1 s tone and returns the output with its steady-state range (edges dropped). */
function run(inRate: number, outRate: number, freq: number): { y: Int16Array; from: number; to: number } {
  const y = resampleAll(new Resampler(inRate, outRate), tone(inRate, freq, 1));
  const margin = Math.round(outRate * 0.05);
  return { y, from: margin, to: y.length - margin };
}

function gainDb(inRate: number, outRate: number, freq: number): number {
  const { y, from, to } = run(inRate, outRate, freq);
  return db(amplitudeAt(y, outRate, freq, from, to) / AMP);
}

/** Everything left of a tone the output rate cannot represent, relative to the input tone (dB). */
function residualDb(inRate: number, outRate: number, freq: number): number {
  const { y, from, to } = run(inRate, outRate, freq);
  return db(rms(y, from, to) / (AMP / Math.SQRT2));
}

const CLIENT_RATES = [8000, 16000, 22050, 24000, 32000, 44100, 48000];

for (const inRate of CLIENT_RATES) {
  test(`${inRate} → 16000: passband gain at 1 kHz within ±0.5 dB and 6 kHz within ±1 dB`, (t) => {
    const g1 = gainDb(inRate, 16000, 1000);
    assert.ok(Math.abs(g1) <= 0.5, `1 kHz gain ${g1} dB`);
    if (inRate >= 16000) {
      const g6 = gainDb(inRate, 16000, 6000);
      assert.ok(Math.abs(g6) <= 1, `6 kHz gain ${g6} dB`);
      t.diagnostic(`gain 1 kHz ${g1.toFixed(4)} dB, 6 kHz ${g6.toFixed(4)} dB`);
    } else {
      t.diagnostic(`gain 1 kHz ${g1.toFixed(4)} dB`);
    }
  });
}

for (const inRate of CLIENT_RATES.filter((r) => r > 16000)) {
  // 12 kHz where the input can carry it, else 0.45 × inRate (22050: 9922 Hz, 24000: 10800 Hz).
  const freq = Math.min(12000, Math.floor(0.45 * inRate));
  test(`${inRate} → 16000: a ${freq} Hz tone (above the output Nyquist) is attenuated ≥ 50 dB`, (t) => {
    const att = residualDb(inRate, 16000, freq);
    t.diagnostic(`residual of ${freq} Hz: ${att.toFixed(1)} dB`);
    assert.ok(att <= -50, `residual ${att} dB`);
  });
}

test('48000 → 16000 and 44100 → 16000 across the band: flat passband, closed stopband', (t) => {
  for (const inRate of [48000, 44100]) {
    const pass = [100, 1000, 3000, 5000, 6000, 6800].map((f) => gainDb(inRate, 16000, f));
    const stop = [8000, 8500, 10000, 12000, 15000, 20000].map((f) => residualDb(inRate, 16000, f));
    t.diagnostic(`${inRate}: passband ${pass.map((g) => g.toFixed(3)).join(' ')} dB; stopband ${stop.map((g) => g.toFixed(1)).join(' ')} dB`);
    for (const g of pass) assert.ok(Math.abs(g) <= 0.1);
    for (const a of stop) assert.ok(a <= -70);
  }
});

for (const [inRate, outRate] of [
  [8000, 16000],
  [16000, 48000],
  [22050, 48000],
] as const) {
  test(`${inRate} → ${outRate} upsampling: no image above ${inRate / 2} Hz stronger than −40 dB`, (t) => {
    for (const freq of [1000, Math.round(0.4 * inRate)]) {
      const { y, from, to } = run(inRate, outRate, freq);
      const level = amplitudeAt(y, outRate, freq, from, to);
      // Scan every bin of a 4096-sample analysis (Blackman-Harris main lobe ±4 bins) above the input Nyquist.
      const mid = (from + to) >> 1;
      const bin = outRate / 4096;
      let worst = -Infinity;
      for (let f = inRate * 0.53; f < outRate / 2; f += bin) worst = Math.max(worst, db(amplitudeAt(y, outRate, f, mid - 2048, mid + 2048) / level));
      const mirror = db(amplitudeAt(y, outRate, inRate - freq, from, to) / level);
      t.diagnostic(`${freq} Hz tone: gain ${db(level / AMP).toFixed(4)} dB, image at ${inRate - freq} Hz ${mirror.toFixed(1)} dB, worst component above ${Math.round(inRate * 0.53)} Hz ${worst.toFixed(1)} dB`);
      assert.ok(Math.abs(db(level / AMP)) <= 0.5);
      assert.ok(mirror <= -40 && worst <= -40);
    }
  });
}

test('output is time-aligned: sample n is the signal at input time n × inRate / outRate', () => {
  for (const [inRate, outRate] of [
    [48000, 16000],
    [44100, 16000],
    [8000, 16000],
  ] as const) {
    const { y, from, to } = run(inRate, outRate, 1000);
    let err = 0;
    for (let n = from; n < to; n++) err += (y[n]! - AMP * Math.sin((2 * Math.PI * 1000 * n) / outRate)) ** 2;
    const errDb = db(Math.sqrt(err / (to - from)) / (AMP / Math.SQRT2));
    assert.ok(errDb <= -60, `${inRate} → ${outRate}: error vs ideal ${errDb} dB`);
  }
});

/** A deterministic noise-plus-tones test signal. */
function testSignal(rate: number, seconds: number): Int16Array {
  let seed = 12345;
  return Int16Array.from({ length: Math.round(rate * seconds) }, (_, i) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const noise = ((seed >>> 16) / 65536 - 0.5) * 8000;
    return Math.round(noise + 9000 * Math.sin(i * 0.05) + 6000 * Math.sin(i * 1.3));
  });
}

for (const [inRate, outRate] of [
  [44100, 16000],
  [48000, 16000],
  [8000, 16000],
  [16000, 24000],
  [44056, 16000], // ratio 2000/5507: interpolated phases
] as const) {
  test(`${inRate} → ${outRate}: random chunking gives the same samples (±1 LSB) and length ceil(n × out / in)`, () => {
    const x = testSignal(inRate, 0.7);
    const whole = resampleAll(new Resampler(inRate, outRate), x);
    assert.equal(whole.length, Math.ceil((x.length * outRate) / inRate));
    const r = new Resampler(inRate, outRate);
    let rnd = 99;
    const parts: Int16Array[] = [];
    for (let i = 0; i < x.length; ) {
      rnd = (rnd * 69069 + 1) >>> 0;
      const n = [0, 1, 2, 7, 160, 441, 1000, 4096][rnd % 8]!;
      parts.push(r.process(x.subarray(i, i + n)));
      i += n;
    }
    parts.push(r.flush());
    const chunked = Int16Array.from(parts.flatMap((p) => [...p]));
    assert.equal(chunked.length, whole.length);
    for (let i = 0; i < whole.length; i++) assert.ok(Math.abs(chunked[i]! - whole[i]!) <= 1, `sample ${i}`);
  });
}

test('an unusual rate pair (interpolated phases) still meets the response targets', () => {
  assert.ok(Math.abs(gainDb(44056, 16000, 1000)) <= 0.5);
  assert.ok(Math.abs(gainDb(44056, 16000, 6000)) <= 1);
  assert.ok(residualDb(44056, 16000, 12000) <= -50);
  assert.ok(Math.abs(gainDb(11025, 16001, 3000)) <= 0.5);
});

test('flush() ends the stream and resets: a reused instance matches a fresh one', () => {
  const x = testSignal(22050, 0.3);
  const r = new Resampler(22050, 16000);
  const first = resampleAll(r, x);
  assert.deepEqual(resampleAll(r, x), first);
  assert.deepEqual(r.flush(), new Int16Array(0));
});

test('equal rates pass through unchanged with no latency', () => {
  const r = new Resampler(16000, 16000);
  const x = Int16Array.of(1, 2, 3);
  assert.equal(r.process(x), x);
  assert.equal(r.flush().length, 0);
  assert.equal(r.latencySamples, 0);
});

test('latencySamples bounds the look-ahead: output for input time t appears once t + latency has arrived', () => {
  const r = new Resampler(48000, 16000);
  assert.ok(r.latencySamples > 0 && r.latencySamples < 200);
  // Output n sits at input time 3n; it needs input samples up to index 3n + latency.
  assert.equal(r.process(new Int16Array(3000 + r.latencySamples)).length, 1000); // times 0 … 2997
  assert.equal(r.process(new Int16Array(1)).length, 1); // time 3000
});

test('invalid rates are rejected', () => {
  for (const [a, b] of [
    [0, 16000],
    [16000, -1],
    [44100.5, 16000],
    [NaN, 16000],
  ]) {
    assert.throws(() => new Resampler(a!, b!), RangeError);
  }
});

test('throughput (streaming 100 ms chunks) is far above real time', (t) => {
  for (const [inRate, outRate] of [
    [48000, 16000],
    [44100, 16000],
    [8000, 16000],
    [16000, 48000],
  ] as const) {
    const x = testSignal(inRate, 10);
    const r = new Resampler(inRate, outRate);
    const step = inRate / 10;
    const t0 = performance.now();
    for (let i = 0; i < x.length; i += step) r.process(x.subarray(i, i + step));
    r.flush();
    const seconds = (performance.now() - t0) / 1000;
    const realtime = 10 / seconds;
    t.diagnostic(`${inRate} → ${outRate}: ${(x.length / seconds / 1e6).toFixed(2)} M input samples/s, ${realtime.toFixed(0)}× real time`);
    assert.ok(realtime > 20, `${inRate} → ${outRate} only ${realtime}× real time`);
  }
});
