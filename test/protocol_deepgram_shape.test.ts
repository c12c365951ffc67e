/**
 * The one Deepgram shape module (issue 10 Part 1, src/protocol/deepgram/shape.ts), tested on recorded
 * event sequences (pure; no I/O):
 *
 * - a golden file (test/fixtures/deepgram_shape_golden.json) holds the exact frames `/v1/listen`, the
 *   Deepgram-style SLNG route and the pre-recorded response produced for one sequence before the three
 *   were moved onto the shared builders; the test asserts they still produce exactly those frames.
 *   Regenerate with `UPDATE_GOLDEN=1 node --test dist/test/protocol_deepgram_shape.test.js` only for an
 *   intended wire change, and say so in the commit message.
 * - the builders on their own: rounding to ms, word entries with and without punctuation, interim vs
 *   final, multichannel `channel_index`, ids (shared/spec/protocols.md §1.4, §1.7, §2.4).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../src/util/paths.js';
import { encodeListen } from '../src/protocol/deepgram/listen.js';
import { encodeDeepgramStyle } from '../src/protocol/deepgram-style/index.js';
import { deepgramPrerecorded, unmuteTranscription } from '../src/transcribe/responses.js';
import type { SessionEvent, SessionInfo } from '../src/protocol/events.js';
import type { SttFinal, SttPartial } from '../src/engines/stt/types.js';
import type { FileTranscription } from '../src/transcribe/pipeline.js';
import type { FormatOptions } from '../src/text/format.js';
import { testSessionInfo } from './session_info.js';
import { deepgramAlternative, deepgramLiveFrames, deepgramResults, nameUuid, requestMetadata, resultsMetadata, roundDg, type DeepgramListenFrame, type DeepgramResults } from '../src/protocol/deepgram/shape.js';
import type { DeepgramPrerecordedResponse } from '../src/transcribe/responses.js';
import type { Deepgram } from '@deepgram/sdk';
import { listenServerMessageSchema } from '../src/protocol/deepgram/schema.js';
import { serverMessageSchema as deepgramStyleSchema } from '../src/protocol/deepgram-style/schema.js';

/** `T` when it is assignable to `U`; a compile error otherwise. */
type Fits<T extends U, U> = T;
/**
 * Compile-time proof against a client we did not write: every frame type of the shape module is
 * one the official `@deepgram/sdk` (v5) declares for `/v1/listen` (`V1Socket.Response`), and the
 * pre-recorded body is its `ListenV1Response`. This file does not compile if they drift.
 */
export type ShapesFitTheDeepgramSdk = [
  Fits<DeepgramListenFrame, Deepgram.listen.ListenV1Results | Deepgram.listen.ListenV1Metadata | Deepgram.listen.ListenV1UtteranceEnd | Deepgram.listen.ListenV1SpeechStarted>,
  Fits<DeepgramPrerecordedResponse, Deepgram.ListenV1Response>,
];

const GOLDEN = path.join(packageRoot(), 'test', 'fixtures', 'deepgram_shape_golden.json');

const info: SessionInfo = testSessionInfo({ sessionId: 'sess_golden' });
const stereo: SessionInfo = { ...info, channels: 2, transcriptChannels: 2 };

const NONE: FormatOptions = { punctuate: false, smartFormat: false, numerals: false };
const SMART: FormatOptions = { punctuate: true, smartFormat: true, numerals: true };
const PUNCT: FormatOptions = { punctuate: true, smartFormat: false, numerals: false };

