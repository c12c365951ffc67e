/**
 * TTS wire dialects and option validation as pure units, on recorded message sequences:
 * SLNG unified TTS (protocols.md §1.5) and Deepgram `/v1/speak` (§3). Every frame a dialect emits
 * is validated against the dialect's strict server schema.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createUnifiedTtsDialect, parseUnifiedTtsFrame } from '../src/protocol/tts-unified/index.js';
import { ttsServerMessageSchema } from '../src/protocol/tts-unified/schema.js';
import { createDeepgramSpeakDialect, nameUuid } from '../src/protocol/deepgram-speak/index.js';
import { speakServerMessageSchema } from '../src/protocol/deepgram-speak/schema.js';
import { parseSpeakQuery } from '../src/protocol/deepgram-speak/query.js';
import type { TtsEvent, TtsSessionInfo } from '../src/protocol/tts_events.js';
import { FLITE_CAPABILITIES } from '../src/engines/tts/flite/index.js';
import type { TtsEngine } from '../src/engines/tts/types.js';
import { DEFAULT_TTS_MODELS } from '../src/config/tts_config.js';
import { resolveTtsOptions } from '../src/session/tts_options.js';
import { VoxgateError } from '../src/util/errors.js';

const info: TtsSessionInfo = {
  sessionId: 'sess_tts_x',
  requestId: '0b6e8f3c-0a43-4b4f-9d2e-6a1f3c2b1a00',
  model: DEFAULT_TTS_MODELS[0]!,
  voice: FLITE_CAPABILITIES.voices[0]!,
  voiceName: 'aura-asteria-en',
  engine: { id: 'flite', version: 'flite-2.2-current' },
  encoding: 'linear16',
  sampleRate: 24000,
};

/** A recorded server-side event sequence: ready, one segment with two audio chunks, flush, clear, error. */
const EVENTS: TtsEvent[] = [
  { kind: 'ready', info },
  { kind: 'segment_start', segmentId: 'seg_001' },
  { kind: 'audio', data: Buffer.from([1, 2, 3, 4]), sequence: 1 },
  { kind: 'audio', data: Buffer.from([5, 6]), sequence: 2 },
  { kind: 'segment_end', segmentId: 'seg_001' },
  { kind: 'audio_end', duration: 1.23456 },
  { kind: 'flushed', sequenceId: 0 },
  { kind: 'cleared', sequenceId: 0 },
  { kind: 'warning', code: 'FLUSH_LIMIT_EXCEEDED', description: 'too many' },
  { kind: 'error', code: 'provider_error', message: 'engine failed' },
];

