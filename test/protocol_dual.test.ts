/**
 * Unit tests of the `dual` STT dialect (src/protocol/dual/; protocols.md §1.3 + §1.4), no socket:
 * a recorded session's events are encoded, then read back by three simulated clients — one that
 * knows only the unified family (seed 000's quick-start), one that knows only the Deepgram-shaped
 * family (seed 001/004's reference, LiveKit-like), and one that reads both (the LiveKit SLNG plugin,
 * which maps `Results` to transcripts and also reads `final_transcript`).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { dualDialect, encodeDual } from '../src/protocol/dual/index.js';
import { serverMessageSchema as unifiedSchema } from '../src/protocol/unified/schema.js';
import { serverMessageSchema as dgStyleSchema } from '../src/protocol/deepgram-style/schema.js';
import type { SessionEvent, SessionInfo } from '../src/protocol/events.js';
import { DEFAULT_STT_MODELS, STT_DIALECTS } from '../src/config/config.js';
import { STT_DIALECT_IMPLS } from '../src/protocol/index.js';
import { testSessionInfo } from './session_info.js';

const model = DEFAULT_STT_MODELS.find((m) => m.code === 'slng/deepgram/nova:3-en')!;
const info: SessionInfo = testSessionInfo({ sessionId: 'sess_d', model, vadEvents: false });

/** A recorded session: open, an interim, a final with words, an empty finalize answer, an error, the end. */
function recorded(i: SessionInfo): SessionEvent[] {
  return [
    { kind: 'ready', info: i },
    { kind: 'partial', info: i, result: { transcript: 'the horizon', start: 0, duration: 1.2 } },
    {
      kind: 'final',
      info: i,
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
    },
    { kind: 'utterance_end', info: i, lastWordEnd: 0.7 },
    { kind: 'final', info: i, result: { transcript: '', confidence: 0, words: [], start: 3.52, duration: 0, language: 'en', speechFinal: false, fromFinalize: true } },
    { kind: 'error', code: 'invalid_audio', message: 'undecodable audio' },
    { kind: 'ended', info: i, audioSeconds: 5, sha256: 'ab'.repeat(32) },
  ];
}

const wire = (events: SessionEvent[]) => events.flatMap((e) => dualDialect.encode(e)).map((f) => JSON.parse(f) as Record<string, any>);

/** Seed 000 style: switch on the unified types, ignore anything else. */
function unifiedReader(frames: Record<string, any>[]) {
  const out = { ready: 0, partials: [] as string[], finals: [] as string[], errors: [] as string[] };
  for (const m of frames) {
    if (m.type === 'ready') out.ready++;
    else if (m.type === 'partial_transcript') out.partials.push(m.transcript);
    else if (m.type === 'final_transcript') out.finals.push(m.transcript);
    else if (m.type === 'error') out.errors.push(m.code);
  }
  return out;
}

/** Seed 001/004 style: Metadata/Results/Error only. */
function deepgramReader(frames: Record<string, any>[]) {
  const out = { metadata: 0, interims: [] as string[], finals: [] as string[], errors: [] as string[] };
  for (const m of frames) {
    if (m.type === 'Metadata') out.metadata++;
    else if (m.type === 'Results') (m.is_final ? out.finals : out.interims).push(m.channel.alternatives[0].transcript);
    else if (m.type === 'Error') out.errors.push(m.code);
  }
  return out;
}

/** The LiveKit SLNG plugin's recv loop (livekit-plugins-slng stt.py): `Results` AND `*_transcript`, non-empty only. */
function livekitReader(frames: Record<string, any>[]) {
  const finals: string[] = [];
  const errors: string[] = [];
  for (const m of frames) {
    if (['Metadata', 'SpeechStarted', 'UtteranceEnd'].includes(m.type)) continue;
    let type = m.type;
    let text = m.transcript;
    if (type === 'Results') [type, text] = [m.is_final ? 'final_transcript' : 'partial_transcript', m.channel.alternatives[0].transcript];
    if (type === 'Error') errors.push(m.code);
    if (type === 'final_transcript' && text) finals.push(text);
  }
  return { finals, errors };
}

