/**
 * The embedded TTS engines run for real (Debian `flite` and `espeak-ng` child processes): voices as
 * data, audio at the declared rate, speed honoured, Hindi, abort kills the child at once, failures
 * are `provider_error`, nothing is left running after shutdown. Plus the job limiter and the
 * streaming WAV reader they are built on.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { EspeakEngine, parseEspeakVoices } from '../src/engines/tts/espeak/index.js';
import { FliteEngine, FLITE_VOICES } from '../src/engines/tts/flite/index.js';
import { JobLimiter, WavPcmReader } from '../src/engines/tts/process.js';
import type { TtsEngine } from '../src/engines/tts/types.js';
import { encodeWav } from '../src/audio/wav.js';
import { VoxgateError } from '../src/util/errors.js';

const SENTENCE = 'The quick brown fox jumps over the lazy dog.';

/** Collect a synthesis into one PCM array. */
async function synth(e: TtsEngine, text: string, voice: string, speed = 1, signal?: AbortSignal): Promise<{ pcm: Int16Array; rate: number }> {
  const s = e.synthesize({ text, voice, speed }, signal);
  const parts: Int16Array[] = [];
  for await (const p of s) parts.push(p);
  const pcm = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) pcm.set(p, (o += p.length) - p.length);
  return { pcm, rate: s.sampleRate };
}

function rms(pcm: Int16Array): number {
  let s = 0;
  for (const v of pcm) s += v * v;
  return Math.sqrt(s / Math.max(1, pcm.length));
}

