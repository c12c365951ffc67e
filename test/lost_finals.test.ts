/**
 * Issue 9 §1 "Finals are lost": a final never carries fewer words than its partials showed, and every
 * utterance with partials ends in a final — swept over the asr_en clips × leading silence ×
 * endpointing (a fast subset of bench/finals.ts), through the real PocketSphinx engine, plus
 * real-time runs through a real server over WebSocket (`/v1/listen`, closed with `CloseStream`).
 *
 * Before the fix, PocketSphinx's lattice construction failed for some utterances (its end-node search
 * picks a `</s>` exit it never made a lattice node for) and the decoder answered an empty final:
 * `en_cmu_cards_002` ("for queen of clubs") and `en_commonvoice_22058267` lost every word.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { PocketSphinxEngine } from '../src/engines/stt/pocketsphinx/index.js';
import type { SttFinal, SttPartial } from '../src/engines/stt/types.js';
import { judgeRun, padClip, runEngineCase, type RunOutcome, type SweepCase } from '../bench/lib/finals_sweep.js';
import { openSocket, sharedData, startTestServer, type TestServer } from './helpers.js';
import { readSharedWavSync } from './paths.js';

const clips = readdirSync(sharedData('asr_en'))
  .filter((f) => f.endsWith('.wav'))
  .sort()
  .map((f) => ({ name: f.replace(/\.wav$/, ''), pcm: readSharedWavSync(`asr_en/${f}`) }));

const describeRuns = (runs: RunOutcome[]): string =>
  runs.map((r) => `${r.clip} lead=${r.leadMs} ep=${r.endpointingMs} ${r.pace}: ${r.reason}`).join('\n');

describe('lost finals sweep (engine, fast pace)', () => {
  let engine: PocketSphinxEngine;
  before(async () => {
    engine = new PocketSphinxEngine({ minIdleDecoders: 1, maxDecoders: 2 });
    await engine.init();
  });
  after(async () => {
    await engine.shutdown();
  });

  it('every clip (no leading silence) and clips ≤ 6 s (500 ms of it) × endpointing 300 ms keep their words', async () => {
    const runs: RunOutcome[] = [];
    for (const c of clips) {
      for (const leadMs of [0, 500]) {
        if (leadMs > 0 && c.pcm.length > 6 * 16000) continue;
        runs.push(await runEngineCase(engine, c.pcm, { clip: c.name, leadMs, endpointingMs: 300, pace: 'fast' }));
      }
    }
    const lost = runs.filter((r) => r.lost);
    assert.equal(lost.length, 0, `${lost.length} of ${runs.length} runs lost words:\n${describeRuns(lost)}`);
    // The sweep must have seen speech: a vacuous pass is no pass.
    assert.ok(runs.filter((r) => r.longestPartialWords > 0).length >= runs.length - 2);
  });

  it('short clips × leading silence 200 ms × endpointing {10, 800} ms keep their words', async () => {
    const runs: RunOutcome[] = [];
    for (const c of clips.filter((x) => x.pcm.length <= 4.5 * 16000)) {
      for (const endpointingMs of [10, 800]) runs.push(await runEngineCase(engine, c.pcm, { clip: c.name, leadMs: 200, endpointingMs, pace: 'fast' }));
    }
    const lost = runs.filter((r) => r.lost);
    assert.equal(lost.length, 0, `${lost.length} of ${runs.length} runs lost words:\n${describeRuns(lost)}`);
  });

  it('PocketSphinx partials carry words on the stream clock and a confidence (issue 9 §3)', async () => {
    const clip = clips.find((c) => c.name === 'en_cmu_goforward')!;
    const stream = await engine.start({ language: 'en', partials: true, wordTimestamps: true, vad: true, endpointingMs: 300 });
    const partials: SttPartial[] = [];
    const finals: SttFinal[] = [];
    stream.on('partial', (p) => partials.push(p));
    stream.on('final', (f) => finals.push(f));
    const pcm = padClip(clip.pcm, 500);
    for (let i = 0; i < pcm.length; i += 512) {
      stream.write(pcm.subarray(i, i + 512));
      await new Promise((r) => setImmediate(r));
    }
    await stream.close();
    assert.ok(partials.length >= 2, `partials: ${partials.length}`);
    for (const p of partials) {
      assert.ok(p.words, 'every partial has words');
      assert.equal(p.words.map((w) => w.word).join(' '), p.transcript);
      assert.ok(p.confidence !== undefined && p.confidence >= 0 && p.confidence <= 1);
      for (const w of p.words) {
        assert.ok(w.start >= p.start && w.end > w.start && w.end <= p.start + p.duration + 1e-6, `times within the partial's span: ${JSON.stringify(w)} in ${JSON.stringify(p)}`);
        assert.ok(w.confidence > 0 && w.confidence <= 1);
      }
    }
    // Same clock as the final's words: a word both carry starts at (nearly) the same time.
    const fw = finals.flatMap((f) => f.words ?? []);
    const lw = partials.at(-1)!.words!;
    const common = lw.filter((w) => fw.some((x) => x.word === w.word));
    assert.ok(common.length >= 2, `${JSON.stringify(lw)} vs ${JSON.stringify(fw)}`);
    for (const w of common) {
      const x = fw.find((y) => y.word === w.word)!;
      assert.ok(Math.abs(x.start - w.start) < 0.15, `partial ${JSON.stringify(w)} vs final ${JSON.stringify(x)}`);
    }
    // Without word timestamps, partials stay text-only.
    const plain = await engine.start({ language: 'en', partials: true, wordTimestamps: false, vad: true, endpointingMs: 300 });
    const texts: SttPartial[] = [];
    plain.on('partial', (p) => texts.push(p));
    plain.write(pcm);
    await plain.close();
    assert.ok(texts.length > 0 && texts.every((p) => p.words === undefined));
  });
});

describe('lost finals over WebSocket (real server, real-time pace)', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(async () => {
    await s.cleanup();
  });

  /** Stream a clip at real-time pace into /v1/listen with interim results, then CloseStream; judge the Results. */
  async function listenRun(name: string, leadMs: number, endpointingMs: number): Promise<RunOutcome> {
    const pcm = padClip(clips.find((c) => c.name === name)!.pcm, leadMs);
    const bytes = Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
    const c = await openSocket(`${s.wsUrl}/v1/listen?encoding=linear16&sample_rate=16000&interim_results=true&endpointing=${endpointingMs}`, { Authorization: `Token ${s.key}` });
    const chunk = 640; // 20 ms
    const t0 = performance.now();
    for (let o = 0, k = 1; o < bytes.length; o += chunk, k++) {
      c.ws.send(bytes.subarray(o, o + chunk));
      const wait = t0 + k * 20 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    c.sendJson({ type: 'CloseStream' });
    const closed = await c.closed;
    assert.equal(closed.code, 1000);
    const results = c.ofType('Results').map((m) => ({
      transcript: (m.channel as { alternatives: { transcript: string }[] }).alternatives[0]!.transcript,
      start: m.start as number,
      isFinal: m.is_final as boolean,
    }));
    const c0: SweepCase = { clip: name, leadMs, endpointingMs, pace: 'realtime' };
    return judgeRun(
      c0,
      results.filter((r) => !r.isFinal),
      results.filter((r) => r.isFinal),
    );
  }

  it('"for queen of clubs" (en_cmu_cards_002), no leading silence, endpointing 300: the interim words reach a final', async () => {
    const r = await listenRun('en_cmu_cards_002', 0, 300);
    assert.ok(r.longestPartialWords >= 2, `interims showed words: ${JSON.stringify(r.utterances)}`);
    assert.equal(r.lost, false, r.reason);
  });

  it('en_commonvoice_22058267 after 500 ms of silence, endpointing 300: the interim words reach a final', async () => {
    const r = await listenRun('en_commonvoice_22058267', 500, 300);
    assert.ok(r.longestPartialWords >= 1, `interims showed words: ${JSON.stringify(r.utterances)}`);
    assert.equal(r.lost, false, r.reason);
  });
});