describe('dual dialect', () => {
  it('is registered under its catalogue name, and the seed STT codes use it', () => {
    assert.ok((STT_DIALECTS as readonly string[]).includes('dual'));
    assert.equal(STT_DIALECT_IMPLS.dual, dualDialect);
    for (const code of ['slng/deepgram/nova:3-en', 'slng/deepgram/nova:3-hi', 'deepgram/nova:3', 'deepgram/nova:2']) {
      assert.equal(DEFAULT_STT_MODELS.find((m) => m.code === code)?.dialect, 'dual', code);
    }
    assert.equal(DEFAULT_STT_MODELS[0]!.code, 'local/pocketsphinx:en', 'the first model (compat default) is unchanged');
  });

  it('renders every event in both families, Deepgram first; each frame fits its own family schema', () => {
    const frames = wire(recorded(info));
    assert.deepEqual(
      frames.map((m) => m.type),
      ['Metadata', 'ready', 'Results', 'partial_transcript', 'Results', 'final_transcript', 'UtteranceEnd', 'Results', 'final_transcript', 'Error', 'error', 'Metadata'],
    );
    for (const m of frames) {
      const dg = dgStyleSchema.safeParse(m);
      const un = unifiedSchema.safeParse(m);
      assert.ok(dg.success !== un.success, `${m.type} belongs to exactly one family`);
    }
    const f = frames[5]!;
    assert.deepEqual(f.words.map((w: { word: string }) => w.word), ['the', 'horizon'], 'final_transcript carries words (alwaysWords)');
    assert.equal(frames[9]!.code, frames[10]!.code);
    assert.equal(frames[9]!.message, frames[10]!.message);
  });

  it('a unified-only reader and a Deepgram-only reader each see every message of their family exactly once', () => {
    const frames = wire(recorded(info));
    assert.deepEqual(unifiedReader(frames), { ready: 1, partials: ['the horizon'], finals: ['the horizon', ''], errors: ['invalid_request'] });
    assert.deepEqual(deepgramReader(frames), { metadata: 2, interims: ['the horizon'], finals: ['the horizon', ''], errors: ['invalid_request'] });
  });

  it('a reader of both families (LiveKit) sees each final twice unless it narrows with init.config.dialect', () => {
    assert.deepEqual(livekitReader(wire(recorded(info))).finals, ['the horizon', 'the horizon']);
    for (const pick of ['deepgram-style', 'unified'] as const) {
      const cmd = dualDialect.parseText(JSON.stringify({ type: 'init', config: { language: 'en', dialect: pick, enable_partials: true } }));
      assert.equal(cmd.kind, 'init');
      const replies = cmd.kind === 'init' ? cmd.init.replies : undefined;
      assert.equal(replies, pick);
      const frames = wire(recorded({ ...info, replies }));
      assert.deepEqual(livekitReader(frames), { finals: ['the horizon'], errors: ['invalid_request'] }, 'one Error (LiveKit ignores lowercase error)');
      const schema = pick === 'unified' ? unifiedSchema : dgStyleSchema;
      const sessionFrames = frames.filter((m) => m.type !== 'Error' && m.type !== 'error');
      for (const m of sessionFrames) schema.parse(m);
      // errors carry no session info: both forms, so either reader still sees it
      assert.deepEqual(frames.filter((m) => m.type.toLowerCase() === 'error').map((m) => m.type), ['Error', 'error']);
    }
  });

  // The LiveKit SLNG plugin reads both families; before, it reported every final twice on a dual
  // route unless its users added `dialect` to the init config by hand.
  it('the LiveKit SLNG plugin is recognised by its init and answered Deepgram-style: each final once, errors raised', () => {
    // build_stt_init_payload (livekit-plugins-slng gateway_adapter.py) with its defaults
    const lk = { type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16', vad_threshold: 0.5, vad_min_silence_duration_ms: 300, vad_speech_pad_ms: 30, enable_diarization: false, enable_partials: true, enable_partial_transcripts: true } };
    const cmd = dualDialect.parseText(JSON.stringify(lk));
    const replies = cmd.kind === 'init' ? cmd.init.replies : undefined;
    assert.equal(replies, 'deepgram-style');
    assert.deepEqual(livekitReader(wire(recorded({ ...info, replies }))), { finals: ['the horizon'], errors: ['invalid_request'] });
    // A seed 000-style init (no LiveKit keys) keeps both families; an explicit dialect still wins.
    const seed = dualDialect.parseText(JSON.stringify({ type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16', enable_partials: true } }));
    assert.equal(seed.kind === 'init' ? seed.init.replies : 'x', undefined);
    const explicit = dualDialect.parseText(JSON.stringify({ ...lk, config: { ...lk.config, dialect: 'unified' } }));
    assert.equal(explicit.kind === 'init' ? explicit.init.replies : 'x', 'unified');
  });

  it('parses SLNG and Deepgram client names; `dialect: "dual"` or none keeps both; a bad value is a config_error', () => {
    const kinds = ['{"type":"init"}', '{"type":"KeepAlive"}', '{"type":"Finalize"}', '{"type":"CloseStream"}', '{"type":"finalize"}', '{"type":"close"}', '{"type":"keepalive"}', 'nope', '{"type":"init","config":{"dialect":"dual"}}'].map(
      (t) => dualDialect.parseText(t).kind,
    );
    assert.deepEqual(kinds, ['init', 'keepalive', 'finalize', 'close', 'finalize', 'close', 'keepalive', 'invalid', 'init']);
    const both = dualDialect.parseText('{"type":"init","config":{"dialect":"dual"}}');
    assert.equal(both.kind === 'init' ? both.init.replies : 'x', undefined);
    const bad = dualDialect.parseText('{"type":"init","config":{"dialect":"deepgram"}}');
    assert.equal(bad.kind, 'invalid');
    assert.equal(bad.kind === 'invalid' ? bad.code : '', 'config_error');
    assert.match(bad.kind === 'invalid' ? bad.message : '', /dual, unified, deepgram-style/);
  });

  it('encodeDual is the concatenation of the two family encoders (no copy of either)', async () => {
    const { encodeUnified } = await import('../src/protocol/unified/index.js');
    const { encodeDeepgramStyle } = await import('../src/protocol/deepgram-style/index.js');
    for (const ev of recorded(info)) assert.deepEqual(encodeDual(ev), [...encodeDeepgramStyle(ev), ...encodeUnified(ev)]);
  });
});
