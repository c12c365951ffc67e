/**
 * Parallel lanes for pre-recorded transcription (src/transcribe/lanes.ts) with the real engine: a
 * ~50 s file made of known clips is transcribed on 1 and on 2 engine streams; with 2 the file is cut
 * at pauses into segments decoded concurrently, and every word must land back on the file's clock
 * (in order, inside the clip it was spoken in) with the same words recognised as on one stream.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { transcribeFile } from '../src/transcribe/pipeline.js';
import { SEGMENT_SECONDS } from '../src/transcribe/lanes.js';
import { loadClip, silence, startTestServer, type TestServer } from './helpers.js';

/** Clips in file order with a word each reliably recognises (shared/data/manifest.tsv references). */
const PARTS = [
  { clip: 'asr_en/en_cmu_goforward.wav', word: 'forward' },
  { clip: 'asr_en/en_ls_1272-128104-0000.wav', word: 'gospel' },
  { clip: 'asr_en/en_ls_2412-153948-0000.wav', word: 'narrative' },
  { clip: 'asr_en/en_cmu_goforward.wav', word: 'forward' },
  { clip: 'asr_en/en_ls_1272-128104-0000.wav', word: 'middle' },
  { clip: 'asr_en/en_ls_2412-153948-0000.wav', word: 'country' },
  { clip: 'asr_en/en_ls_1272-128104-0000.wav', word: 'gospel' },
];

describe('parallel lanes', () => {
  let s: TestServer;
  let wav: Buffer;
  const spans: { start: number; end: number; word: string }[] = [];
  before(async () => {
    s = await startTestServer();
    const parts: Buffer[] = [];
    let t = 0;
    for (const p of PARTS) {
      const c = await loadClip(p.clip);
      parts.push(c.bytes, silence(1000));
      spans.push({ start: t, end: t + c.seconds, word: p.word });
      t += c.seconds + 1;
    }
    wav = Buffer.concat(parts);
    assert.ok(t > 3 * SEGMENT_SECONDS, `the file (${t.toFixed(1)} s) spans several segments`);
  });
  after(async () => {
    await s.cleanup();
  });

  const run = (parallel: number) =>
    transcribeFile({
      engine: s.engines.get('pocketsphinx')!,
      input: Readable.from([wav.subarray(0, wav.length >> 1), wav.subarray(wav.length >> 1)]),
      encoding: 'linear16',
      sampleRate: 16000,
      multichannel: false,
      language: 'en',
      maxBytes: 1 << 30,
      parallel,
    });

  it('2 lanes: words in file order, each clip\'s key word inside that clip, same words as 1 lane', async () => {
    const one = await run(1);
    const two = await run(2);
    const words = (t: typeof one) => t.channels[0]!.finals.flatMap((f) => f.words ?? []);
    const w2 = words(two);
    for (let i = 1; i < w2.length; i++) assert.ok(w2[i]!.start >= w2[i - 1]!.start - 1e-6, `word ${i} out of order: ${JSON.stringify(w2.slice(i - 1, i + 1))}`);
    assert.ok(w2.at(-1)!.end <= spans.at(-1)!.end + 0.2);
    for (const sp of spans) {
      const hit = w2.find((w) => w.word === sp.word && w.start >= sp.start - 0.3 && w.end <= sp.end + 0.3);
      assert.ok(hit, `"${sp.word}" within ${sp.start.toFixed(1)}–${sp.end.toFixed(1)} s; got ${w2.filter((w) => w.word === sp.word).map((w) => w.start.toFixed(2)).join(', ')}`);
    }
    // Cutting at pauses must not change what is recognised much. Not identical: PocketSphinx's
    // cepstral mean normalisation adapts to the audio each stream has heard, so a lane that starts
    // mid-file hears the next words slightly differently (measured: the same WER over 380 s).
    const a = words(one).map((w) => w.word);
    const b = w2.map((w) => w.word);
    const common = lcs(a, b);
    assert.ok(common / Math.max(a.length, b.length) >= 0.8, `1 lane: ${a.join(' ')}\n2 lanes: ${b.join(' ')}`);
    assert.equal(two.durationSeconds, one.durationSeconds);
  });
});

/** Length of the longest common subsequence. */
function lcs(a: string[], b: string[]): number {
  let prev = new Array<number>(b.length + 1).fill(0);
  for (const x of a) {
    const cur = [0];
    for (let j = 1; j <= b.length; j++) cur[j] = x === b[j - 1] ? prev[j - 1]! + 1 : Math.max(prev[j]!, cur[j - 1]!);
    prev = cur;
  }
  return prev[b.length]!;
}
