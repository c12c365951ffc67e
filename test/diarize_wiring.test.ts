/**
 * Diarization wiring (issue 13), unit level — pure protocol shapes and the engine-layer wrapper with
 * scripted engines and a spy diarizer (no server):
 *
 * - parsing: Deepgram `diarize`/`diarize_model`/`diarize_version` and the speaker-count hints, the
 *   unified `enable_diarization` + `min_speakers`/`max_speakers`/`num_speakers` (flat or in
 *   `diarization`), smallest.ai `diarize`; bad hint values are each dialect's `config_error`;
 * - shapes: `/v1/listen` words[].speaker (no `speaker_confidence` when streaming, as the SDK says),
 *   unified `final_transcript` words[].speaker + segment `speaker`, Pulse words' `speaker` and
 *   `speaker_confidence`, pre-recorded `speaker_confidence`, utterances and paragraphs per speaker;
 * - the wrapper (src/engines/stt/diarizing.ts): embedded mode tees the PCM and labels every final
 *   word; channel mode labels by channel; upstream mode runs no diarizer and keeps the backend's
 *   labels; above a failover engine the diarizer sees each client sample once and labels in stream time;
 * - offline labelling of pre-recorded words from turns (hand-computed cases).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { parseListenQuery } from '../src/protocol/deepgram/query.js';
import { encodeListen, listenInit } from '../src/protocol/deepgram/listen.js';
import { listenResultsSchema } from '../src/protocol/deepgram/schema.js';
import { parseInit } from '../src/protocol/unified/client.js';
import { encodeUnified } from '../src/protocol/unified/index.js';
import { serverMessageSchema as unifiedSchema } from '../src/protocol/unified/schema.js';
import { createSmallestDialect, parseSmallestQuery, smallestInit } from '../src/protocol/smallest/index.js';
import { deepgramPrerecorded } from '../src/transcribe/responses.js';
import { labelByChannel, labelByTurns, speakerOfSpan } from '../src/transcribe/speakers.js';
import { diarizationMode, DiarizingSttStream, segmentSpeaker, startDiarizedStream } from '../src/engines/stt/diarizing.js';
import { FakeSttEngine } from '../src/engines/stt/fake/index.js';
import { FailoverSttEngine } from '../src/engines/stt/failover.js';
import { BackendHealth } from '../src/engines/health.js';
import type { Diarizer, DiarizeOptions, SpeakerLabel, TimeSpan } from '../src/diarize/types.js';
import type { SttFinal, SttStream, SttStreamConfig, SttStreamEvents } from '../src/engines/stt/types.js';
import type { SessionEvent } from '../src/protocol/events.js';
import { VoxgateError } from '../src/util/errors.js';
import { testSessionInfo } from './session_info.js';

const q = (s: string) => parseListenQuery(new URLSearchParams(s));
const configErr = (fn: () => unknown, re: RegExp) => assert.throws(fn, (e: unknown) => e instanceof VoxgateError && e.code === 'config_error' && re.test(e.message));

/** A diarizer that records what it is fed and labels a span 0 before `split` s, 1 from it. */
class SpyDiarizer implements Diarizer {
  readonly id = 'spy';
  readonly experimental = true;
  streams = 0;
  samples = 0;
  closed = 0;
  opts: DiarizeOptions | undefined;
  spans: TimeSpan[][] = [];
  constructor(private readonly split = 1) {}
  stream(_rate: number, opts?: DiarizeOptions) {
    this.streams++;
    this.opts = opts;
    return {
      write: (pcm: Int16Array) => void (this.samples += pcm.length),
      labelFinal: (w: readonly TimeSpan[]): SpeakerLabel[] => {
        this.spans.push([...w]);
        return w.map((s) => ({ speaker: s.start < this.split ? 0 : 1, confidence: 0.75 }));
      },
      close: () => void this.closed++,
    };
  }
  diarize(pcm: Int16Array, rate: number) {
    return [
      { start: 0, end: this.split, speaker: 0 },
      { start: this.split, end: pcm.length / rate, speaker: 1 },
    ];
  }
}

