/**
 * Tests of src/audio/vad.ts: the pure Endpointer on synthetic flag sequences, and SileroVad /
 * VadPool on real speech padded with digital silence or low-level noise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import { int16ToFloat32 } from '../src/audio/pcm.js';
import {
  Endpointer,
  SileroVad,
  sileroModelPath,
  VAD_SAMPLE_RATE,
  VAD_WINDOW_SAMPLES,
  VadPool,
  type EndpointEvent,
} from '../src/audio/vad.js';
import { readWavFile } from '../src/audio/wav.js';
import { packageRoot } from '../src/util/paths.js';

const SHARED = path.resolve(packageRoot(), '../shared');
const W = VAD_WINDOW_SAMPLES;

// ---------------------------------------------------------------- Endpointer (pure)

/** Feeds a flag string ('1' speech, '0' silence), one 512-sample window per character. */
function feed(ep: Endpointer, flags: string, startWindow = 0): { window: number; event: EndpointEvent }[] {
  const out: { window: number; event: EndpointEvent }[] = [];
  [...flags].forEach((f, i) => {
    for (const event of ep.push(f === '1', (startWindow + i + 1) * W)) out.push({ window: startWindow + i, event });
  });
  return out;
}

/** 16 kHz, 512-sample windows: hangover 160 ms = 2560 samples = 5 windows; onset delay 160 ms. */
const base = { sampleRate: 16000, vadHangoverMs: 160, vadOnsetDelayMs: 160 };

test('Endpointer: one speech_start at trigger minus onset delay, one endpoint after the silence', () => {
  const ep = new Endpointer({ ...base, endpointingMs: 300 });
  // 10 silent windows, 20 speech windows (trigger at end of window 10 = sample 5632), 30 silent.
  const events = feed(ep, '0'.repeat(10) + '1'.repeat(20) + '0'.repeat(30));
  const offEnd = 31 * W; // the VAD turned off at the end of window 30
  const lastSpeech = offEnd - 2560;
  // 300 ms = 4800 samples after lastSpeech (13312): 18112, inside window 35 (17920 … 18432).
  assert.deepEqual(events, [
    { window: 10, event: { type: 'speech_start', sample: 11 * W - 2560 } },
    { window: 35, event: { type: 'endpoint', sample: lastSpeech + 4800, lastSpeechSample: lastSpeech } },
  ]);
});

test('Endpointer: a pause shorter than endpointing continues the utterance', () => {
  const ep = new Endpointer({ ...base, endpointingMs: 500 });
  // VAD off for 8 windows (256 ms flag-off + 160 ms hangover = 416 ms < 500 ms), then speech again.
  const events = feed(ep, '1'.repeat(10) + '0'.repeat(8) + '1'.repeat(10) + '0'.repeat(40));
  assert.deepEqual(
    events.map((e) => e.event.type),
    ['speech_start', 'endpoint'],
  );
  const end = events[1]!.event as Extract<EndpointEvent, { type: 'endpoint' }>;
  assert.equal(end.lastSpeechSample, 29 * W - 2560); // the VAD turned off again at the end of window 28
});

test('Endpointer: pause fires once per silence stretch before the endpoint, and again after resumed speech', () => {
  const ep = new Endpointer({ ...base, endpointingMs: 500, pauseMs: 200 });
  // Off for 8 windows (416 ms estimated silence < 500): a pause but no endpoint; speech resumes; then silence to the end.
  const events = feed(ep, '1'.repeat(10) + '0'.repeat(8) + '1'.repeat(10) + '0'.repeat(40));
  assert.deepEqual(
    events.map((e) => e.event.type),
    ['speech_start', 'pause', 'pause', 'endpoint'],
  );
  const [, p1, p2, end] = events.map((e) => e.event) as Extract<EndpointEvent, { type: 'pause' | 'endpoint' }>[];
  // The VAD turned off at the end of window 10: estimated silence began 160 ms earlier; the pause is 200 ms after that.
  assert.equal(p1!.lastSpeechSample, 11 * W - 2560);
  assert.equal(p1!.sample, 11 * W - 2560 + 3200);
  assert.equal(p2!.lastSpeechSample, end!.lastSpeechSample);
  assert.ok(p2!.sample < end!.sample);
  // Without pauseMs there are no pause events.
  assert.deepEqual(
    feed(new Endpointer({ ...base, endpointingMs: 500 }), '1'.repeat(10) + '0'.repeat(40)).map((e) => e.event.type),
    ['speech_start', 'endpoint'],
  );
});