describe('unified TTS dialect (§1.5)', () => {
  it('parses the documented client messages, LiveKit extras and tolerates unknown keys', () => {
    assert.deepEqual(parseUnifiedTtsFrame('{"type":"init","model":"aura:2","voice":"aura-2-thalia-en","config":{"sample_rate":24000,"encoding":"linear16","language":"en","speed":1.0,"extra":1}}', 100), {
      kind: 'init',
      init: { model: 'aura:2', voice: 'aura-2-thalia-en', language: 'en', encoding: 'linear16', sampleRate: 24000, speed: 1 },
    });
    assert.deepEqual(parseUnifiedTtsFrame('{"type":"init","language":"hi"}', 100), { kind: 'init', init: { model: undefined, voice: undefined, language: 'hi', encoding: undefined, sampleRate: undefined, speed: undefined } });
    assert.deepEqual(parseUnifiedTtsFrame('{"type":"text","text":"Hello from SLNG.","flush":false}', 100), { kind: 'text', text: 'Hello from SLNG.', flush: false });
    assert.deepEqual(parseUnifiedTtsFrame('{"type":"text","text":"x","flush":true}', 100), { kind: 'text', text: 'x', flush: true });
    for (const t of ['flush', 'clear', 'cancel', 'close', 'keepalive']) assert.deepEqual(parseUnifiedTtsFrame(JSON.stringify({ type: t }), 100), { kind: t });
  });

  it('rejects bad frames with the right code and no close', () => {
    const cases: [string, string, RegExp][] = [
      ['not json', 'invalid_request', /malformed JSON/],
      ['[1,2]', 'invalid_request', /JSON objects/],
      ['{"text":"x"}', 'invalid_request', /missing "type"/],
      ['{"type":"speak","text":"x"}', 'invalid_request', /unknown message type "speak"/],
      ['{"type":"text"}', 'invalid_request', /invalid "text"/],
      ['{"type":"init","config":{"sample_rate":"fast"}}', 'config_error', /invalid init config/],
      [JSON.stringify({ type: 'text', text: 'x'.repeat(101) }), 'payload_too_large', /101 characters exceeds the 100-character limit/],
    ];
    for (const [frame, code, msg] of cases) {
      const c = parseUnifiedTtsFrame(frame, 100);
      assert.equal(c.kind, 'invalid', frame);
      if (c.kind !== 'invalid') continue;
      assert.equal(c.code, code, frame);
      assert.match(c.message, msg);
      assert.equal(c.close, undefined);
    }
  });

  it('encodes a recorded event sequence into schema-valid frames, binary or base64 per catalogue entry', () => {
    for (const audio of ['binary', 'base64'] as const) {
      const d = createUnifiedTtsDialect({ audio, maxTextChars: 100 });
      const frames = EVENTS.flatMap((e) => d.encode(e));
      const text = frames.filter((f): f is string => typeof f === 'string').map((f) => JSON.parse(f) as { type: string; data?: string; sequence?: number; duration?: number });
      for (const m of text) assert.ok(ttsServerMessageSchema.safeParse(m).success, JSON.stringify(m));
      assert.deepEqual(
        text.map((m) => m.type),
        ['ready', 'segment_start', ...(audio === 'base64' ? ['audio_chunk', 'audio_chunk'] : []), 'segment_end', 'audio_end', 'flushed', 'cleared', 'error'],
      );
      const binary = frames.filter((f): f is Buffer => Buffer.isBuffer(f));
      if (audio === 'binary') {
        assert.deepEqual(binary.map((b) => [...b]), [[1, 2, 3, 4], [5, 6]]);
      } else {
        assert.equal(binary.length, 0);
        const chunks = text.filter((m) => m.type === 'audio_chunk');
        assert.deepEqual(chunks.map((c) => [...Buffer.from(c.data!, 'base64')]), [[1, 2, 3, 4], [5, 6]]);
        assert.deepEqual(chunks.map((c) => c.sequence), [1, 2]);
      }
      assert.equal(text.find((m) => m.type === 'audio_end')!.duration, 1.235, 'duration in seconds, ms precision');
    }
  });

  it('rejects binary and oversized frames without closing; fatal errors close with the catalogue code', () => {
    const d = createUnifiedTtsDialect({ audio: 'binary', maxTextChars: 100 });
    const b = d.binaryFrame(10);
    assert.equal(b.kind === 'invalid' && b.close, undefined);
    assert.equal(b.kind === 'invalid' && b.code, 'invalid_request');
    assert.deepEqual(d.closeFor('config_error'), { code: 1008, reason: 'config_error' });
    assert.deepEqual(d.closeFor('provider_error'), { code: 1011, reason: 'provider_error' });
    assert.deepEqual(d.closeFor('backpressure'), { code: 1008, reason: 'backpressure' });
  });

  it('error frames carry SLNG codes only (seed 003): engine failures are provider_error, unknown models invalid_request', () => {
    const d = createUnifiedTtsDialect({ audio: 'binary', maxTextChars: 100 });
    const code = (c: 'internal_error' | 'not_found' | 'invalid_audio' | 'rate_limit') => (d.encode({ kind: 'error', code: c, message: 'detail' })[0] as unknown as string);
    assert.deepEqual(JSON.parse(code('internal_error')), { type: 'error', code: 'provider_error', message: 'detail' });
    assert.equal(JSON.parse(code('not_found')).code, 'invalid_request');
    assert.equal(JSON.parse(code('invalid_audio')).code, 'invalid_request');
    assert.equal(JSON.parse(code('rate_limit')).code, 'rate_limit');
  });
});