/** A final whose times and confidences need rounding and whose words merge under numerals. */
const finalResult: SttFinal = {
  transcript: 'i want twenty five apples',
  confidence: 0.87654321,
  words: [
    { word: 'i', start: 0.31234, end: 0.40049, confidence: 0.91111 },
    { word: 'want', start: 0.40049, end: 0.7, confidence: 0.8 },
    { word: 'twenty', start: 0.7, end: 1.0004999, confidence: 0.66666 },
    { word: 'five', start: 1.0005, end: 1.3, confidence: 0.5 },
    { word: 'apples', start: 1.3, end: 1.8999, confidence: 0.7777777 },
  ],
  start: 0.3000001,
  duration: 2.3456,
  language: 'en',
  speechFinal: true,
  fromFinalize: false,
};
const partialNoWords: SttPartial = { transcript: 'i want twenty', start: 0.3, duration: 1.23456 };
const partialWords: SttPartial = {
  transcript: 'i want',
  start: 0.3,
  duration: 0.7,
  words: [
    { word: 'i', start: 0.30049, end: 0.4004, confidence: 0.91 },
    { word: 'want', start: 0.4004, end: 0.95, confidence: 0.66 },
  ],
};
const emptyFinal: SttFinal = { transcript: '', confidence: 0, words: [], start: 2.6, duration: 0.4, language: 'en', speechFinal: true, fromFinalize: true };
const noWordsFinal: SttFinal = { transcript: 'go forward ten', confidence: 0.5, start: 3, duration: 1, language: 'en', speechFinal: false, fromFinalize: false };

/**
 * The recorded sequence: every event kind, a second transcript channel (only when `i` has two; the
 * Deepgram-style route has no multichannel), and the end of session.
 */
function sequence(i: SessionInfo): SessionEvent[] {
  const second: SessionEvent[] = (i.transcriptChannels ?? 1) < 2 ? [] : [
    { kind: 'speech_started', info: i, channel: 1, timestamp: 4.00049 },
    { kind: 'partial', info: i, channel: 1, result: partialWords },
    { kind: 'final', info: i, channel: 1, result: finalResult },
    { kind: 'utterance_end', info: i, channel: 1, lastWordEnd: 1.8999 },
  ];
  return [
    { kind: 'ready', info: i },
    { kind: 'speech_started', info: i, timestamp: 0.2999999 },
    { kind: 'partial', info: i, result: { transcript: '', start: 0, duration: 0.1 } },
    { kind: 'partial', info: i, result: partialNoWords },
    { kind: 'partial', info: i, result: partialWords },
    { kind: 'final', info: i, result: finalResult },
    { kind: 'final', info: i, result: emptyFinal },
    { kind: 'final', info: i, result: noWordsFinal },
    { kind: 'utterance_end', info: i, lastWordEnd: 1.8999 },
    ...second,
    { kind: 'error', code: 'invalid_request', message: 'bad frame' },
    { kind: 'ended', info: i, audioSeconds: 4.1234567, sha256: 'ab'.repeat(32) },
  ];
}

const transcription = (channels: SttFinal[][]): FileTranscription => ({
  channels: channels.map((finals) => ({ finals })),
  audioChannels: channels.length,
  durationSeconds: 4.1234567,
  sha256: 'cd'.repeat(32),
  inputBytes: 1000,
  decoder: 'raw',
});
const ctx = { requestId: info.requestId, created: info.createdAt, model: info.model, engine: info.engine, language: 'en' };
const prerecordedOptions = { utterances: false, paragraphs: false, uttSplit: 0.8 };

/** Every frame of every place, keyed by place and options. */
function record(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, fmt] of [['none', NONE], ['punctuate', PUNCT], ['smart', SMART]] as const) {
    out[`listen/${name}/mono`] = sequence(info).flatMap((e) => encodeListen(e, fmt));
    out[`listen/${name}/stereo`] = sequence(stereo).flatMap((e) => encodeListen(e, fmt));
    const styled = name === 'none' ? info : { ...info, format: fmt };
    out[`style/${name}`] = sequence(styled).flatMap((e) => encodeDeepgramStyle(e));
    const t = transcription([[finalResult, emptyFinal, noWordsFinal], [{ ...finalResult, start: 5, words: finalResult.words!.map((w) => ({ ...w, start: w.start + 5, end: w.end + 5 })) }]]);
    out[`prerecorded/${name}/stereo`] = deepgramPrerecorded(t, ctx, { ...prerecordedOptions, ...fmt });
    out[`prerecorded/${name}/mono`] = deepgramPrerecorded(transcription([[finalResult, noWordsFinal]]), ctx, { ...prerecordedOptions, ...fmt });
    out[`unmute/${name}`] = unmuteTranscription(transcription([[finalResult, noWordsFinal]]), 'en', fmt);
  }
  return JSON.parse(JSON.stringify(out)) as Record<string, unknown>;
}

