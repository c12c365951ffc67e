/**
 * Issue 9 §3 "Shapes and codes real clients read", STT side — pure dialect tests on recorded event
 * sequences (no I/O): interim words/confidence on Deepgram `Results` (§2.4, §1.4), smallest.ai's
 * `word_timestamps` / `full_transcript` (§4.1, seed 002), lenient no-op parameters (§2.2), SLNG error
 * codes (§1.3), and Pulse `speech_ended` timing and pairing (§4.2).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createListenDialect } from '../src/protocol/deepgram/listen.js';
import { parseListenQuery } from '../src/protocol/deepgram/query.js';
import { listenResultsSchema } from '../src/protocol/deepgram/schema.js';
import { deepgramStyleDialect } from '../src/protocol/deepgram-style/index.js';
import { serverMessageSchema as deepgramStyleSchema } from '../src/protocol/deepgram-style/schema.js';
import { unifiedDialect } from '../src/protocol/unified/index.js';
import { createSmallestDialect, parseSmallestQuery } from '../src/protocol/smallest/index.js';
import { interimWords } from '../src/protocol/interim.js';
import type { SessionEvent, SessionInfo, SttDialect } from '../src/protocol/events.js';
import type { SttFinal, SttPartial } from '../src/engines/stt/types.js';
import { testSessionInfo } from './session_info.js';
import { VoxgateError, type ErrorCode } from '../src/util/errors.js';

const info: SessionInfo = testSessionInfo();
type Json = Record<string, unknown>;
const encode = (d: SttDialect, evs: SessionEvent[]): Json[] => evs.flatMap((e) => d.encode(e)).map((f) => JSON.parse(f) as Json);
const partial = (result: SttPartial): SessionEvent => ({ kind: 'partial', info, result });
const final = (over: Partial<SttFinal> = {}): SessionEvent => ({
  kind: 'final',
  info,
  result: {
    transcript: 'go forward',
    confidence: 0.85,
    words: [
      { word: 'go', start: 0.31234, end: 0.5, confidence: 0.9 },
      { word: 'forward', start: 0.5, end: 0.9, confidence: 0.8 },
    ],
    start: 0.3,
    duration: 1.4, // includes the 800 ms end-of-utterance wait after "forward" ends at 0.9
    language: 'en',
    speechFinal: true,
    fromFinalize: false,
    ...over,
  },
});
type Alt = { transcript: string; confidence: number; words: { word: string; start: number; end: number; confidence: number; punctuated_word?: string }[] };
const alt = (m: Json): Alt => (m.channel as { alternatives: Alt[] }).alternatives[0]!;

describe('interim Results carry words and a confidence (issue 9 §3, §2.4)', () => {
  const noWords: SttPartial = { transcript: 'go forward ten', start: 0.3, duration: 1.2 };
  const withWords: SttPartial = {
    transcript: 'go forward',
    start: 0.3,
    duration: 0.7,
    confidence: 0.77,
    words: [
      { word: 'go', start: 0.30049, end: 0.5004, confidence: 0.91 },
      { word: 'forward', start: 0.5004, end: 0.95, confidence: 0.66 },
    ],
  };

  for (const [name, d, schema] of [
    ['/v1/listen', createListenDialect(parseListenQuery(new URLSearchParams('interim_results=true'))), listenResultsSchema],
    ['deepgram-style', deepgramStyleDialect, deepgramStyleSchema],
  ] as const) {
    it(`${name}: an interim without engine words gets one word per token spread over its span, and a confidence`, () => {
      const [m] = encode(d, [partial(noWords)]).filter((f) => f.type === 'Results');
      assert.ok(m && schema.safeParse(m).success, JSON.stringify(m));
      assert.equal(m.is_final, false);
      const a = alt(m);
      assert.deepEqual(
        a.words.map((w) => w.word),
        ['go', 'forward', 'ten'],
      );
      assert.ok(a.confidence > 0 && a.confidence <= 1, `confidence ${a.confidence}`);
      assert.equal(a.words[0]!.start, 0.3);
      assert.equal(a.words.at(-1)!.end, 1.5);
      for (let i = 0; i < a.words.length; i++) {
        const w = a.words[i]!;
        assert.ok(w.end > w.start && w.confidence > 0, JSON.stringify(w));
        if (i > 0) assert.ok(w.start >= a.words[i - 1]!.end - 1e-9, 'words in order');
        assert.equal(Math.round(w.start * 1000) / 1000, w.start, 'rounded to ms like finals');
      }
    });

    it(`${name}: an interim with engine words renders them (rounded) and its confidence`, () => {
      const [m] = encode(d, [partial(withWords)]).filter((f) => f.type === 'Results');
      assert.ok(m && schema.safeParse(m).success, JSON.stringify(m));
      const a = alt(m);
      assert.equal(a.confidence, 0.77);
      assert.deepEqual(
        a.words.map((w) => [w.word, w.start, w.end, w.confidence]),
        [
          ['go', 0.3, 0.5, 0.91],
          ['forward', 0.5, 0.95, 0.66],
        ],
      );
    });
  }

  it('/v1/listen with smart_format: interim words carry punctuated_word like finals', () => {
    const d = createListenDialect(parseListenQuery(new URLSearchParams('interim_results=true&smart_format=true')));
    const [m] = encode(d, [partial(noWords)]);
    const a = alt(m!);
    assert.equal(a.words[0]!.punctuated_word, 'Go');
    assert.equal(a.transcript, a.words.map((w) => w.punctuated_word).join(' '));
  });

  it('interimWords: empty transcript → no words; engine confidence wins; clamps to [0, 1]', () => {
    assert.deepEqual(interimWords({ transcript: '', start: 0, duration: 1 }).words, []);
    assert.equal(interimWords({ ...noWords, confidence: 0.4 }).confidence, 0.4);
    assert.equal(interimWords({ ...noWords, confidence: 3 }).confidence, 1);
    const noConf = interimWords({ ...withWords, confidence: undefined });
    assert.ok(Math.abs(noConf.confidence - (0.91 + 0.66) / 2) < 1e-9);
  });
});

describe('smallest.ai transcript shape (issue 9 §3, seed 002 "Handling Responses")', () => {
  it('the word array is word_timestamps (repeated as §4.1 words), full_transcript is in every transcript frame', () => {
    const d = createSmallestDialect(parseSmallestQuery(new URLSearchParams('format=false')), 'lightning');
    const frames = encode(d, [
      partial({ transcript: 'go', start: 0.3, duration: 0.3 }),
      final(),
      partial({ transcript: 'ten', start: 2, duration: 0.3 }),
      final({ transcript: 'ten meters', words: [{ word: 'ten', start: 2, end: 2.2, confidence: 0.9 }, { word: 'meters', start: 2.2, end: 2.6, confidence: 0.9 }], start: 2 }),
      { kind: 'ended', info, audioSeconds: 3, sha256: '' },
    ]);
    assert.deepEqual(
      frames.map((f) => f.full_transcript),
      ['go', 'go forward', 'go forward ten', 'go forward ten meters', 'go forward ten meters'],
    );
    for (const f of frames) assert.deepEqual(f.words, f.word_timestamps, JSON.stringify(f));
    assert.deepEqual(frames[1]!.word_timestamps, [
      { word: 'go', start: 0.312, end: 0.5, confidence: 0.9 },
      { word: 'forward', start: 0.5, end: 0.9, confidence: 0.8 },
    ]);
    assert.equal(frames[0]!.word_timestamps, undefined, 'interims carry no word array');
  });

  it('word_timestamps=false: no word array at all', () => {
    const d = createSmallestDialect(parseSmallestQuery(new URLSearchParams('word_timestamps=false')), 'pulse');
    for (const f of encode(d, [final(), { kind: 'ended', info, audioSeconds: 3, sha256: '' }])) {
      assert.equal('word_timestamps' in f || 'words' in f, false, JSON.stringify(f));
    }
  });
});

describe('documented no-op parameters are read leniently (issue 9 §3, §2.2)', () => {
  it("Mastra's diarize=undefined and other unparseable no-op booleans mean the default", () => {
    const o = parseListenQuery(new URLSearchParams('diarize=undefined&filler_words=null&profanity_filter=1&mip_opt_out=yes&interim_results=true'));
    assert.deepEqual([o.diarize, o.fillerWords, o.profanityFilter, o.mipOptOut, o.interimResults], [false, false, false, false, true]);
  });

  it('honoured parameters stay strict', () => {
    for (const q of ['interim_results=undefined', 'punctuate=1', 'vad_events=yes', 'smart_format=null']) {
      assert.throws(() => parseListenQuery(new URLSearchParams(q)), (e: unknown) => e instanceof VoxgateError && e.code === 'config_error', q);
    }
  });

  it('smallest.ai: full_transcript (now always sent) never rejects', () => {
    assert.equal(parseSmallestQuery(new URLSearchParams('full_transcript=undefined')).fullTranscript, false);
  });
});

describe('SLNG dialects use SLNG error codes (issue 9 §3, §1.3)', () => {
  const SLNG = new Set(['auth_error', 'config_error', 'rate_limit', 'provider_error', 'backend_connection_failed', 'invalid_request', 'payload_too_large', 'idle_timeout_exceeded', 'max_connection_duration_exceeded', 'backpressure']);
  const all: ErrorCode[] = ['auth_error', 'config_error', 'invalid_request', 'invalid_audio', 'payload_too_large', 'rate_limit', 'idle_timeout_exceeded', 'max_connection_duration_exceeded', 'not_found', 'backpressure', 'provider_error', 'internal_error', 'unavailable'];
  for (const [name, d] of [
    ['unified', unifiedDialect],
    ['deepgram-style', deepgramStyleDialect],
  ] as const) {
    it(`${name}: every code is on the SLNG list; the detail stays in message`, () => {
      for (const code of all) {
        const [m] = encode(d, [{ kind: 'error', code, message: `detail of ${code}` }]);
        assert.ok(SLNG.has(m!.code as string), `${code} → ${String(m!.code)}`);
        assert.equal(m!.message, `detail of ${code}`);
      }
      const code = (c: ErrorCode) => encode(d, [{ kind: 'error', code: c, message: 'x' }])[0]!.code;
      assert.deepEqual([code('invalid_audio'), code('not_found'), code('internal_error')], ['invalid_request', 'invalid_request', 'provider_error']);
    });
  }
});

describe('Pulse speech_ended (issue 9 §3, §4.2)', () => {
  const pulse = () => createSmallestDialect(parseSmallestQuery(new URLSearchParams('vad_events=true&eou_timeout_ms=800')), 'pulse');
  const started = (timestamp: number): SessionEvent => ({ kind: 'speech_started', info, timestamp });
  const vad = (frames: Json[]) => frames.filter((f) => f.type === 'speech_started' || f.type === 'speech_ended').map((f) => [f.type, f.timestamp]);

  it('an endpointed utterance ends when its last word ends, not after the end-of-utterance wait', () => {
    assert.deepEqual(vad(encode(pulse(), [started(0.28), final()])), [
      ['speech_started', 0.28],
      ['speech_ended', 0.9],
    ]);
  });

  it('without words: the final end minus the eou wait', () => {
    const frames = encode(pulse(), [started(0.28), final({ transcript: '', words: [], start: 0.2, duration: 1.6 })]);
    assert.deepEqual(vad(frames), [
      ['speech_started', 0.28],
      ['speech_ended', 1],
    ]);
  });

  it('an utterance closed by finalize gets its speech_ended, after the from_finalize final', () => {
    const frames = encode(pulse(), [started(0.28), final({ speechFinal: false, fromFinalize: true, duration: 0.7 })]);
    assert.deepEqual(vad(frames), [
      ['speech_started', 0.28],
      ['speech_ended', 0.9],
    ]);
    assert.equal(frames[1]!.from_finalize, true);
    assert.equal(frames[2]!.type, 'speech_ended');
  });

  it('every speech_started gets exactly one speech_ended: max-length cuts do not end speech, the end of the stream does', () => {
    const frames = encode(pulse(), [
      started(0.28),
      final({ speechFinal: false, fromFinalize: false }), // max utterance length: speech goes on
      started(3), // (not produced by our engines while one is open; still paired)
      final({ speechFinal: false, fromFinalize: false, words: [{ word: 'on', start: 3.1, end: 3.4, confidence: 0.9 }], start: 3, duration: 0.6 }), // close() drain
      { kind: 'ended', info, audioSeconds: 3.6, sha256: '' },
      final({ fromFinalize: true, speechFinal: false, transcript: '', words: [] }), // finalize with no open speech
    ]);
    assert.deepEqual(vad(frames), [
      ['speech_started', 0.28],
      ['speech_ended', 3],
      ['speech_started', 3],
      ['speech_ended', 3.4],
    ]);
    assert.equal(frames.findIndex((f) => f.is_last === true), frames.findIndex((f) => f.type === 'speech_ended' && f.timestamp === 3.4) + 1, 'speech_ended before is_last');
  });

  it('Pulse with vad_events asks the session for words (needed for speech_ended), Lightning does not', () => {
    assert.equal(pulse().alwaysWords, true);
    assert.equal(createSmallestDialect(parseSmallestQuery(new URLSearchParams('vad_events=true')), 'lightning').alwaysWords, false);
  });
});