describe('Deepgram /v1/speak dialect (§3)', () => {
  it('parses Speak/Flush/Clear/Close and encodes Metadata/Flushed/Cleared/Warning matching the schemas', () => {
    const d = createDeepgramSpeakDialect(() => 0);
    assert.deepEqual(d.parseText('{"type":"Speak","text":"Hello, world!"}'), { kind: 'text', text: 'Hello, world!', flush: false });
    assert.deepEqual(d.parseText('{"type":"Flush"}'), { kind: 'flush' });
    assert.deepEqual(d.parseText('{"type":"Clear"}'), { kind: 'clear' });
    assert.deepEqual(d.parseText('{"type":"Close"}'), { kind: 'close' });
    const frames = EVENTS.flatMap((e) => d.encode(e));
    const text = frames.filter((f): f is string => typeof f === 'string').map((f) => JSON.parse(f) as { type: string });
    for (const m of text) assert.ok(speakServerMessageSchema.safeParse(m).success, JSON.stringify(m));
    assert.deepEqual(text.map((m) => m.type), ['Metadata', 'Flushed', 'Cleared', 'Warning', 'Warning']);
    assert.equal((text[0] as unknown as { model_name: string }).model_name, 'aura-asteria-en', 'Metadata echoes the requested voice name');
    assert.deepEqual(frames.filter((f) => Buffer.isBuffer(f)).length, 2, 'audio as raw binary frames');
  });

  it('maps protocol violations to Deepgram close codes', () => {
    const d = createDeepgramSpeakDialect(() => 0);
    const close = (c: ReturnType<typeof d.parseText>) => (c.kind === 'invalid' ? c.close : undefined);
    assert.deepEqual(close(d.parseText('nope')), { code: 1008, reason: 'DATA-0000' });
    assert.deepEqual(close(d.parseText('{"type":"Speak"}')), { code: 1008, reason: 'DATA-0000' });
    assert.deepEqual(close(d.parseText('{"type":"Shout","text":"x"}')), { code: 1008, reason: 'DATA-0000' });
    assert.equal(d.parseText(JSON.stringify({ type: 'Speak', text: 'é'.repeat(2000) })).kind, 'text', '2000 characters are allowed');
    assert.deepEqual(close(d.parseText(JSON.stringify({ type: 'Speak', text: 'x'.repeat(2001) }))), { code: 1009, reason: 'BIG-0001' });
    assert.deepEqual(close(d.binaryFrame(3)), { code: 1003, reason: 'MESSAGE-0000' });
    assert.deepEqual(close(d.oversizedFrame(10, 5)), { code: 1009, reason: 'BIG-0000' });
    assert.deepEqual(d.closeFor('idle_timeout_exceeded'), { code: 1011, reason: 'NET-0001' });
    assert.deepEqual(d.closeFor('provider_error'), { code: 1011, reason: 'NET-0000' });
  });

  it('refuses the 21st Flush in 60 s with a warning (not a flush) and accepts flushes again as the window slides', () => {
    let now = 0;
    const d = createDeepgramSpeakDialect(() => now);
    for (let i = 0; i < 20; i++) {
      now = i * 1000;
      assert.deepEqual(d.parseText('{"type":"Flush"}'), { kind: 'flush' });
    }
    now = 30_000;
    const w = d.parseText('{"type":"Flush"}');
    assert.equal(w.kind, 'warning');
    assert.equal(w.kind === 'warning' && w.code, 'FLUSH_LIMIT_EXCEEDED');
    assert.match(w.kind === 'warning' ? w.description : '', /not processed.*30 s/);
    now = 59_999;
    assert.equal(d.parseText('{"type":"Flush"}').kind, 'warning', 'refused flushes do not count, the first one still holds the window');
    now = 60_000; // the flush at 0 s has left the window
    assert.deepEqual(d.parseText('{"type":"Flush"}'), { kind: 'flush' });
    assert.equal(d.parseText('{"type":"Flush"}').kind, 'warning');
    now = 61_000;
    assert.deepEqual(d.parseText('{"type":"Flush"}'), { kind: 'flush' });
  });

  it('parses the query: defaults, numbers, containers; model_uuid is stable per voice', () => {
    assert.deepEqual(parseSpeakQuery(new URLSearchParams('')), { model: 'aura-asteria-en', encoding: undefined, sampleRate: undefined, speed: undefined, container: undefined });
    assert.deepEqual(parseSpeakQuery(new URLSearchParams('model=kal16&encoding=mulaw&sample_rate=8000&speed=1.2&container=none&mip_opt_out=true')), { model: 'kal16', encoding: 'mulaw', sampleRate: 8000, speed: 1.2, container: 'none' });
    assert.throws(() => parseSpeakQuery(new URLSearchParams('sample_rate=fast')), /not a number/);
    assert.throws(() => parseSpeakQuery(new URLSearchParams('container=mp4')), /not supported/);
    assert.equal(nameUuid('flite/kal16'), nameUuid('flite/kal16'));
    assert.notEqual(nameUuid('flite/kal16'), nameUuid('flite/slt'));
    assert.match(nameUuid('x'), /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-8[0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

describe('TTS option validation', () => {
  const engine = { capabilities: FLITE_CAPABILITIES } as unknown as TtsEngine;
  const model = DEFAULT_TTS_MODELS[0]!;
  const err = (fn: () => unknown): VoxgateError => {
    try {
      fn();
    } catch (e) {
      assert.ok(e instanceof VoxgateError);
      return e;
    }
    throw new Error('expected a config_error');
  };

  it('applies defaults: default voice, linear16 at 24 kHz, G.711 at 8 kHz, opus at 48 kHz, speed 1', () => {
    const r = resolveTtsOptions({}, model, engine);
    assert.deepEqual([r.voice.id, r.encoding, r.sampleRate, r.speed], ['kal16', 'linear16', 24000, 1]);
    assert.equal(resolveTtsOptions({ encoding: 'mulaw' }, model, engine).sampleRate, 8000);
    assert.equal(resolveTtsOptions({ encoding: 'opus' }, model, engine).sampleRate, 48000);
    assert.equal(resolveTtsOptions({ voice: 'SLT', language: 'en-US' }, model, engine).voice.id, 'slt');
    assert.equal(resolveTtsOptions({ voice: 'aura-2-thalia-en' }, model, engine).voice.id, 'kal16', 'Aura names map to the default voice of their language');
    assert.equal(resolveTtsOptions({ language: 'en-GB' }, model, engine).voice.id, 'kal16', 'the default voice wins when it speaks the language');
  });

  it('rejects unknown voices (naming the available ones), languages, encodings, rates and speeds', () => {
    const v = err(() => resolveTtsOptions({ voice: 'nobody' }, model, engine));
    assert.equal(v.code, 'config_error');
    assert.match(v.message, /unknown voice "nobody".*available voices: kal16, slt, rms, awb, kal/);
    assert.match(err(() => resolveTtsOptions({ voice: 'aura-2-celeste-es' }, model, engine)).message, /language "es"/);
    assert.match(err(() => resolveTtsOptions({ language: 'hi' }, model, engine)).message, /unsupported language "hi".*supported: en/);
    assert.match(err(() => resolveTtsOptions({ voice: 'slt', language: 'fr' }, model, engine)).message, /does not speak/);
    assert.match(err(() => resolveTtsOptions({ encoding: 'flac' }, model, engine)).message, /unsupported encoding "flac"; supported: linear16, mulaw, alaw, mp3, opus/);
    assert.match(err(() => resolveTtsOptions({ encoding: 'mp3' }, model, engine, ['linear16', 'mulaw', 'alaw'])).message, /supported: linear16, mulaw, alaw$/);
    assert.match(err(() => resolveTtsOptions({ sampleRate: 11025 }, model, engine)).message, /unsupported sample_rate 11025/);
    assert.match(err(() => resolveTtsOptions({ encoding: 'opus', sampleRate: 44100 }, model, engine)).message, /supported: 8000, 16000, 24000, 48000/);
    assert.match(err(() => resolveTtsOptions({ speed: 2.5 }, model, engine)).message, /speed 2.5 is out of range; supported: 0.5–2/);
    assert.match(err(() => resolveTtsOptions({ speed: 0.4 }, model, engine)).message, /out of range/);
    assert.equal(resolveTtsOptions({ speed: 2 }, model, engine).speed, 2);
  });
});
