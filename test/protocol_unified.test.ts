/**
 * Unit tests of the unified dialect (protocols.md §1.3) on recorded message sequences, no socket.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { unifiedDialect } from '../src/protocol/unified/index.js';
import { serverMessageSchema } from '../src/protocol/unified/schema.js';
import { testSessionInfo } from './session_info.js';

const info = testSessionInfo({ sessionId: 'sess_x', requestId: '6f1c2a34-5b6d-4e7f-8a9b-0c1d2e3f4a5b', vadEvents: false });

describe('unified dialect: client frames', () => {
  it('parses a PipeCat-style session (init, binary-equivalent base64 audio, finalize, keepalive, close)', () => {
    const recorded = [
      '{"type":"init","config":{"language":"en","sample_rate":16000,"encoding":"linear16","enable_vad":true,"enable_partials":true,"unknown_key":42}}',
      '{"type":"audio","data":"AAABAP//"}',
      '{"type":"keepalive"}',
      '{"type":"finalize"}',
      '{"type":"close"}',
    ];
    const cmds = recorded.map((t) => unifiedDialect.parseText(t));
    assert.deepEqual(cmds[0], {
      kind: 'init',
      init: { language: 'en', sampleRate: 16000, encoding: 'linear16', channels: undefined, partials: true, vad: true, wordTimestamps: undefined, endpointingMs: undefined, vadEvents: undefined },
    });
    assert.equal(cmds[1]!.kind, 'audio');
    assert.deepEqual([...(cmds[1] as { data: Uint8Array }).data], [0, 0, 1, 0, 255, 255]);
    assert.deepEqual(cmds.slice(2).map((c) => c.kind), ['keepalive', 'finalize', 'close']);
  });

  it('maps endpointing=false to disabled and the SLNG CLI alias enable_partial_transcripts', () => {
    const c = unifiedDialect.parseText('{"type":"init","config":{"endpointing":false,"enable_partial_transcripts":true,"enable_word_timestamps":true}}');
    assert.equal(c.kind, 'init');
    if (c.kind !== 'init') return;
    assert.equal(c.init.endpointingMs, null);
    assert.equal(c.init.partials, true);
    assert.equal(c.init.wordTimestamps, true);
  });

  it('init without config is valid', () => {
    assert.deepEqual(unifiedDialect.parseText('{"type":"init"}'), { kind: 'init', init: {} });
  });

  it('rejects malformed JSON, missing/unknown type and bad base64 as invalid_request', () => {
    for (const bad of ['{not json', '[]', '"x"', '{"kind":"init"}', '{"type":"transcribe"}', '{"type":"audio","data":"%%%"}', '{"type":"audio"}']) {
      const c = unifiedDialect.parseText(bad);
      assert.equal(c.kind, 'invalid', bad);
      if (c.kind === 'invalid') {
        assert.equal(c.code, 'invalid_request', bad);
        assert.ok(c.message.length > 0);
      }
    }
  });

  it('reports wrongly typed init fields as config_error', () => {
    const c = unifiedDialect.parseText('{"type":"init","config":{"sample_rate":"16000"}}');
    assert.equal(c.kind, 'invalid');
    if (c.kind === 'invalid') {
      assert.equal(c.code, 'config_error');
      assert.match(c.message, /sample_rate/);
    }
  });
});

describe('unified dialect: server frames', () => {
  const frames = (ev: Parameters<typeof unifiedDialect.encode>[0]) => unifiedDialect.encode(ev).map((f) => JSON.parse(f));

  it('encodes a session sequence; every frame matches the schema', () => {
    const seq = [
      ...frames({ kind: 'ready', info }),
      ...frames({ kind: 'partial', info, result: { transcript: 'go for', start: 0.1, duration: 0.8 } }),
      ...frames({
        kind: 'final',
        info,
        result: {
          transcript: 'go forward ten meters',
          confidence: 0.91234,
          words: [{ word: 'go', start: 0.21, end: 0.4, confidence: 0.99 }],
          start: 0.1,
          duration: 2.3,
          language: 'en',
          speechFinal: true,
          fromFinalize: false,
        },
      }),
      ...frames({ kind: 'error', code: 'invalid_request', message: 'malformed JSON text frame' }),
    ];
    assert.deepEqual(seq.map((m) => m.type), ['ready', 'partial_transcript', 'final_transcript', 'error']);
    for (const m of seq) serverMessageSchema.parse(m);
    assert.equal(seq[0].session_id, 'sess_x');
    assert.equal(seq[2].confidence, 0.912);
    assert.equal(seq[2].speech_final, true);
    assert.equal(seq[2].from_finalize, false);
    assert.equal(seq[2].words[0].word, 'go');
  });

  it('drops empty finals unless they answer finalize; omits words unless requested', () => {
    const base = { transcript: '', confidence: 0, start: 1, duration: 0, language: 'en', speechFinal: true, fromFinalize: false };
    assert.deepEqual(frames({ kind: 'final', info, result: base }), []);
    const f = frames({ kind: 'final', info, result: { ...base, fromFinalize: true, speechFinal: false } });
    assert.equal(f.length, 1);
    assert.equal(f[0].from_finalize, true);
    assert.equal('words' in f[0], false);
    serverMessageSchema.parse(f[0]);
  });

  it('sends nothing for speech_started and ended (no such frames in §1.3)', () => {
    assert.deepEqual(frames({ kind: 'speech_started', info, timestamp: 1 }), []);
    assert.deepEqual(frames({ kind: 'ended', info, audioSeconds: 3, sha256: 'x' }), []);
  });
});