/** Engine processes descended from this test process (they run under the spawner helper) still alive. */
function liveChildren(): string[] {
  const rows = execFileSync('ps', ['-e', '-o', 'pid=,ppid=,comm='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .map(([pid, ppid, comm]) => ({ pid: Number(pid), ppid: Number(ppid), comm: comm ?? '' }));
  const mine = new Set([process.pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const r of rows) if (mine.has(r.ppid) && !mine.has(r.pid)) (mine.add(r.pid), (grew = true));
  }
  return rows.filter((r) => mine.has(r.pid) && (r.comm === 'flite' || r.comm === 'espeak-ng')).map((r) => r.comm);
}

async function until(fn: () => boolean, ms: number): Promise<boolean> {
  const t0 = Date.now();
  while (!fn()) {
    if (Date.now() - t0 > ms) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

describe('TTS engines (Debian child processes)', () => {
  const flite = new FliteEngine({ maxConcurrentJobs: 4, jobTimeoutMs: 20_000 });
  const espeak = new EspeakEngine({ maxConcurrentJobs: 4, jobTimeoutMs: 20_000 });
  before(async () => {
    await Promise.all([flite.init(), espeak.init()]);
  });
  after(async () => {
    await Promise.all([flite.shutdown(), espeak.shutdown()]);
  });

  it('flite: every listed voice speaks at its declared rate', async () => {
    assert.match(flite.version, /^flite-2\./);
    for (const v of FLITE_VOICES) {
      const { pcm, rate } = await synth(flite, SENTENCE, v.id);
      assert.equal(rate, v.sampleRate);
      const seconds = pcm.length / rate;
      assert.ok(seconds > 1.5 && seconds < 5, `${v.id}: ${seconds} s`);
      assert.ok(rms(pcm) > 500, `${v.id} is not silent`);
    }
  });

  it('espeak-ng: voices from --voices include Hindi and US English; Devanagari text is spoken', async () => {
    const ids = espeak.capabilities.voices.map((v) => v.id);
    assert.ok(ids.length > 100, `${ids.length} voices`);
    for (const id of ['hi', 'en-us', 'es', 'de', 'fr-fr']) assert.ok(ids.includes(id), id);
    assert.deepEqual(espeak.capabilities.voices.find((v) => v.id === 'en-us')!.languages, ['en-us', 'en']);
    assert.ok(espeak.capabilities.languages.includes('hi'));
    const { pcm, rate } = await synth(espeak, 'नमस्ते, आप कैसे हैं? मैं ठीक हूँ।', 'hi');
    assert.equal(rate, 22050);
    assert.ok(pcm.length / rate > 1, 'Hindi sentence is at least a second long');
    assert.ok(rms(pcm) > 500);
  });

  it('parses the espeak-ng voice listing (first of duplicate codes wins)', () => {
    const v = parseEspeakVoices(
      'Pty Language       Age/Gender VoiceName          File                 Other Languages\n' +
        ' 2  en-us           --/M      English_(America)  gmw/en-US            (en 3)\n' +
        ' 5  yue             --/F      Chinese_(Cantonese) sit/yue              (zh-yue 5)(zh 8)\n' +
        ' 5  yue             --/M      Chinese_(Cantonese_jyutping) sit/yue_jyut (zhy 5)\n',
    );
    assert.deepEqual(v, [
      { id: 'en-us', name: 'English (America)', languages: ['en-us', 'en'], gender: 'male', sampleRate: 22050 },
      { id: 'yue', name: 'Chinese (Cantonese)', languages: ['yue', 'zh-yue', 'zh'], gender: 'female', sampleRate: 22050 },
    ]);
  });

  it('speed is honoured (0.5×, 1×, 2×) by both engines', async () => {
    for (const [e, voice] of [
      [flite, 'kal16'],
      [espeak, 'en-us'],
    ] as const) {
      const d = async (speed: number) => {
        const r = await synth(e, SENTENCE, voice, speed);
        return r.pcm.length / r.rate;
      };
      const [slow, normal, fast] = [await d(0.5), await d(1), await d(2)];
      assert.ok(slow / normal > 1.6 && slow / normal < 2.4, `${e.id} 0.5×: ${slow} vs ${normal}`);
      assert.ok(normal / fast > 1.6 && normal / fast < 2.4, `${e.id} 2×: ${fast} vs ${normal}`);
    }
  });

  it('warm children: prepare() makes later jobs reuse a pre-started process; same audio as a cold start', async () => {
    const cold = await synth(flite, SENTENCE, 'slt');
    flite.prepare({ voice: 'slt', speed: 1 });
    await until(() => liveChildren().includes('flite'), 2000);
    const warm = await synth(flite, SENTENCE, 'slt');
    assert.equal(warm.pcm.length, cold.pcm.length, 'flite is deterministic: a warm child renders the same samples');
    assert.deepEqual(warm.pcm.subarray(0, 2000), cold.pcm.subarray(0, 2000));
  });

  it('aborting a job kills its child at once and frees the slot', async () => {
    const long = Array.from({ length: 40 }, () => SENTENCE).join(' ');
    const ctl = new AbortController();
    const s = espeak.synthesize({ text: long, voice: 'en-us', speed: 1 }, ctl.signal);
    const it = s[Symbol.asyncIterator]();
    const first = await it.next();
    assert.equal(first.done, false, 'audio streams before the whole text is rendered');
    ctl.abort();
    await assert.rejects(
      (async () => {
        for (;;) if ((await it.next()).done) break;
      })(),
      (e: Error) => e.name === 'AbortError',
    );
    assert.ok(await until(() => espeak.stats().activeJobs === 0, 2000), 'the slot is freed when the killed child is gone');
    const after = await synth(espeak, 'Still working.', 'en-us');
    assert.ok(after.pcm.length > 0, 'the engine is usable after an abort');
  });

  it('engine failures surface as provider_error, never as a crash', async () => {
    await assert.rejects(synth(espeak, 'hello', 'zz-no-such-voice'), (e: unknown) => e instanceof VoxgateError && e.code === 'provider_error' && /espeak-ng failed/.test(e.message));
    // flite falls back to its 8 kHz voice for an unknown name: caught by the rate check.
    await assert.rejects(synth(flite, 'hello', 'no-such-voice'), (e: unknown) => e instanceof VoxgateError && e.code === 'provider_error' && /8000 Hz/.test(e.message));
    const missing = new FliteEngine({ maxConcurrentJobs: 1, jobTimeoutMs: 1000, binary: 'voxgate-no-such-binary' });
    await assert.rejects(missing.init(), /install the Debian package "flite"/);
  });

  it('leaves no child process behind after shutdown', async () => {
    const e = new EspeakEngine({ maxConcurrentJobs: 2, jobTimeoutMs: 5000 });
    await e.init();
    e.prepare({ voice: 'de', speed: 1.5 });
    await until(() => liveChildren().length > 0, 2000);
    await e.shutdown();
    await flite.shutdown();
    await espeak.shutdown();
    assert.ok(await until(() => liveChildren().length === 0, 3000), `still running: ${liveChildren().join(', ')}`);
  });
});

describe('JobLimiter and WavPcmReader', () => {
  it('JobLimiter: FIFO slots, release is idempotent, aborting a waiter takes it out of the queue', async () => {
    const l = new JobLimiter(1);
    const r1 = await l.acquire();
    const order: number[] = [];
    const ctl = new AbortController();
    const p2 = l.acquire().then((r) => (order.push(2), r));
    const p3 = l.acquire(ctl.signal).then(
      () => order.push(3),
      (e: Error) => order.push(e.name === 'AbortError' ? -3 : 99),
    );
    const p4 = l.acquire().then((r) => (order.push(4), r));
    assert.equal(l.queued, 3);
    ctl.abort();
    await p3;
    r1();
    r1();
    (await p2)();
    (await p4)();
    assert.deepEqual(order, [-3, 2, 4]);
    assert.equal(l.active, 0);
    assert.equal(l.released, 3);
  });

  it('WavPcmReader: header split across chunks, odd byte carried, rejects non-PCM', () => {
    const samples = Int16Array.from({ length: 101 }, (_, i) => i * 300 - 15000);
    const wav = encodeWav(samples, 16000, 1);
    const r = new WavPcmReader();
    const out: number[] = [];
    for (let o = 0; o < wav.length; o += 7) out.push(...r.push(wav.subarray(o, o + 7)));
    assert.deepEqual(out, [...samples]);
    assert.equal(r.format?.sampleRate, 16000);
    assert.throws(() => new WavPcmReader().push(encodeWav(new Int16Array(4), 8000, 2)), /2 channels/);
    assert.throws(() => new WavPcmReader().push(Buffer.from('not a wav file at all, clearly')), /not a WAV stream/);
  });
});