const CFG: SttStreamConfig = { language: 'en', partials: true, wordTimestamps: true, vad: true, endpointingMs: 300 };
const SCRIPT = {
  steps: [
    {
      at: 2,
      final: {
        transcript: 'a b c',
        words: [
          { word: 'a', start: 0.2, end: 0.5 },
          { word: 'b', start: 0.6, end: 0.9 },
          { word: 'c', start: 1.2, end: 1.9 },
        ],
      },
    },
  ],
};

/** Write `seconds` of 16 kHz PCM in 100 ms pieces and collect the finals until the stream closes. */
async function run(s: SttStream, seconds: number): Promise<SttFinal[]> {
  const finals: SttFinal[] = [];
  s.on('final', (f) => finals.push(f));
  for (let i = 0; i < seconds * 10; i++) s.write(new Int16Array(1600));
  await s.close();
  return finals;
}

describe('diarization parameters', () => {
  it('/v1/listen: diarize=true, diarize_model, diarize_version, hints; Mastra’s diarize=undefined stays off', () => {
    assert.deepEqual([q('').diarize, q('').diarizeOptions], [false, undefined]);
    assert.deepEqual(q('diarize=true').diarizeOptions, {});
    assert.deepEqual(q('diarize=true&diarize_version=2021-07-14.0').diarizeOptions, {});
    assert.deepEqual(q('diarize_version=3').diarize, false, 'diarize_version alone selects a version, it does not enable');
    assert.deepEqual(q('diarize_model=latest').diarizeOptions, {});
    assert.deepEqual(q('diarize=true&min_speakers=2&max_speakers=4').diarizeOptions, { minSpeakers: 2, maxSpeakers: 4 });
    assert.deepEqual(q('diarize=true&diarize_speakers=3').diarizeOptions, { numSpeakers: 3 });
    assert.deepEqual(q('diarize=undefined').diarize, false);
    assert.deepEqual(listenInit(q('diarize=true&num_speakers=2')).diarize, { numSpeakers: 2 });
    assert.equal(listenInit(q('diarize=false')).diarize, undefined);
  });

  it('/v1/listen: bad values are config_error naming the parameter (HTTP 400 INVALID_QUERY_PARAMETER)', () => {
    configErr(() => q('diarize=yes'), /diarize/);
    configErr(() => q('diarize_model=v9x'), /diarize_model/);
    configErr(() => q('diarize=true&min_speakers=0'), /min_speakers/);
    configErr(() => q('diarize=true&max_speakers=eleven'), /max_speakers/);
    configErr(() => q('diarize=true&num_speakers=11'), /num_speakers.*1–10/);
    configErr(() => q('diarize=true&min_speakers=4&max_speakers=2'), /min_speakers \(4\) is above max_speakers \(2\)/);
    configErr(() => q('diarize=true&num_speakers=5&max_speakers=3'), /num_speakers \(5\) is above/);
    configErr(() => q('num_speakers=2&diarize_speakers=3'), /disagree/);
    configErr(() => q('min_speakers=-1'), /min_speakers/); // validated even with diarization off
  });

  it('unified init: enable_diarization/diarize with flat or nested hints; bad hints are a config_error', () => {
    const init = (c: Record<string, unknown>) => {
      const cmd = parseInit(c);
      assert.equal(cmd.kind, 'init', JSON.stringify(cmd));
      return (cmd as Extract<typeof cmd, { kind: 'init' }>).init.diarize;
    };
    assert.equal(init({}), undefined);
    assert.equal(init({ enable_diarization: false, min_speakers: 2 }), undefined);
    assert.deepEqual(init({ enable_diarization: true }), {});
    assert.deepEqual(init({ diarize: true }), {});
    assert.deepEqual(init({ enable_diarization: true, min_speakers: 2, max_speakers: 3 }), { minSpeakers: 2, maxSpeakers: 3 });
    assert.deepEqual(init({ diarization: { num_speakers: 2 } }), { numSpeakers: 2 });
    assert.deepEqual(init({ enable_diarization: true, max_speakers: 5, diarization: { max_speakers: 3 } }), { maxSpeakers: 3 });
    for (const [c, re] of [
      [{ enable_diarization: true, max_speakers: 0 }, /max_speakers/],
      [{ enable_diarization: true, min_speakers: 2.5 }, /min_speakers/],
      [{ diarization: { num_speakers: '2' + 'x' } }, /diarization\.num_speakers/],
      [{ enable_diarization: true, min_speakers: 3, max_speakers: 2 }, /above/],
      [{ diarization: { speakers: 2 } }, /diarization/],
      [{ enable_diarization: 'yes' }, /enable_diarization/],
    ] as const) {
      const cmd = parseInit(c);
      assert.equal(cmd.kind, 'invalid', JSON.stringify(c));
      assert.equal((cmd as { code: string }).code, 'config_error');
      assert.match((cmd as { message: string }).message, re);
    }
  });

  it('smallest.ai: diarize=true turns it on; diarize=maybe is a config_error', () => {
    assert.deepEqual(smallestInit(parseSmallestQuery(new URLSearchParams('diarize=true'))).diarize, {});
    assert.equal(smallestInit(parseSmallestQuery(new URLSearchParams(''))).diarize, undefined);
    configErr(() => parseSmallestQuery(new URLSearchParams('diarize=maybe')), /diarize/);
  });
});

