/**
 * The seeds' model codes on a fresh install (issue 10 part 2 "Catalogue"; protocols.md §1.3–1.5,
 * §1.8): a real gateway on port 0 with the default catalogue, real `ws` clients, real audio from
 * ../shared/data.
 *
 * - `/v1/stt/slng/deepgram/nova:3-en` serves both seed clients unchanged: one that reads only
 *   `ready`/`partial_transcript`/`final_transcript` and waits for `ready` (seed 000's quick-start), one
 *   that reads only `Metadata`/`Results`/`Error` and streams right after `init` (seed 001/004, LiveKit-like).
 * - `…/nova:3-hi` is refused with `config_error` by the English-only embedded engine — before the
 *   upgrade (HTTP 400), on `/v1/listen?model=`, and on the HTTP POST route — never English words.
 * - `/v1/stt/deepgram/nova:2` transcribes; `/v1/tts/slng/deepgram/aura:2-en` speaks with voice
 *   `aura-2-thalia-en` over the unified TTS protocol; `GET /v1/models` lists every seed code.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadClip, openSocket, sharedData, startTestServer, type Clip, type RecordingClient, type TestServer } from './helpers.js';
import { openTts } from './tts_helpers.js';
import { resolveInit } from '../src/session/stt_session.js';
import { dualDialect } from '../src/protocol/dual/index.js';
import { DEFAULT_STT_MODELS } from '../src/config/config.js';
import type { SttEngine } from '../src/engines/stt/types.js';
import { VoxgateError } from '../src/util/errors.js';

const NOVA_EN = 'slng/deepgram/nova:3-en';
const NOVA_HI = 'slng/deepgram/nova:3-hi';

/** Send the clip and `close`; resolve when the server closes. */
async function streamAndClose(c: RecordingClient, clip: Clip): Promise<{ code: number; reason: string }> {
  await c.sendBinary(clip.bytes, 8192); // §1.4 recommends 8192-byte chunks
  c.sendJson({ type: 'close' });
  return c.closed;
}