describe('Deepgram shapes: recorded sequences (golden)', () => {
  it('/v1/listen, the Deepgram-style route and pre-recorded responses produce the recorded frames', () => {
    const got = record();
    if (process.env.UPDATE_GOLDEN === '1') {
      mkdirSync(path.dirname(GOLDEN), { recursive: true });
      // One frame per line, so a wire change shows as a readable diff.
      const entry = ([k, v]: [string, unknown]): string =>
        `${JSON.stringify(k)}: ${Array.isArray(v) ? `[\n  ${v.map((f) => JSON.stringify(f)).join(',\n  ')}\n ]` : JSON.stringify(v)}`;
      writeFileSync(GOLDEN, `{\n ${Object.entries(got).map(entry).join(',\n ')}\n}\n`);
    }
    const want = JSON.parse(readFileSync(GOLDEN, 'utf8')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort());
    for (const k of Object.keys(want)) assert.deepEqual(got[k], want[k], k);
    // Byte-exact too: key order is part of what clients see in logs and snapshot tests.
    for (const k of Object.keys(want)) assert.equal(JSON.stringify(got[k]), JSON.stringify(want[k]), `${k} (key order)`);
  });
});

describe('Deepgram shape builders (src/protocol/deepgram/shape.ts)', () => {
  it('roundDg rounds to 3 decimals, half away from zero for positives, and leaves exact values', () => {
    assert.deepEqual([0.31234, 0.4005, 1.0004999, 2.3456, 0.3000001, 7].map((x) => roundDg(x)), [0.312, 0.401, 1, 2.346, 0.3, 7]);
    assert.equal(roundDg(0.87654321, 2), 0.88);
  });

  it('word entries without formatting: word/start/end/confidence only, rounded, in that key order', () => {
    const a = deepgramAlternative(finalResult.transcript, finalResult.words!, finalResult.confidence, NONE);
    assert.equal(a.transcript, 'i want twenty five apples');
    assert.equal(a.confidence, 0.877);
    assert.deepEqual(a.words[0], { word: 'i', start: 0.312, end: 0.4, confidence: 0.911 });
    assert.deepEqual(Object.keys(a.words[0]!), ['word', 'start', 'end', 'confidence']);
    assert.ok(a.words.every((w) => !('punctuated_word' in w)), 'Deepgram sends punctuated_word only when formatting (§2.4)');
    assert.equal(a.words.length, 5);
  });

  it('word entries with punctuate: punctuated_word on every word, word unchanged, transcript from punctuated words', () => {
    const a = deepgramAlternative(finalResult.transcript, finalResult.words!, finalResult.confidence, PUNCT);
    assert.deepEqual(a.words.map((w) => [w.word, w.punctuated_word]), [['i', 'I'], ['want', 'want'], ['twenty', 'twenty'], ['five', 'five'], ['apples', 'apples.']]);
    assert.equal(a.transcript, 'I want twenty five apples.');
    assert.deepEqual(Object.keys(a.words[0]!), ['word', 'start', 'end', 'confidence', 'punctuated_word']);
  });

  it('word entries with smart_format: numbers merge into one word spanning both, times rounded after the merge', () => {
    const a = deepgramAlternative(finalResult.transcript, finalResult.words!, finalResult.confidence, SMART);
    assert.equal(a.transcript, 'I want 25 apples.');
    const n = a.words.find((w) => w.word === '25')!;
    assert.equal(n.start, 0.7);
    assert.equal(n.end, 1.3);
  });

  it('an alternative without words formats the engine transcript (finals without word timestamps)', () => {
    assert.deepEqual(deepgramAlternative('go forward ten', [], 0.5, SMART), { transcript: 'Go forward 10.', confidence: 0.5, words: [] });
    assert.deepEqual(deepgramAlternative('go forward ten', [], 0.5, NONE), { transcript: 'go forward ten', confidence: 0.5, words: [] });
  });

  it('interim vs final: is_final, speech_final and from_finalize; interims derive words, empty interims send nothing', () => {
    const interim = deepgramResults({ kind: 'partial', info, result: partialNoWords }, NONE)!;
    assert.equal(interim.is_final, false);
    assert.equal(interim.speech_final, false);
    assert.equal(interim.from_finalize, false);
    assert.equal(interim.duration, 1.235);
    assert.deepEqual(interim.channel.alternatives[0]!.words.map((w) => w.word), ['i', 'want', 'twenty']);
    assert.equal(interim.channel.alternatives[0]!.words.at(-1)!.end, 1.535, 'derived words span the interim');
    assert.equal(deepgramResults({ kind: 'partial', info, result: { transcript: '', start: 0, duration: 1 } }, NONE), null);
    const fin = deepgramResults({ kind: 'final', info, result: { ...finalResult, fromFinalize: true } }, NONE)!;
    assert.deepEqual([fin.is_final, fin.speech_final, fin.from_finalize], [true, true, true]);
    const empty = deepgramResults({ kind: 'final', info, result: emptyFinal }, NONE)!;
    assert.deepEqual(empty.channel.alternatives, [{ transcript: '', confidence: 0, words: [] }], 'empty finals are sent');
    for (const m of [interim, fin, empty]) {
      listenServerMessageSchema.parse(m);
      deepgramStyleSchema.parse(m);
    }
  });

  it('multichannel: channel_index and the channel of SpeechStarted/UtteranceEnd are [channel, total]', () => {
    const evs: SessionEvent[] = [
      { kind: 'final', info: stereo, channel: 1, result: finalResult },
      { kind: 'partial', info: stereo, channel: 1, result: partialWords },
      { kind: 'final', info: stereo, result: finalResult },
      { kind: 'speech_started', info: stereo, channel: 1, timestamp: 1 },
      { kind: 'utterance_end', info: stereo, channel: 1, lastWordEnd: 1.8999 },
    ];
    const frames = evs.flatMap((e) => deepgramLiveFrames(e, NONE)!);
    assert.deepEqual(
      frames.map((f) => (f.type === 'Results' ? f.channel_index : f.channel)),
      [[1, 2], [1, 2], [0, 2], [1, 2], [1, 2]],
    );
    const last = frames.at(-1)!;
    assert.equal(last.type === 'UtteranceEnd' ? last.last_word_end : undefined, 1.9);
    for (const f of frames) listenServerMessageSchema.parse(f);
  });

  it('SpeechStarted only with vad_events; ready/error/ended are left to the dialect', () => {
    assert.deepEqual(deepgramLiveFrames({ kind: 'speech_started', info: { ...info, vadEvents: false }, timestamp: 1 }, NONE), []);
    assert.equal(deepgramLiveFrames({ kind: 'ready', info }, NONE), undefined);
    assert.equal(deepgramLiveFrames({ kind: 'error', code: 'internal_error', message: 'x' }, NONE), undefined);
    assert.equal(deepgramLiveFrames({ kind: 'ended', info, audioSeconds: 1, sha256: '' }, NONE), undefined);
  });

  it('ids: model_uuid is the name UUID of the model code, in Results metadata and request metadata alike', () => {
    const served = { code: info.model.code, engine: info.engine };
    const rm = resultsMetadata(info.requestId, served);
    assert.deepEqual(rm, { request_id: info.requestId, model_info: { name: info.model.code, version: '0.8', arch: 'pocketsphinx' }, model_uuid: nameUuid(info.model.code) });
    const md = requestMetadata({ requestId: info.requestId, sha256: 'ab', created: info.createdAt, duration: 4.1234567, channels: 2, model: served });
    assert.deepEqual(md.models, [rm.model_uuid]);
    assert.deepEqual(md.model_info[rm.model_uuid], rm.model_info);
    assert.equal(md.duration, 4.123);
    assert.equal(md.created, '2026-11-21T10:00:00.000Z');
    assert.deepEqual(Object.keys(md), ['transaction_key', 'request_id', 'sha256', 'created', 'duration', 'channels', 'models', 'model_info']);
    assert.match(nameUuid('a'), /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const r: DeepgramResults = deepgramResults({ kind: 'final', info, result: finalResult }, NONE)!;
    assert.deepEqual(r.metadata, rm);
  });
});