const info = testSessionInfo({ sessionId: 'sess_diar' });
const labelled: SttFinal = {
  transcript: 'hello there general kenobi',
  confidence: 0.9,
  words: [
    { word: 'hello', start: 0.1, end: 0.4, confidence: 0.9, speaker: 0, speakerConfidence: 0.81234 },
    { word: 'there', start: 0.4, end: 0.7, confidence: 0.9, speaker: 0, speakerConfidence: 0.8 },
    { word: 'general', start: 1.5, end: 1.9, confidence: 0.9, speaker: 1, speakerConfidence: 0.7 },
    { word: 'kenobi', start: 1.9, end: 2.4, confidence: 0.9, speaker: 1, speakerConfidence: 0.6 },
  ],
  start: 0,
  duration: 2.5,
  language: 'en',
  speechFinal: true,
  fromFinalize: false,
  speaker: 1,
};
const finalEv: SessionEvent = { kind: 'final', info, result: labelled };

describe('speaker shapes', () => {
  it('/v1/listen Results: speaker on every word, no speaker_confidence (streaming), strict schema', () => {
    for (const fmt of [
      { punctuate: false, smartFormat: false, numerals: false },
      { punctuate: true, smartFormat: true, numerals: true },
    ]) {
      const [r] = encodeListen(finalEv, fmt);
      listenResultsSchema.parse(r);
      const words = (r as unknown as { channel: { alternatives: { words: Record<string, unknown>[] }[] } }).channel.alternatives[0]!.words;
      assert.deepEqual(
        words.map((w) => w.speaker),
        [0, 0, 1, 1],
      );
      assert.ok(words.every((w) => !('speaker_confidence' in w)));
    }
  });

  it('unified final_transcript: words[].speaker + speaker_confidence and the segment speaker; unlabelled finals unchanged', () => {
    const [m] = encodeUnified(finalEv);
    unifiedSchema.parse(m);
    assert.equal((m as { speaker?: number }).speaker, 1);
    assert.deepEqual(
      (m as { words: { speaker: number; speaker_confidence: number }[] }).words.map((w) => [w.speaker, w.speaker_confidence]),
      [
        [0, 0.812],
        [0, 0.8],
        [1, 0.7],
        [1, 0.6],
      ],
    );
    const plain = { ...labelled, speaker: undefined, words: labelled.words!.map(({ speaker: _s, speakerConfidence: _c, ...w }) => w) };
    const [p] = encodeUnified({ kind: 'final', info, result: plain });
    assert.ok(!('speaker' in (p as object)));
    assert.ok((p as { words: object[] }).words.every((w) => !('speaker' in w)));
  });

  it('smallest.ai Pulse: words carry speaker and speaker_confidence (§4.1), formatted or not', () => {
    for (const format of ['true', 'false']) {
      const d = createSmallestDialect(parseSmallestQuery(new URLSearchParams(`diarize=true&format=${format}`)), 'pulse');
      const frames: { words: { speaker: number; speaker_confidence: number }[] }[] = d.encode(finalEv).map((x) => JSON.parse(x) as never);
      assert.deepEqual(
        frames[0]!.words.map((w) => [w.speaker, w.speaker_confidence]),
        [
          [0, 0.812],
          [0, 0.8],
          [1, 0.7],
          [1, 0.6],
        ],
      );
    }
  });

  it('pre-recorded: speaker + speaker_confidence on words; utterances and paragraphs split where the speaker changes', () => {
    const t = { channels: [{ finals: [labelled] }], audioChannels: 1, durationSeconds: 3, sha256: 'x', inputBytes: 1, decoder: 'raw' };
    const ctx = { requestId: info.requestId, created: info.createdAt, model: info.model, engine: info.engine, language: 'en' };
    const r = deepgramPrerecorded(t, ctx, { punctuate: true, smartFormat: false, numerals: false, utterances: true, paragraphs: true, uttSplit: 10 });
    const alt = r.results.channels[0]!.alternatives[0]!;
    assert.deepEqual(
      alt.words.map((w) => [w.speaker, w.speaker_confidence]),
      [
        [0, 0.812],
        [0, 0.8],
        [1, 0.7],
        [1, 0.6],
      ],
    );
    // uttSplit 10 s: only the speaker change splits.
    assert.deepEqual(
      r.results.utterances!.map((u) => [u.speaker, u.transcript]),
      [
        [0, 'Hello there'],
        [1, 'general kenobi.'],
      ],
    );
    assert.deepEqual(
      alt.paragraphs!.paragraphs.map((p) => p.speaker),
      [0, 1],
    );
    assert.match(alt.paragraphs!.transcript, /^\nSpeaker 0: Hello there\n\nSpeaker 1: general kenobi/);
  });
});

