/**
 * Unit tests of the Deepgram-style direct-route dialect (protocols.md §1.4, §2.4), no socket.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { deepgramStyleDialect } from '../src/protocol/deepgram-style/index.js';
import { nameUuid } from '../src/protocol/deepgram/shape.js';
import { serverMessageSchema } from '../src/protocol/deepgram-style/schema.js';
import type { SessionInfo } from '../src/protocol/events.js';
import { DEFAULT_STT_MODELS } from '../src/config/config.js';
import { testSessionInfo } from './session_info.js';

const info: SessionInfo = testSessionInfo({ sessionId: 'sess_y', requestId: '6f1c2a34-5b6d-4e7f-8a9b-0c1d2e3f4a5b', model: DEFAULT_STT_MODELS[1]! });
const frames = (ev: Parameters<typeof deepgramStyleDialect.encode>[0]) => deepgramStyleDialect.encode(ev).map((f) => JSON.parse(f));

describe('deepgram-style dialect', () => {
  it('accepts SLNG client messages and the Deepgram names', () => {
    const kinds = ['{"type":"init","config":{"language":"en","smart_format":true,"utterances":true}}', '{"type":"KeepAlive"}', '{"type":"Finalize"}', '{"type":"CloseStream"}', '{"type":"finalize"}', '{"type":"close"}', '{"type":"keepalive"}'].map(
      (t) => deepgramStyleDialect.parseText(t).kind,
    );
    assert.deepEqual(kinds, ['init', 'keepalive', 'finalize', 'close', 'finalize', 'close', 'keepalive']);
  });

  it('encodes Metadata (open), interim and final Results, SpeechStarted, Error, Metadata (end); all match the schema', () => {
    const seq = [
      ...frames({ kind: 'ready', info }),
      ...frames({ kind: 'speech_started', info, timestamp: 0.42 }),
      ...frames({ kind: 'partial', info, result: { transcript: 'the', start: 0, duration: 1.2 } }),
      ...frames({
        kind: 'final',
        info,
        result: {
          transcript: 'the horizon',
          confidence: 0.8,
          words: [
            { word: 'the', start: 0.08, end: 0.16, confidence: 0.99 },
            { word: 'horizon', start: 0.16, end: 0.7, confidence: 0.7 },
          ],
          start: 0,
          duration: 3.52,
          language: 'en',
          speechFinal: true,
          fromFinalize: false,
        },
      }),
      ...frames({ kind: 'final', info, result: { transcript: '', confidence: 0, start: 3.52, duration: 0, language: 'en', speechFinal: false, fromFinalize: true } }),
      ...frames({ kind: 'error', code: 'invalid_request', message: 'bad' }),
      ...frames({ kind: 'ended', info, audioSeconds: 5.0, sha256: 'ab'.repeat(32) }),
    ];
    assert.deepEqual(seq.map((m) => m.type), ['Metadata', 'SpeechStarted', 'Results', 'Results', 'Results', 'Error', 'Metadata']);
    for (const m of seq) serverMessageSchema.parse(m);
    assert.equal(seq[0].sha256, 'incomplete');
    assert.equal(seq[2].is_final, false);
    assert.deepEqual(seq[3].channel_index, [0, 1]);
    assert.equal(seq[3].channel.alternatives[0].words[1].word, 'horizon');
    assert.ok(!('punctuated_word' in seq[3].channel.alternatives[0].words[1]), 'no punctuated_word unless init asks for formatting (§1.4 → §2.4)');
    assert.equal(seq[3].metadata.model_uuid, nameUuid(info.model.code));
    assert.equal(seq[4].from_finalize, true, 'empty finals are sent in this dialect');
    assert.equal(seq[6].duration, 5);
  });

  it('sends SpeechStarted only when vad_events was requested', () => {
    assert.deepEqual(frames({ kind: 'speech_started', info: { ...info, vadEvents: false }, timestamp: 1 }), []);
  });

  it('nameUuid is a stable RFC 4122 v5-shaped UUID', () => {
    assert.equal(nameUuid('a'), nameUuid('a'));
    assert.notEqual(nameUuid('a'), nameUuid('b'));
    assert.match(nameUuid('a'), /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

describe('deepgram-style dialect: init-level formatting (§1.4 smart_format)', () => {
  it('formats transcript and punctuated_word when init asks for smart_format; without it, no punctuated_word (as on /v1/listen, §2.4)', async () => {
    const { encodeDeepgramStyle } = await import('../src/protocol/deepgram-style/index.js');
    const { parseInit } = await import('../src/protocol/unified/client.js');
    const cmd = parseInit({ smart_format: true });
    assert.equal(cmd.kind, 'init');
    const fmt = cmd.kind === 'init' ? cmd.init.format : undefined;
    const base = {
      sessionId: 's', requestId: '6f1c1e52-4a47-4d2e-9a34-1f2a3b4c5d6e', createdAt: new Date(), channels: 1,
      model: { code: 'a/b:c', engine: 'pocketsphinx', dialect: 'deepgram-style' as const, options: {}, aliases: [] },
      engine: { id: 'pocketsphinx', version: 'x' }, vadEvents: false,
    };
    const words = [
      { word: 'go', start: 0, end: 0.2, confidence: 0.9 },
      { word: 'forward', start: 0.2, end: 0.5, confidence: 0.9 },
      { word: 'twenty', start: 0.5, end: 0.8, confidence: 0.9 },
      { word: 'five', start: 0.8, end: 1.0, confidence: 0.7 },
    ];
    const result = { transcript: 'go forward twenty five', confidence: 0.9, words, start: 0, duration: 1, language: 'en', speechFinal: true, fromFinalize: false };
    const [on] = encodeDeepgramStyle({ kind: 'final', info: { ...base, format: fmt }, result }) as { channel: { alternatives: { transcript: string; words: { word: string; punctuated_word: string; end: number }[] }[] } }[];
    assert.equal(on!.channel.alternatives[0]!.transcript, 'Go forward 25.');
    assert.deepEqual(on!.channel.alternatives[0]!.words.map((w) => w.punctuated_word), ['Go', 'forward', '25.']);
    assert.equal(on!.channel.alternatives[0]!.words[2]!.end, 1);
    const [off] = encodeDeepgramStyle({ kind: 'final', info: base, result }) as typeof on[];
    assert.equal(off!.channel.alternatives[0]!.transcript, 'go forward twenty five');
    assert.deepEqual(off!.channel.alternatives[0]!.words.map((w) => w.word), ['go', 'forward', 'twenty', 'five']);
    assert.ok(off!.channel.alternatives[0]!.words.every((w) => !('punctuated_word' in w)));
  });
});