test('Endpointer: endpointingMs null never ends an utterance; speech_start stays once', () => {
  const ep = new Endpointer({ ...base, endpointingMs: null });
  const events = feed(ep, ('1'.repeat(10) + '0'.repeat(200)).repeat(3));
  assert.deepEqual(
    events.map((e) => e.event.type),
    ['speech_start'],
  );
});

test('Endpointer: after an endpoint the next speech is a new utterance, onset not before the endpoint', () => {
  const ep = new Endpointer({ ...base, endpointingMs: 0 });
  // endpointing 0 fires on the off window itself; speech resumes 2 windows later.
  const events = feed(ep, '1'.repeat(5) + '0' + '00' + '1'.repeat(5) + '0');
  assert.deepEqual(
    events.map((e) => [e.window, e.event.type]),
    [
      [0, 'speech_start'],
      [5, 'endpoint'],
      [8, 'speech_start'],
      [13, 'endpoint'],
    ],
  );
  const first = events[0]!.event;
  assert.equal(first.sample, 0); // clamped: the trigger came earlier than the onset delay
  const second = events[2]!.event;
  assert.equal(second.sample, 6 * W); // 9 × 512 − 2560 = 2048 would precede the endpoint at window 5
  const firstEnd = events[1]!.event as Extract<EndpointEvent, { type: 'endpoint' }>;
  assert.equal(firstEnd.sample, firstEnd.lastSpeechSample);
});

test('Endpointer: endpointing shorter than the hangover fires as soon as the VAD turns off', () => {
  const ep = new Endpointer({ ...base, endpointingMs: 10 });
  const events = feed(ep, '0'.repeat(10) + '1'.repeat(20) + '0');
  const end = events.at(-1)!;
  assert.equal(end.window, 30);
  assert.deepEqual(end.event, { type: 'endpoint', sample: 31 * W - 2560 + 160, lastSpeechSample: 31 * W - 2560 });
});

test('Endpointer: reset() starts a new utterance cycle; ongoing speech restarts at the reset point', () => {
  const ep = new Endpointer({ ...base, endpointingMs: 300 });
  assert.equal(feed(ep, '1'.repeat(20)).length, 1);
  ep.reset(); // e.g. client finalize while the VAD is still in speech
  const during = feed(ep, '1'.repeat(5), 20);
  assert.deepEqual(during, [{ window: 20, event: { type: 'speech_start', sample: 20 * W } }]);
  ep.reset();
  const afterSilence = feed(ep, '0'.repeat(20) + '1', 25);
  assert.deepEqual(afterSilence, [{ window: 45, event: { type: 'speech_start', sample: 46 * W - 2560 } }]);
});

test('Endpointer: rejects time going backwards and invalid options', () => {
  const ep = new Endpointer({ ...base, endpointingMs: 300 });
  ep.push(false, 1024);
  assert.throws(() => ep.push(false, 512), RangeError);
  assert.throws(() => new Endpointer({ ...base, sampleRate: 0, endpointingMs: 300 }), RangeError);
  assert.throws(() => new Endpointer({ ...base, endpointingMs: -1 }), RangeError);
});

test('Endpointer defaults its onset delay to that of a default SileroVad', () => {
  const ep = new Endpointer({ sampleRate: 16000, endpointingMs: 300, vadHangoverMs: 160 });
  assert.deepEqual(ep.push(true, 10 * W), [{ type: 'speech_start', sample: 10 * W - 2560 }]);
});

// ---------------------------------------------------------------- SileroVad on real audio

const PAD = VAD_SAMPLE_RATE; // 1 s

/** The clip with 1 s of padding each side, plus Gaussian noise (dBFS RMS) everywhere when given. */
async function padded(name: string, noiseDbfs: number | null): Promise<{ x: Float32Array; speechEnd: number }> {
  const wav = await readWavFile(path.join(SHARED, 'data/asr_en', name));
  assert.equal(wav.sampleRate, VAD_SAMPLE_RATE);
  const x = new Float32Array(wav.samples.length + 2 * PAD);
  x.set(int16ToFloat32(wav.samples), PAD);
  if (noiseDbfs !== null) {
    const sigma = 10 ** (noiseDbfs / 20);
    let seed = 42;
    const uniform = (): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return (seed + 1) / 4294967297;
    };
    for (let i = 0; i < x.length; i++) x[i]! += sigma * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  }
  return { x, speechEnd: PAD + wav.samples.length };
}