describe('offline labelling of pre-recorded words', () => {
  const turns = [
    { start: 0, end: 1, speaker: 0 },
    { start: 1.2, end: 3, speaker: 1 },
  ];
  it('a word takes the turn it overlaps most; confidence = share covered; outside every turn: the nearest, confidence 0', () => {
    assert.deepEqual(speakerOfSpan(0.2, 0.6, turns), { speaker: 0, confidence: 1 });
    const straddle = speakerOfSpan(0.8, 1.6, turns)!; // 0.2 s with 0, 0.4 s with 1
    assert.equal(straddle.speaker, 1);
    assert.ok(Math.abs(straddle.confidence - 0.5) < 1e-9);
    assert.deepEqual(speakerOfSpan(1.05, 1.1, turns), { speaker: 0, confidence: 0 }); // in the gap, nearer the end of turn 0
    assert.deepEqual(speakerOfSpan(3.5, 3.6, turns), { speaker: 1, confidence: 0 });
    assert.equal(speakerOfSpan(0, 1, []), undefined);
  });
  it('labelByTurns labels every word and the segment; labelByChannel uses the channel', () => {
    const f: SttFinal = { ...labelled, speaker: undefined, words: labelled.words!.map(({ speaker: _s, speakerConfidence: _c, ...w }) => w) };
    const [out] = labelByTurns([f], turns);
    assert.deepEqual(
      out!.words!.map((w) => w.speaker),
      [0, 0, 1, 1],
    );
    assert.equal(out!.speaker, 1, '0.9 s of speaker 1 words vs 0.6 s of speaker 0');
    assert.equal(f.words![0]!.speaker, undefined, 'input not modified');
    const [none] = labelByTurns([f], []);
    assert.ok(none!.words!.every((w) => w.speaker === 0 && w.speakerConfidence === 0), 'no turns: every word still labelled, confidence 0');
    const [c] = labelByChannel([f], 1);
    assert.ok(c!.words!.every((w) => w.speaker === 1 && w.speakerConfidence === 1));
    assert.equal(c!.speaker, 1);
  });
  it('segmentSpeaker: most time wins; nothing labelled → undefined', () => {
    assert.equal(segmentSpeaker([{ start: 0, end: 1, speaker: 2 }, { start: 1, end: 1.5, speaker: 0 }, { start: 2, end: 2.6, speaker: 0 }]), 0);
    assert.equal(segmentSpeaker([{ start: 0, end: 1 }]), undefined);
  });
});