/** Seed 000 quick-start: init, wait for `ready`, stream, close; reads only the unified types. */
async function unifiedSeedClient(s: TestServer, model: string, clip: Clip) {
  const c = await openSocket(`${s.wsUrl}/v1/stt/${model}`, { Authorization: `Bearer ${s.key}` });
  c.sendJson({ type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16', enable_partials: true } });
  await c.waitType('ready');
  const closed = await streamAndClose(c, clip);
  const mine = c.messages.filter((m) => ['ready', 'partial_transcript', 'final_transcript', 'error'].includes(m.type as string));
  return {
    closed,
    all: c.messages,
    ready: mine.filter((m) => m.type === 'ready').length,
    partials: mine.filter((m) => m.type === 'partial_transcript').length,
    text: mine
      .filter((m) => m.type === 'final_transcript')
      .map((m) => m.transcript as string)
      .filter(Boolean)
      .join(' '),
    errors: mine.filter((m) => m.type === 'error'),
  };
}

/** Seed 001/004 (LiveKit-like): init and audio at once, never waits; reads only Metadata/Results/Error. */
async function deepgramSeedClient(s: TestServer, model: string, clip: Clip) {
  const c = await openSocket(`${s.wsUrl}/v1/stt/${model}`, { Authorization: `Bearer ${s.key}`, 'X-API-Key': s.key });
  c.sendJson({ type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16', enable_partials: true, smart_format: true, utterances: true } });
  const closed = await streamAndClose(c, clip);
  const mine = c.messages.filter((m) => ['Metadata', 'Results', 'Error'].includes(m.type as string));
  const finals = mine.filter((m) => m.type === 'Results' && m.is_final === true);
  return {
    closed,
    all: c.messages,
    metadata: mine.filter((m) => m.type === 'Metadata').length,
    text: finals
      .map((m) => (m.channel as { alternatives: { transcript: string }[] }).alternatives[0]!.transcript)
      .filter(Boolean)
      .join(' '),
    errors: mine.filter((m) => m.type === 'Error'),
  };
}

const words = (t: string) => t.toLowerCase().replace(/[^a-z0-9' ]/g, ' ').split(/\s+/).filter(Boolean);

describe('a model language the engine lacks, at init (routes that get past the upgrade)', () => {
  const engine = { id: 'pocketsphinx', capabilities: { languages: ['en'] } } as unknown as SttEngine;
  const hi = DEFAULT_STT_MODELS.find((m) => m.code === NOVA_HI)!;
  it('refuses nova:3-hi with config_error even when the client asks for English; English models are untouched', () => {
    for (const language of [undefined, 'en', 'hi']) {
      assert.throws(
        () => resolveInit({ language }, engine, dualDialect, hi),
        (e: unknown) => e instanceof VoxgateError && e.code === 'config_error' && /needs language hi; backend pocketsphinx offers en/.test(e.message),
        String(language),
      );
    }
  });
});

describe('seed model codes on a fresh install', () => {
  let s: TestServer;
  let clip: Clip;
  before(async () => {
    s = await startTestServer();
    clip = await loadClip('asr_en/en_cmu_goforward.wav');
  });
  after(async () => {
    await s.cleanup();
  });

  it(`${NOVA_EN}: a unified-only client and a Deepgram-only client both get the transcript of the same clip`, async (t) => {
    const u = await unifiedSeedClient(s, NOVA_EN, clip);
    const d = await deepgramSeedClient(s, NOVA_EN, clip);
    assert.equal(u.closed.code, 1000);
    assert.equal(d.closed.code, 1000);
    assert.equal(u.ready, 1, 'seed 000 got its ready');
    assert.ok(u.partials > 0, 'partials were requested');
    assert.equal(d.metadata, 2, 'Metadata at connect and at the end (§1.4)');
    assert.deepEqual(u.errors, []);
    assert.deepEqual(d.errors, []);
    assert.match(u.text, /forward/);
    assert.match(d.text.toLowerCase(), /forward/);
    // The Deepgram-style client asked for smart_format (§1.4 example), which writes "ten" as "10".
    assert.deepEqual(words(d.text.replace(/\b10\b/g, 'ten')), words(u.text), 'same words for both clients');
    // Cost of serving both families: bytes per result, measured on this clip.
    const bytes = (ms: Record<string, unknown>[], type: string, pred: (m: Record<string, unknown>) => boolean = () => true) => {
      const sel = ms.filter((m) => m.type === type && pred(m));
      return { n: sel.length, bytes: sel.reduce((a, m) => a + JSON.stringify(m).length, 0) };
    };
    const res = bytes(d.all, 'Results', (m) => m.is_final === true);
    const fin = bytes(u.all, 'final_transcript');
    const itr = bytes(d.all, 'Results', (m) => m.is_final === false);
    const par = bytes(u.all, 'partial_transcript');
    t.diagnostic(
      `dual cost on en_cmu_goforward: final Results ${res.n} × ${(res.bytes / Math.max(1, res.n)).toFixed(0)} B + final_transcript ${fin.n} × ${(fin.bytes / Math.max(1, fin.n)).toFixed(0)} B; ` +
        `interim Results ${itr.n} × ${(itr.bytes / Math.max(1, itr.n)).toFixed(0)} B + partial_transcript ${par.n} × ${(par.bytes / Math.max(1, par.n)).toFixed(0)} B`,
    );
  });

  it(`${NOVA_EN}: init.config.dialect narrows the route to one family (for clients that read both)`, async () => {
    const c = await openSocket(`${s.wsUrl}/v1/stt/${NOVA_EN}`, { Authorization: `Bearer ${s.key}` });
    c.sendJson({ type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16', dialect: 'deepgram-style' } });
    const closed = await streamAndClose(c, clip);
    assert.equal(closed.code, 1000);
    const types = new Set(c.messages.map((m) => m.type));
    assert.deepEqual([...types].filter((x) => ['ready', 'partial_transcript', 'final_transcript'].includes(x as string)), []);
    assert.ok(types.has('Results') && types.has('Metadata'));
  });

  it(`${NOVA_HI}: refused before the upgrade with HTTP 400 config_error naming the language and the engine`, async () => {
    for (const path of [`/v1/stt/${NOVA_HI}`, `/v1/bridges/unmute/stt/${NOVA_HI}`]) {
      const err = (await openSocket(`${s.wsUrl}${path}`, { Authorization: `Bearer ${s.key}` }).then(
        () => assert.fail('upgrade accepted'),
        (e: { statusCode?: number; body?: string }) => e,
      )) as { statusCode?: number; body?: string };
      assert.equal(err.statusCode, 400, path);
      const body = JSON.parse(err.body!) as Record<string, unknown>;
      assert.equal(body.error, 'config_error');
      assert.match(body.message as string, /slng\/deepgram\/nova:3-hi needs language hi; backend pocketsphinx offers en; configure an upstream/);
    }
  });

  it(`${NOVA_HI}: Deepgram /v1/listen?model= and the HTTP POST route refuse it too, with no transcript`, async () => {
    const err = (await openSocket(`${s.wsUrl}/v1/listen?model=${encodeURIComponent(NOVA_HI)}`, { Authorization: `Token ${s.key}` }).then(
      () => assert.fail('upgrade accepted'),
      (e: { statusCode?: number; body?: string }) => e,
    )) as { statusCode?: number; body?: string };
    assert.equal(err.statusCode, 400);
    assert.match(err.body!, /needs language hi/);
    const wav = readFileSync(sharedData('asr_en/en_cmu_goforward.wav'));
    const r = await fetch(`http://127.0.0.1:${s.port}/v1/stt/${NOVA_HI}`, { method: 'POST', headers: { Authorization: `Bearer ${s.key}`, 'Content-Type': 'audio/wav' }, body: wav });
    const text = await r.text();
    assert.equal(r.status, 400, text);
    assert.equal((JSON.parse(text) as { error: string }).error, 'config_error');
    assert.doesNotMatch(text, /forward/, 'no English words');
  });

  it('/v1/stt/deepgram/nova:2 (and deepgram/nova:3) transcribe for the Deepgram-style seed client', async () => {
    for (const model of ['deepgram/nova:2', 'deepgram/nova:3']) {
      const d = await deepgramSeedClient(s, model, clip);
      assert.equal(d.closed.code, 1000, model);
      assert.match(d.text.toLowerCase(), /forward/, model);
    }
  });

  it('/v1/tts/slng/deepgram/aura:2-en speaks over the unified TTS protocol with voice aura-2-thalia-en', async () => {
    for (const model of ['slng/deepgram/aura:2-en', 'deepgram/aura:2']) {
      const c = await openTts(s, `/v1/tts/${model}`);
      c.send({ type: 'init', model: 'aura:2', voice: 'aura-2-thalia-en', config: { sample_rate: 24000, encoding: 'linear16' } });
      await c.waitType('ready');
      c.send({ type: 'text', text: 'Hello from the seed catalogue.' });
      c.send({ type: 'flush' });
      const i = await c.waitType('flushed', 30000);
      const audio = c.audio(0, i);
      assert.ok(audio.length > 24000 * 2 * 0.5, `${model}: at least 0.5 s of 24 kHz audio (${audio.length} bytes)`);
      assert.equal(c.messages.filter((m) => m.type === 'error').length, 0, c.describe());
      c.send({ type: 'close' });
      await c.closed;
    }
  });

  it('POST /v1/tts/slng/deepgram/aura:2-en with the Aura body of §1.7 ({"model": voice, "text"}) returns WAV', async () => {
    const r = await fetch(`http://127.0.0.1:${s.port}/v1/tts/slng/deepgram/aura:2-en`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${s.key}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: 'aura-2-thalia-en', text: 'Hello from the seed catalogue.' }),
    });
    const body = Buffer.from(await r.arrayBuffer());
    assert.equal(r.status, 200, body.toString().slice(0, 200));
    assert.equal(body.subarray(0, 4).toString(), 'RIFF');
    assert.equal(r.headers.get('x-voice'), 'kal16');
  });

  it('deepgram/aura:2 refuses a non-English Aura voice with config_error (flite speaks English only)', async () => {
    const c = await openTts(s, '/v1/tts/deepgram/aura:2');
    c.send({ type: 'init', voice: 'aura-2-celeste-es' });
    const i = await c.waitType('error');
    assert.equal(c.json(i).code, 'config_error');
    assert.match(c.json(i).message as string, /language "es"/);
    await c.closed;
  });

  it('GET /v1/models lists the seed codes with their dialects; the first STT model is still local/pocketsphinx:en', async () => {
    const r = await fetch(`http://127.0.0.1:${s.port}/v1/models`, { headers: { Authorization: `Bearer ${s.key}` } });
    const body = (await r.json()) as { models: { code: string; service_type: string; dialect: string }[] };
    const stt = body.models.filter((m) => m.service_type === 'stt');
    const tts = body.models.filter((m) => m.service_type === 'tts');
    assert.equal(stt[0]!.code, 'local/pocketsphinx:en');
    for (const code of [NOVA_EN, NOVA_HI, 'deepgram/nova:3', 'deepgram/nova:2']) assert.equal(stt.find((m) => m.code === code)?.dialect, 'dual', code);
    for (const code of ['slng/deepgram/aura:2-en', 'deepgram/aura:2']) assert.ok(tts.find((m) => m.code === code), code);
  });
});