/** Runs the detector window by window; returns the flags and the mean cost per window (ms). */
function detect(vad: SileroVad, x: Float32Array): { flags: boolean[]; msPerWindow: number } {
  const flags: boolean[] = [];
  const t0 = performance.now();
  for (let i = 0; i + W <= x.length; i += W) flags.push(vad.acceptWindow(x.subarray(i, i + W)));
  return { flags, msPerWindow: (performance.now() - t0) / flags.length };
}

for (const name of ['en_cmu_goforward.wav', 'en_ls_1272-128104-0000.wav']) {
  for (const noise of [null, -50] as const) {
    const label = noise === null ? 'digital silence' : `${noise} dBFS white noise`;
    test(`SileroVad + Endpointer on ${name} padded with 1 s of ${label}`, async (t) => {
      const { x, speechEnd } = await padded(name, noise);
      const vad = new SileroVad();
      const { flags, msPerWindow } = detect(vad, x);
      const on = flags.flatMap((f, i) => (f ? [i] : []));
      assert.ok(on.length > 0, 'speech detected');
      const firstOnEnd = (on[0]! + 1) * W;
      const lastOnEnd = (on.at(-1)! + 1) * W;
      // Nothing in the leading padding; nothing in the trailing padding beyond the VAD's own hangover.
      assert.ok(on[0]! * W >= PAD, `detection in the leading padding at ${on[0]! * W}`);
      const hangover = (vad.hangoverMs * VAD_SAMPLE_RATE) / 1000;
      assert.ok(lastOnEnd <= speechEnd + hangover, `detection ${lastOnEnd - speechEnd} samples into the trailing padding`);

      const ep = new Endpointer({ sampleRate: VAD_SAMPLE_RATE, endpointingMs: 300, vadHangoverMs: vad.hangoverMs, vadOnsetDelayMs: vad.onsetDelayMs });
      const events = flags.flatMap((f, i) => ep.push(f, (i + 1) * W).map((e) => ({ ...e, at: (i + 1) * W })));
      const endpoints = events.filter((e) => e.type === 'endpoint');
      assert.equal(endpoints.length, 1, JSON.stringify(events));
      assert.equal(events.filter((e) => e.type === 'speech_start').length, 1);
      const start = events[0]!;
      const end = endpoints[0]! as Extract<EndpointEvent, { type: 'endpoint' }> & { at: number };
      assert.ok(start.type === 'speech_start' && start.sample >= PAD - W && start.sample < speechEnd);
      assert.ok(end.lastSpeechSample > start.sample && end.lastSpeechSample <= speechEnd, 'end of speech inside the clip');
      assert.ok(end.at >= lastOnEnd, 'endpoint after the last speech window');
      const ms = (samples: number): string => ((samples * 1000) / VAD_SAMPLE_RATE).toFixed(0);
      t.diagnostic(
        `clip ${ms(PAD)}–${ms(speechEnd)} ms; VAD on ${ms(firstOnEnd)} ms (+${ms(firstOnEnd - PAD)} after padding end), ` +
          `off ${ms(lastOnEnd)} ms (${ms(lastOnEnd - speechEnd)} vs clip end); speech_start ${ms(start.sample)} ms, ` +
          `lastSpeech ${ms(end.lastSpeechSample)} ms, endpoint ${ms(end.sample)} ms (reported at ${ms(end.at)} ms); ` +
          `${(msPerWindow * 1000).toFixed(0)} µs per 32 ms window`,
      );
      assert.ok(msPerWindow < 5, `${msPerWindow} ms per window`);
    });
  }
}

test('SileroVad: reset() reproduces a fresh detector exactly', async () => {
  const { x } = await padded('en_cmu_goforward.wav', null);
  const vad = new SileroVad();
  const first = detect(vad, x).flags;
  vad.reset();
  assert.deepEqual(detect(vad, x).flags, first);
  assert.deepEqual(detect(new SileroVad(), x).flags, first);
});

