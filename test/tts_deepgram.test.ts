/**
 * Deepgram `/v1/speak` (protocols.md §3) end to end: raw WebSocket sequences validated against the
 * dialect schema, the §3 limits and close codes, query validation at the upgrade, Aura voice-name
 * mapping, browser subprotocol auth — and the official `@deepgram/sdk` (`speak.v1` live client and
 * its REST call) pointed at the local server through its `environment` option.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DeepgramClient } from '@deepgram/sdk';
import { speakServerMessageSchema } from '../src/protocol/deepgram-speak/schema.js';
import { parseWavHeader } from '../src/audio/wav.js';
import { type TestServer } from './helpers.js';
import { openTts, startTtsServer, TtsRecorder } from './tts_helpers.js';

const TEXT = 'I would like to book a table for two at seven o clock.';

function assertSchema(c: TtsRecorder): void {
  for (const m of c.messages) assert.ok(speakServerMessageSchema.safeParse(m).success, `schema violation: ${JSON.stringify(m)}`);
}

describe('Deepgram /v1/speak WebSocket', () => {
  let s: TestServer;
  const open = (query: string, headers?: Record<string, string>, protocols?: string[]) => openTts(s, `/v1/speak${query}`, headers ?? { Authorization: `Token ${s.key}` }, protocols);
  before(async () => {
    s = await startTtsServer({}, { maxFrameBytes: 8192 });
  });
  after(async () => {
    await s.cleanup();
  });

  it('Metadata on connect; Speak + Flush → binary audio then Flushed{sequence_id}; Clear → Cleared; Close closes 1000 at once', async () => {
    const c = await open('?model=aura-asteria-en&encoding=linear16&sample_rate=24000');
    const meta = c.json(await c.waitType('Metadata'));
    assert.equal(meta.model_name, 'aura-asteria-en');
    assert.equal(c.frames[0]!.kind, 'json', 'Metadata is the first frame');
    c.send({ type: 'Speak', text: TEXT });
    c.send({ type: 'Flush' });
    const f0 = await c.waitType('Flushed');
    assert.equal(c.json(f0).sequence_id, 0);
    const bytes = c.audio(0, f0).length;
    assert.ok(bytes > 24000 * 2, `at least a second of 24 kHz linear16 (${bytes} bytes)`);
    assert.equal(bytes % 2, 0);
    c.send({ type: 'Speak', text: TEXT });
    c.send({ type: 'Flush' });
    const f1 = await c.waitType('Flushed', 15000, f0 + 1);
    assert.equal(c.json(f1).sequence_id, 1);
    assert.equal(c.audio(f0, f1).length, bytes, 'same text, same audio');
    c.send({ type: 'Speak', text: `${TEXT} ${TEXT} ${TEXT} ${TEXT}` });
    c.send({ type: 'Flush' });
    await c.waitIndex(TtsRecorder.isAudio, 15000, f1 + 1);
    c.send({ type: 'Clear' });
    const cl = await c.waitType('Cleared');
    assert.equal(c.json(cl).sequence_id, 0);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(c.frames.slice(cl + 1).filter(TtsRecorder.isAudio).length, 0, 'no audio after Cleared');
    c.send({ type: 'Speak', text: 'Goodbye.' });
    c.send({ type: 'Close' });
    const closed = await c.closed;
    assert.equal(closed.code, 1000);
    assert.equal(c.frames.length, cl + 1, 'Close closes at once: the buffered text is not spoken, nothing is sent (Deepgram: "immediately")');
    assertSchema(c);
  });

  it('model= accepts voxgate voice ids and Aura names of other languages; mulaw at 8 kHz', async () => {
    const c = await open('?model=slt&encoding=mulaw&sample_rate=8000');
    assert.equal(c.json(await c.waitType('Metadata')).model_name, 'slt');
    c.send({ type: 'Speak', text: TEXT });
    c.send({ type: 'Flush' });
    const f = await c.waitType('Flushed');
    assert.ok(c.audio(0, f).length > 8000, 'one byte per sample');
    c.ws.close();
    const es = await open('?model=aura-2-celeste-es');
    const meta = es.json(await es.waitType('Metadata'));
    assert.match(meta.model_version as string, /^espeak-ng-[\d.]+\.es$/, 'a Spanish Aura name is served by the Spanish espeak-ng voice');
    es.send({ type: 'Speak', text: 'Hola, ¿cómo estás?' });
    es.send({ type: 'Flush' });
    await es.waitType('Flushed');
    assert.ok(es.audio().length > 0);
    es.ws.close();
  });

  it('Deepgram close codes: binary 1003 MESSAGE-0000, bad command 1008 DATA-0000, 2001 chars 1009 BIG-0001, big frame 1009 BIG-0000', async () => {
    const cases: [string, (c: TtsRecorder) => void, number, string][] = [
      ['binary', (c) => c.ws.send(Buffer.from([1, 2, 3])), 1003, 'MESSAGE-0000'],
      ['not JSON', (c) => c.ws.send('hello'), 1008, 'DATA-0000'],
      ['unknown type', (c) => c.send({ type: 'Shout', text: 'x' }), 1008, 'DATA-0000'],
      ['Speak without text', (c) => c.send({ type: 'Speak' }), 1008, 'DATA-0000'],
      ['2001 characters', (c) => c.send({ type: 'Speak', text: 'a'.repeat(2001) }), 1009, 'BIG-0001'],
      ['frame over the limit', (c) => c.send({ type: 'Speak', text: 'a '.repeat(5000) }), 1009, 'BIG-0000'],
    ];
    for (const [what, act, code, reason] of cases) {
      const c = await open('');
      await c.waitType('Metadata');
      act(c);
      const closed = await c.closed;
      assert.deepEqual([closed.code, closed.reason], [code, reason], what);
    }
    const ok = await open('');
    ok.send({ type: 'Speak', text: 'é'.repeat(2000) }); // exactly at the limit: accepted
    ok.send({ type: 'Clear' });
    await ok.waitType('Cleared');
    ok.ws.close();
  });

  it('more than 20 Flush in 60 s → Warning, and the 21st is not answered (see tts_deepgram_limits.test.ts)', async () => {
    const c = await open('?model=kal16');
    for (let i = 0; i < 21; i++) c.send({ type: 'Flush' });
    await c.waitType('Warning');
    const w = c.messages.filter((m) => m.type === 'Warning');
    assert.equal(w.length, 1);
    assert.equal(w[0]!.code, 'FLUSH_LIMIT_EXCEEDED');
    assert.equal(c.messages.filter((m) => m.type === 'Flushed').length, 20);
    assertSchema(c);
    c.ws.close();
  });

  it('refuses bad queries at the upgrade with HTTP 400, Deepgram error body and dg-error header; 401 without a key', async () => {
    for (const [q, re] of [
      ['?encoding=mp3', /unsupported encoding "mp3"; supported: linear16, mulaw, alaw/],
      ['?model=nobody', /unknown voice model "nobody"/],
      ['?sample_rate=11025', /unsupported sample_rate 11025/],
      ['?speed=9', /out of range/],
    ] as const) {
      await assert.rejects(open(q), (e: { statusCode: number; body: string; headers: Record<string, string> }) => {
        assert.equal(e.statusCode, 400, q);
        const body = JSON.parse(e.body) as { err_code: string; err_msg: string; request_id: string };
        assert.match(body.err_msg, re);
        assert.equal(body.err_code, 'INVALID_QUERY_PARAMETER');
        assert.match(e.headers['dg-error']!, re);
        return true;
      });
    }
    await assert.rejects(open('', {}), (e: { statusCode: number; body: string }) => e.statusCode === 401 && /INVALID_AUTH/.test(e.body));
  });

  it('accepts the browser form Sec-WebSocket-Protocol: token, <key>', async () => {
    const c = await open('?model=kal16', {}, ['token', s.key]);
    await c.waitType('Metadata');
    assert.equal(c.ws.protocol, 'token');
    c.ws.close();
  });
});

describe('official @deepgram/sdk against voxgate', () => {
  let s: TestServer;
  let client: DeepgramClient;
  before(async () => {
    s = await startTtsServer();
    client = new DeepgramClient({
      apiKey: s.key,
      environment: { base: `http://127.0.0.1:${s.port}`, production: `ws://127.0.0.1:${s.port}`, agent: `ws://127.0.0.1:${s.port}`, agentRest: `http://127.0.0.1:${s.port}` },
    });
  });
  after(async () => {
    await s.cleanup();
  });

  it('speak.v1 live client: Metadata, audio Blobs, Flushed, Cleared, Close', async () => {
    const socket = await client.speak.v1.connect({ model: 'aura-2-thalia-en', encoding: 'linear16', sample_rate: '16000', reconnectAttempts: 0 });
    const got: { type: string; bytes?: number; seq?: number }[] = [];
    let closeCode = 0;
    const done = new Promise<void>((resolve) => {
      socket.on('message', (m) => {
        if (m instanceof Blob) got.push({ type: 'audio', bytes: m.size });
        else if (typeof m === 'object') {
          got.push({ type: m.type, seq: (m as { sequence_id?: number }).sequence_id });
          if (m.type === 'Flushed') {
            socket.sendClear({ type: 'Clear' });
          }
          if (m.type === 'Cleared') socket.sendClose({ type: 'Close' });
        }
      });
      socket.on('close', (e) => {
        closeCode = e.code;
        resolve();
      });
    });
    socket.connect();
    await socket.waitForOpen();
    socket.sendText({ type: 'Speak', text: TEXT });
    socket.sendFlush({ type: 'Flush' });
    await done;
    assert.equal(got[0]!.type, 'Metadata');
    const flushed = got.findIndex((g) => g.type === 'Flushed');
    assert.ok(flushed > 1 && got.slice(1, flushed).every((g) => g.type === 'audio'), JSON.stringify(got));
    const bytes = got.slice(1, flushed).reduce((n, g) => n + g.bytes!, 0);
    assert.ok(bytes > 16000 * 2, `${bytes} bytes of audio`);
    assert.deepEqual(got.slice(flushed).map((g) => `${g.type}:${g.seq}`), ['Flushed:0', 'Cleared:0']);
    assert.equal(closeCode, 1000);
  });

  it('speak.v1.audio.generate (REST) returns a WAV; bad voices raise a DeepgramError with status 400', async () => {
    const res = await client.speak.v1.audio.generate({ text: TEXT, model: 'aura-2-thalia-en', encoding: 'linear16', container: 'wav', sample_rate: 16000 });
    const wav = Buffer.from(await res.arrayBuffer());
    const h = parseWavHeader(wav);
    assert.equal(h.kind, 'wav');
    assert.equal(h.kind === 'wav' && h.sampleRate, 16000);
    assert.ok(h.kind === 'wav' && h.dataLength! > 16000 * 2);
    const mp3 = Buffer.from(await (await client.speak.v1.audio.generate({ text: 'Hello.', model: 'kal16', encoding: 'mp3' })).arrayBuffer());
    assert.equal(mp3[0], 0xff, 'mp3 frames');
    await assert.rejects(client.speak.v1.audio.generate({ text: 'Hello.', model: 'nobody' }, { maxRetries: 0 }), (e: { statusCode?: number; body?: { err_msg?: string } }) => e.statusCode === 400 && /unknown voice model/.test(e.body?.err_msg ?? ''));
  });
});
