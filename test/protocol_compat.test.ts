/**
 * Pure dialect tests (no I/O) for Deepgram `/v1/listen` (shared/spec/protocols.md §2) and smallest.ai
 * Lightning/Pulse (§4.1–4.2): query parsing, client frames, and encoded sequences validated against
 * the schemas.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseListenQuery } from '../src/protocol/deepgram/query.js';
import { createListenDialect, listenCloseFor, listenInit, parseListenText } from '../src/protocol/deepgram/listen.js';
import { listenServerMessageSchema } from '../src/protocol/deepgram/schema.js';
import { createSmallestDialect, parseSmallestQuery, parseSmallestText, smallestInit } from '../src/protocol/smallest/index.js';
import type { SessionEvent, SessionInfo } from '../src/protocol/events.js';
import { VoxgateError } from '../src/util/errors.js';

const info: SessionInfo = {
  sessionId: 'sess_x',
  requestId: '6f1c1e52-4a47-4d2e-9a34-1f2a3b4c5d6e',
  model: { code: 'local/pocketsphinx:en', engine: 'pocketsphinx', dialect: 'unified', options: {}, aliases: [] },
  createdAt: new Date('2026-11-21T10:00:00Z'),
  channels: 2,
  engine: { id: 'pocketsphinx', version: '5prealpha' },
  vadEvents: true,
  transcriptChannels: 2,
};
const words = [
  { word: 'go', start: 0.3, end: 0.5, confidence: 0.9 },
  { word: 'forward', start: 0.5, end: 0.9, confidence: 0.8 },
];
const final = (over: Partial<Extract<SessionEvent, { kind: 'final' }>['result']> = {}): SessionEvent => ({
  kind: 'final',
  info,
  channel: 1,
  result: { transcript: 'go forward', confidence: 0.85, words, start: 0.3, duration: 0.6, language: 'en', speechFinal: true, fromFinalize: false, ...over },
});

describe('Deepgram /v1/listen query (§2.2)', () => {
  it('applies defaults and parses every documented parameter', () => {
    const o = parseListenQuery(new URLSearchParams('model=nova-3&encoding=LINEAR16&sample_rate=8000&channels=2&multichannel=true&interim_results=true&endpointing=false&utterance_end_ms=1000&vad_events=true&smart_format=true&keyterm=a&keyterm=b%20c&tag=x&redact=pci&redact=ssn&whatever=1'));
    assert.equal(o.model, 'nova-3');
    assert.equal(o.encoding, 'linear16');
    assert.equal(o.sampleRate, 8000);
    assert.equal(o.channels, 2);
    assert.equal(o.multichannel, true);
    assert.equal(o.endpointing, null);
    assert.equal(o.utteranceEndMs, 1000);
    assert.deepEqual(o.keyterms, ['a', 'b c']);
    assert.deepEqual(o.redact, ['pci', 'ssn']);
    const d = parseListenQuery(new URLSearchParams(''));
    assert.equal(d.channels, 1);
    assert.equal(d.interimResults, false);
    assert.equal(d.endpointing, undefined);
    assert.equal(listenInit(d).endpointingMs, 10, "Deepgram's default endpointing is 10 ms");
  });

  it('sample_rate is only read with an encoding; utterance_end_ms needs interim_results', () => {
    assert.equal(listenInit(parseListenQuery(new URLSearchParams('sample_rate=8000'))).sampleRate, undefined);
    assert.equal(listenInit(parseListenQuery(new URLSearchParams('utterance_end_ms=1000'))).utteranceEndMs, null);
    assert.equal(listenInit(parseListenQuery(new URLSearchParams('utterance_end_ms=1000&interim_results=true'))).utteranceEndMs, 1000);
  });

  it('rejects malformed values with config_error naming the parameter', () => {
    for (const [q, name] of [
      ['sample_rate=7', 'sample_rate'],
      ['sample_rate=abc', 'sample_rate'],
      ['encoding=foo', 'encoding'],
      ['interim_results=1', 'interim_results'],
      ['endpointing=-3', 'endpointing'],
      ['channels=0', 'channels'],
      ['utt_split=x', 'utt_split'],
    ] as const) {
      assert.throws(
        () => parseListenQuery(new URLSearchParams(q)),
        (e: unknown) => e instanceof VoxgateError && e.code === 'config_error' && e.message.includes(name),
        q,
      );
    }
  });
});

describe('Deepgram /v1/listen frames (§2.3–2.5)', () => {
  it('parses the three control messages and rejects others', () => {
    assert.deepEqual(parseListenText('{"type":"KeepAlive"}'), { kind: 'keepalive' });
    assert.deepEqual(parseListenText('{"type":"Finalize","channel":0}'), { kind: 'finalize' });
    assert.deepEqual(parseListenText('{"type":"CloseStream"}'), { kind: 'close' });
    for (const t of ['nope', '{"type":"keepalive"}', '[]', '{"type":"Finalize","channel":"x"}']) assert.equal(parseListenText(t).kind, 'invalid', t);
  });

  it('encodes a recorded session as valid frames: nothing at open, Results, SpeechStarted, UtteranceEnd, Metadata', () => {
    const d = createListenDialect(parseListenQuery(new URLSearchParams('interim_results=true&vad_events=true')));
    const seq: SessionEvent[] = [
      { kind: 'ready', info },
      { kind: 'speech_started', info, channel: 1, timestamp: 0.28 },
      { kind: 'partial', info, channel: 1, result: { transcript: 'go', start: 0.3, duration: 0.3 } },
      final(),
      { kind: 'utterance_end', info, channel: 1, lastWordEnd: 0.9 },
      { kind: 'ended', info, audioSeconds: 2.5, sha256: 'ab'.repeat(32) },
    ];
    const frames = seq.flatMap((e) => d.encode(e)).map((f) => JSON.parse(f) as Record<string, unknown>);
    assert.deepEqual(
      frames.map((f) => f.type),
      ['SpeechStarted', 'Results', 'Results', 'UtteranceEnd', 'Metadata'],
    );
    for (const f of frames) assert.ok(listenServerMessageSchema.safeParse(f).success, JSON.stringify(f));
    assert.deepEqual(frames[1]!.channel_index, [1, 2]);
    assert.equal((frames[2]!.channel as { alternatives: { words: object[] }[] }).alternatives[0]!.words.length, 2);
    assert.equal(d.encode({ kind: 'error', code: 'invalid_audio' as never, message: 'x' }).length, 0, 'no error frames in v1');
  });

  it('maps errors to the close codes of §2.5', () => {
    assert.deepEqual([listenCloseFor('idle_timeout_exceeded', 'x').code, listenCloseFor('idle_timeout_exceeded', 'x').reason.slice(0, 8)], [1011, 'NET-0001']);
    assert.equal(listenCloseFor('invalid_request', 'bad').code, 1008);
    assert.match(listenCloseFor('invalid_request', 'bad').reason, /^DATA-0000: bad$/);
    assert.equal(listenCloseFor('payload_too_large', 'x').code, 1009);
    assert.equal(listenCloseFor('internal_error', 'x').code, 1011);
    assert.ok(Buffer.byteLength(listenCloseFor('invalid_request', 'é'.repeat(200)).reason) <= 123);
  });
});

describe('smallest.ai Lightning / Pulse (§4.1–4.2)', () => {
  it('parses the query with the documented defaults and rejects bad values', () => {
    const o = parseSmallestQuery(new URLSearchParams(''));
    assert.deepEqual([o.language, o.encoding, o.sampleRate, o.wordTimestamps, o.fullTranscript, o.eouTimeoutMs], ['en', 'linear16', 16000, true, false, 800]);
    assert.equal(smallestInit(parseSmallestQuery(new URLSearchParams('encoding=ogg_opus'))).encoding, 'ogg-opus');
    for (const q of ['sample_rate=7', 'encoding=mp3', 'eou_timeout_ms=50', 'numerals=sometimes', 'word_timestamps=yes']) {
      assert.throws(() => parseSmallestQuery(new URLSearchParams(q)), (e: unknown) => e instanceof VoxgateError && e.code === 'config_error', q);
    }
  });

  it('control messages differ between Lightning and Pulse', () => {
    assert.equal(parseSmallestText('{"type":"end"}', 'lightning').kind, 'close');
    assert.equal(parseSmallestText('{"type":"finalize"}', 'lightning').kind, 'close');
    assert.equal(parseSmallestText('{"type":"finalize"}', 'pulse').kind, 'finalize');
    assert.equal(parseSmallestText('{"type":"close_stream"}', 'pulse').kind, 'close');
    assert.equal(parseSmallestText('{"type":"x"}', 'pulse').kind, 'invalid');
    assert.equal(parseSmallestText('not json', 'pulse').kind, 'invalid');
  });

  it('encodes a recorded session: full_transcript accumulates, is_last once at the end, errors in its shape', () => {
    const d = createSmallestDialect(parseSmallestQuery(new URLSearchParams('full_transcript=true&format=false&vad_events=true')), 'pulse');
    const frames = [
      { kind: 'speech_started', info, timestamp: 0.28 },
      { kind: 'partial', info, result: { transcript: 'go', start: 0.3, duration: 0.3 } },
      final(),
      final({ transcript: 'ten meters', words: [], speechFinal: false, fromFinalize: true }),
      { kind: 'error', code: 'invalid_request', message: 'bad frame' },
      { kind: 'ended', info, audioSeconds: 3, sha256: '' },
    ]
      .flatMap((e) => d.encode(e as SessionEvent))
      .map((f) => JSON.parse(f) as Record<string, unknown>);
    assert.equal(frames[0]!.type, 'speech_started');
    assert.deepEqual(frames[1], { session_id: 'sess_x', transcript: 'go', is_final: false, is_last: false, full_transcript: 'go' });
    assert.equal(frames[2]!.full_transcript, 'go forward');
    assert.equal(frames[3]!.type, 'speech_ended');
    assert.equal(frames[4]!.full_transcript, 'go forward ten meters');
    assert.equal(frames[4]!.from_finalize, true);
    assert.deepEqual(frames[5], { status: 'error', error: { message: 'bad frame', code: 'invalid_request' } });
    assert.equal(frames[6]!.is_last, true);
    assert.equal(frames.filter((f) => f.is_last === true).length, 1);
  });
});