test('SileroVad: long continuous speech keeps one detection run across the buffer flushes', async () => {
  // 12 s of four overlapped talkers (babble) has no pauses, so the detector stays in speech past the 5 s flush.
  const names = ['en_ls_2412-153948-0000.wav', 'en_jfk_inaugural_excerpt.wav', 'en_ls_61-70968-0000.wav', 'en_ls_1272-128104-0000.wav'];
  const n = 12 * VAD_SAMPLE_RATE;
  const x = new Float32Array(n);
  for (const [k, name] of names.entries()) {
    const s = int16ToFloat32((await readWavFile(path.join(SHARED, 'data/asr_en', name))).samples);
    for (let i = 0, j = k * 7919; i < n; i++, j++) x[i]! += 0.4 * s[j % s.length]!;
  }
  const ours = detect(new SileroVad(), x).flags;
  // Reference: sherpa's Vad with a buffer large enough to never need a flush.
  const sherpa = createRequire(import.meta.url)('sherpa-onnx-node');
  const ref = new sherpa.Vad(
    { sileroVad: { model: sileroModelPath(), threshold: 0.5, minSpeechDuration: 0.1, minSilenceDuration: 0.1, windowSize: W, maxSpeechDuration: 3600 }, sampleRate: 16000, numThreads: 1, debug: false },
    30,
  );
  const refFlags: boolean[] = [];
  for (let i = 0; i + W <= n; i += W) {
    ref.acceptWaveform(x.subarray(i, i + W));
    refFlags.push(ref.isDetected());
  }
  const longestRun = Math.max(...ours.join('').replaceAll('false', '0').replaceAll('true', '1').split('0').map((r) => r.length));
  assert.ok(longestRun * W > 6 * VAD_SAMPLE_RATE, `longest speech run only ${longestRun} windows`);
  const differing = ours.filter((f, i) => f !== refFlags[i]).length;
  assert.ok(differing <= 3, `${differing} windows differ from the unflushed reference`);
});

test('SileroVad: the npm model and shared/models Silero agree on real speech', async () => {
  const { x } = await padded('en_ls_1272-128104-0000.wav', null);
  const ours = detect(new SileroVad(), x).flags;
  const theirs = detect(new SileroVad({ modelPath: path.join(SHARED, 'models/silero_vad/silero_vad.onnx') }), x).flags;
  const differing = ours.filter((f, i) => f !== theirs[i]).length;
  assert.ok(differing <= ours.length * 0.05, `${differing}/${ours.length} windows differ`);
});

test('SileroVad: nominal delays follow the min-speech / min-silence settings; bad input throws', () => {
  const vad = new SileroVad({ minSpeechMs: 250, minSilenceMs: 200 });
  assert.equal(vad.onsetDelayMs, 288); // ceil(4000 / 512) + 1 = 9 windows
  assert.equal(vad.hangoverMs, 256); // ceil(3200 / 512) + 1 = 8 windows
  assert.throws(() => vad.acceptWindow(new Float32Array(480)), RangeError);
  assert.throws(() => new SileroVad({ threshold: 1.5 }), RangeError);
  assert.ok(sileroModelPath().endsWith(path.join('@ricky0123', 'vad-web', 'dist', 'silero_vad_v5.onnx')));
});

test('VadPool: acquire/release/warm/stats reuse reset detectors', async () => {
  const pool = new VadPool({ maxIdle: 2 });
  const t0 = performance.now();
  pool.warm(2);
  const warmMs = (performance.now() - t0) / 2;
  assert.deepEqual(pool.stats(), { idle: 2, inUse: 0, created: 2 });
  const a = pool.acquire();
  const b = pool.acquire();
  const c = pool.acquire();
  assert.deepEqual(pool.stats(), { idle: 0, inUse: 3, created: 3 });

  const { x } = await padded('en_cmu_goforward.wav', null);
  const fresh = detect(a, x.subarray(0, 40 * W)).flags;
  detect(b, x); // leave b mid-stream state, then recycle it
  pool.release(b);
  const again = pool.acquire();
  assert.equal(again, b);
  assert.deepEqual(detect(again, x.subarray(0, 40 * W)).flags, fresh);

  pool.release(a);
  pool.release(c);
  pool.release(again); // over maxIdle: dropped
  assert.deepEqual(pool.stats(), { idle: 2, inUse: 0, created: 3 });
  assert.throws(() => pool.release(a), /not acquired/);
  pool.shutdown();
  assert.equal(pool.stats().idle, 0);
  assert.ok(warmMs < 1000, `construction took ${warmMs} ms`);
});