describe('the diarizing stream wrapper', () => {
  it('modes: off without diarize; channel under multichannel; upstream when the engine diarizes; else embedded', () => {
    const caps = new FakeSttEngine().capabilities;
    assert.equal(diarizationMode(caps, {}, false), 'off');
    assert.equal(diarizationMode(caps, { diarize: {} }, true), 'channel');
    assert.equal(diarizationMode(caps, { diarize: {} }, false), 'embedded');
    assert.equal(diarizationMode({ ...caps, diarization: true }, { diarize: {} }, false), 'upstream');
  });

  it('a failover engine diarizes by its backends only when every backend does (one label space per stream)', () => {
    const dg = new FakeSttEngine({ id: 'dg', capabilities: { diarization: true } });
    const ps = new FakeSttEngine({ id: 'ps' });
    const b = (id: string, engine: FakeSttEngine) => ({ id, engine, region: 'r', worldPart: 'w' });
    const health = new BackendHealth();
    assert.equal(new FailoverSttEngine([b('A', dg), b('B', dg)], { health }).capabilities.diarization, true);
    assert.equal(new FailoverSttEngine([b('A', dg), b('B', ps)], { health }).capabilities.diarization, false);
    assert.equal(new FailoverSttEngine([b('A', ps), b('B', dg)], { health }).capabilities.diarization, false);
  });

  it('embedded: every sample reaches the diarizer, every final word is labelled, hints reach it, the engine is not asked to diarize', async () => {
    const engine = new FakeSttEngine({ script: SCRIPT });
    await engine.init();
    const spy = new SpyDiarizer();
    const s = await startDiarizedStream(engine, { ...CFG, diarize: { maxSpeakers: 2 } }, undefined, 'embedded', { diarizer: spy });
    const [f] = await run(s, 2.5);
    assert.equal(spy.samples, 2.5 * 16000);
    assert.deepEqual(spy.opts, { maxSpeakers: 2 });
    assert.equal(engine.started[0]!.diarize, undefined);
    assert.deepEqual(
      f!.words!.map((w) => [w.word, w.speaker, w.speakerConfidence]),
      [
        ['a', 0, 0.75],
        ['b', 0, 0.75],
        ['c', 1, 0.75],
      ],
    );
    assert.equal(f!.speaker, 1, 'c (0.7 s) outweighs a + b (0.6 s)');
    assert.equal(spy.closed, 1, 'the diarizer is released when the stream closes');
  });

  it('embedded without client words: the engine is still asked for words, the final keeps its speaker, words are removed', async () => {
    const engine = new FakeSttEngine({ script: SCRIPT });
    await engine.init();
    const spy = new SpyDiarizer(0);
    const s = await startDiarizedStream(engine, { ...CFG, wordTimestamps: false, diarize: {} }, undefined, 'embedded', { diarizer: spy });
    const [f] = await run(s, 2.5);
    assert.equal(engine.started[0]!.wordTimestamps, true);
    assert.equal(f!.words, undefined);
    assert.equal(f!.speaker, 1);
  });

  it('a diarizer that throws: the final is still delivered (unlabelled), then the stream fails with internal_error', async () => {
    const engine = new FakeSttEngine({ script: SCRIPT });
    await engine.init();
    const broken: Diarizer = {
      id: 'broken',
      experimental: true,
      stream: () => ({
        write: () => undefined,
        labelFinal: () => {
          throw new Error('boom');
        },
        close: () => undefined,
      }),
      diarize: () => [],
    };
    const s = await startDiarizedStream(engine, { ...CFG, diarize: {} }, undefined, 'embedded', { diarizer: broken });
    const events: string[] = [];
    s.on('final', (f) => events.push(`final:${f.transcript}:${f.words?.[0]?.speaker}`));
    s.on('error', (e) => events.push(`error:${(e as VoxgateError).code}:${e.message}`));
    const failed = new Promise((r) => s.once('error', r));
    for (let i = 0; i < 25; i++) s.write(new Int16Array(1600));
    await failed;
    assert.deepEqual(events, ['final:a b c:undefined', 'error:internal_error:speaker diarization failed: boom']);
    s.abort();
  });

  it('channel mode: every word of channel i is speaker i with confidence 1, no diarizer', async () => {
    const engine = new FakeSttEngine({ script: SCRIPT });
    await engine.init();
    const spy = new SpyDiarizer();
    const s = await startDiarizedStream(engine, { ...CFG, diarize: {} }, undefined, 'channel', { channel: 1, diarizer: spy });
    const [f] = await run(s, 2.5);
    assert.equal(spy.streams, 0);
    assert.ok(f!.words!.every((w) => w.speaker === 1 && w.speakerConfidence === 1));
    assert.equal(f!.speaker, 1);
  });

  it('upstream mode: the engine is asked to diarize, its labels pass unchanged, no embedded diarizer runs', async () => {
    const started: SttStreamConfig[] = [];
    const stream = new (class extends EventEmitter<SttStreamEvents> {
      audioSeconds = 0;
      backlogSeconds = 0;
      write() {}
      finalize() {}
      async close() {
        this.emit('final', { ...labelled, speaker: undefined });
      }
      abort() {}
    })();
    const engine = {
      id: 'dg-like',
      capabilities: { ...new FakeSttEngine().capabilities, diarization: true },
      init: async () => {},
      start: async (c: SttStreamConfig) => (started.push(c), stream as unknown as SttStream),
      stats: () => ({ activeStreams: 0, idleDecoders: 0, busyDecoders: 0 }),
      shutdown: async () => {},
    };
    const spy = new SpyDiarizer();
    const s = await startDiarizedStream(engine, { ...CFG, diarize: { numSpeakers: 2 } }, undefined, diarizationMode(engine.capabilities, { diarize: {} }, false), { diarizer: spy });
    assert.ok(s instanceof DiarizingSttStream);
    const [f] = await run(s, 0.2);
    assert.deepEqual(started[0]!.diarize, { numSpeakers: 2 });
    assert.equal(spy.streams, 0);
    assert.deepEqual(
      f!.words!.map((w) => [w.speaker, w.speakerConfidence]),
      labelled.words!.map((w) => [w.speaker, w.speakerConfidence]),
    );
    assert.equal(f!.speaker, 1, 'segment speaker derived from the backend labels');
  });

  it('above failover: the diarizer sees each client sample once (not the replay) and labels in stream time across a backend switch', async () => {
    const decode = { decode: { blockSeconds: 0.5 } };
    const a = new FakeSttEngine({ id: 'a', script: { ...decode, steps: [{ at: 1.2, error: { code: 'provider_error', message: 'backend a dropped', retryable: true } }] } });
    const b = new FakeSttEngine({ id: 'b', script: decode });
    const engine = new FailoverSttEngine(
      [
        { id: 'A', engine: a, region: 'r', worldPart: 'w', replayPace: null },
        { id: 'B', engine: b, region: 'r', worldPart: 'w', replayPace: null },
      ],
      { health: new BackendHealth() },
    );
    const spy = new SpyDiarizer(1.8);
    const s = await startDiarizedStream(engine, { ...CFG, diarize: {} }, undefined, diarizationMode(engine.capabilities, { diarize: {} }, false), { diarizer: spy });
    const finals: SttFinal[] = [];
    s.on('final', (f) => finals.push(f));
    // w1 w2 | silence | w3 w4 | silence: 0.5 s blocks whose samples are the word number.
    const values = [1, 2, 0, 0, 3, 4, 0, 0];
    for (const v of values) {
      s.write(new Int16Array(8000).fill(v));
      await new Promise((r) => setImmediate(r));
    }
    await s.close();
    assert.equal(a.started.length + b.started.length, 2, 'one switch happened');
    assert.equal(spy.samples, values.length * 8000, 'the replay to backend b was not fed to the diarizer again');
    const words = finals.flatMap((f) => f.words ?? []);
    assert.deepEqual(
      words.map((w) => [w.word, w.start, w.speaker]),
      [
        ['w1', 0, 0],
        ['w2', 0.5, 0],
        ['w3', 2, 1],
        ['w4', 2.5, 1],
      ],
    );
    assert.deepEqual(
      spy.spans.flat().map((x) => x.start),
      [0, 0.5, 2, 2.5],
      'the diarizer was asked about stream times (rebased after the switch)',
    );
  });
});
