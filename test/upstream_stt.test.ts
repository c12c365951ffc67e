/**
 * Upstream STT engine types `slng` and `deepgram` (issue 10 part 2): real sockets, no network.
 *
 * An in-process voxgate on 127.0.0.1:0 is the upstream (its `/v1/stt/<model>` speaks the SLNG
 * unified protocol, its `/v1/listen` is a faithful Deepgram server). The engines are driven directly
 * (start/write/finalize/close) with real speech, and their finals must equal what a direct WebSocket
 * client of the same upstream receives. Failure cases use tiny local servers: refused port, HTTP
 * 500/401/400/429 at the upgrade, a server that never answers, one that stops answering mid-stream,
 * one that closes 1011, error frames, malformed frames.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FixtureDir } from './audio_fixtures.js';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { createHash } from 'node:crypto';
import { WebSocketServer, type WebSocket as ServerWs } from 'ws';
import { loadConfig, type VoxgateConfig } from '../src/config/config.js';
import type { RequestContext } from '../src/engines/context.js';
import { createSttEngines } from '../src/engines/stt/registry.js';
import type { SttEngine, SttFinal, SttPartial, SttStream, SttStreamConfig } from '../src/engines/stt/types.js';
import { createDeepgramSttEngine, createSlngSttEngine, DeepgramSttEngine, SlngSttEngine } from '../src/engines/stt/upstream/index.js';
import { deepgramAlternative, NO_FORMAT } from '../src/protocol/deepgram/shape.js';
import { VoxgateError } from '../src/util/errors.js';
import { loadClip, openSocket, silence, startConfiguredServer, startTestServer, type RecordingClient, type TestServer } from './helpers.js';

type Kind = 'slng' | 'deepgram';
const KINDS: Kind[] = ['slng', 'deepgram'];

const STREAM: SttStreamConfig = { language: 'en', partials: true, wordTimestamps: true, vad: true, endpointingMs: 300 };
const KEY_ENV = 'VOXGATE_TEST_UPSTREAM_KEY';

function cfgWith(instanceId: string, settings: Record<string, unknown>): VoxgateConfig {
  const base = loadConfig();
  return { ...base, engines: { ...base.engines, [instanceId]: settings } };
}

/** An engine of `kind` pointed at `url` with extra settings. */
function engineOf(kind: Kind, url: string, extra: Record<string, unknown> = {}): SttEngine {
  const model = kind === 'slng' ? 'local/pocketsphinx:en' : 'nova-3';
  const cfg = cfgWith(`${kind}-test`, { type: kind, url, model, ...extra });
  return kind === 'slng' ? createSlngSttEngine(cfg, `${kind}-test`) : createDeepgramSttEngine(cfg, `${kind}-test`);
}

function ctx(over: Partial<RequestContext> = {}): RequestContext {
  return { requestId: globalThis.crypto.randomUUID(), modelCode: 'test/model:en', ...over };
}

/** Everything a stream emitted. */
interface Recorded {
  finals: SttFinal[];
  partials: SttPartial[];
  speechStarted: number[];
  errors: Error[];
}

function record(s: SttStream): Recorded {
  const r: Recorded = { finals: [], partials: [], speechStarted: [], errors: [] };
  s.on('final', (f) => r.finals.push(f));
  s.on('partial', (p) => r.partials.push(p));
  s.on('speech_started', (e) => r.speechStarted.push(e.timestamp));
  s.on('error', (e) => r.errors.push(e));
  return r;
}

function waitError(s: SttStream, timeoutMs = 15000): Promise<VoxgateError> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no error event')), timeoutMs);
    s.once('error', (e) => {
      clearTimeout(t);
      resolve(e as VoxgateError);
    });
  });
}

/** Write PCM bytes to a stream in 100 ms chunks, yielding to the event loop between chunks. */
async function writeAudio(s: SttStream, bytes: Buffer): Promise<void> {
  const samples = new Int16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  for (let o = 0; o < samples.length; o += 1600) {
    s.write(samples.subarray(o, o + 1600));
    if (o % 16000 === 0) await new Promise((r) => setImmediate(r));
  }
}

/** Final words as comparable tuples (times rounded to the ms, as both wires carry them). */
const r3 = (x: number): number => Math.round(x * 1000) / 1000;
function finalsView(fs: { transcript: string; words?: { word: string; start: number; end: number }[] }[]): { transcript: string; words: [string, number, number][] }[] {
  return fs.filter((f) => f.transcript !== '').map((f) => ({ transcript: f.transcript, words: (f.words ?? []).map((w) => [w.word, r3(w.start), r3(w.end)] as [string, number, number]) }));
}

async function assertRejects(p: Promise<unknown>): Promise<VoxgateError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof VoxgateError, `a VoxgateError, got ${String(e)}`);
    return e;
  }
  assert.fail('start resolved; expected a rejection');
}

// ---------- tiny local servers ----------

interface Tiny {
  url: string;
  close(): Promise<void>;
}

/** An HTTP server that answers every upgrade with `status` and `body`, and records the request. */
async function refusingServer(status: number, body: string, seen: IncomingMessage[] = []): Promise<Tiny> {
  const srv: Server = createHttpServer();
  srv.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    seen.push(req);
    const text = `HTTP/1.1 ${status} ${status === 500 ? 'Internal Server Error' : 'X'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
    socket.end(text);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  return { url: `ws://127.0.0.1:${port}`, close: () => new Promise((r) => { srv.closeAllConnections(); srv.close(() => r()); }) };
}

/**
 * A raw TCP server. `mode`: `silent` never answers anything (not even the upgrade); `mute` completes
 * the upgrade, sends `ready` (harmless for Deepgram clients, which ignore unknown types) and then
 * never reads or answers again (no pong): a backend gone silent.
 */
async function rawServer(mode: 'silent' | 'mute'): Promise<Tiny> {
  const sockets = new Set<Socket>();
  const srv: TcpServer = createTcpServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => {});
    if (mode === 'silent') return;
    let buf = '';
    sock.on('data', function onData(d) {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      sock.off('data', onData);
      const key = /sec-websocket-key: *(\S+)/i.exec(buf.slice(0, end))?.[1] ?? '';
      const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
      sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      const ready = Buffer.from('{"type":"ready","session_id":"sess_mute"}');
      sock.write(Buffer.concat([Buffer.from([0x81, ready.length]), ready]));
      sock.pause(); // never read again: no pong, no frames
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  return {
    url: `ws://127.0.0.1:${port}`,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
}

/**
 * A scripted WebSocket upstream. It answers a slng `init` with `ready` (Deepgram clients have no
 * handshake), records every request and frame, and lets `onFrame` act on each frame.
 */
async function scriptedServer(onFrame: (ws: ServerWs, frame: { text?: string; binary?: Buffer }) => void = () => {}): Promise<Tiny & { requests: IncomingMessage[]; texts: string[] }> {
  const requests: IncomingMessage[] = [];
  const texts: string[] = [];
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  wss.on('connection', (ws, req) => {
    requests.push(req);
    ws.on('message', (data, isBinary) => {
      if (isBinary) return onFrame(ws, { binary: data as Buffer });
      const text = data.toString();
      texts.push(text);
      if (JSON.parse(text).type === 'init') ws.send(JSON.stringify({ type: 'ready', session_id: 'sess_1' }));
      onFrame(ws, { text });
    });
  });
  await new Promise<void>((r) => wss.on('listening', () => r()));
  const port = (wss.address() as { port: number }).port;
  return {
    url: `ws://127.0.0.1:${port}`,
    requests,
    texts,
    close: () =>
      new Promise((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => r());
      }),
  };
}

/** A port nothing listens on. */
async function freePort(): Promise<number> {
  const srv = createTcpServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

// ---------- relays against a real voxgate ----------

describe('upstream STT relays against a real voxgate upstream', () => {
  let up: TestServer;
  let audio: Buffer;
  before(async () => {
    up = await startTestServer();
    const clip = await loadClip('asr_en/en_ls_1272-128104-0000.wav');
    audio = Buffer.concat([silence(300), clip.bytes, silence(1200)]);
    process.env[KEY_ENV] = up.key;
  });
  after(async () => {
    delete process.env[KEY_ENV];
    await up.cleanup();
  });

  /** Send the audio over `c` in 100 ms binary frames, then the dialect's finalize and close; resolves when the upstream closes. */
  async function direct(c: RecordingClient, finalize: unknown, closeMsg: unknown): Promise<void> {
    await c.sendBinary(audio, 3200);
    c.sendJson(finalize);
    c.sendJson(closeMsg);
    const closed = await c.closed;
    assert.equal(closed.code, 1000);
  }

  async function relay(kind: Kind, extra: Record<string, unknown> = {}): Promise<Recorded> {
    const e = engineOf(kind, up.wsUrl, { apiKeyEnv: KEY_ENV, ...extra });
    await e.init();
    const s = await e.start(STREAM, ctx());
    const rec = record(s);
    await writeAudio(s, audio);
    s.finalize();
    await s.close();
    assert.deepEqual(rec.errors, []);
    assert.equal(e.stats().activeStreams, 0, 'the stream is released after close');
    return rec;
  }

  /** The worker's finals for {@link audio} as a direct unified client gets them (computed once). */
  let unifiedDirect: Promise<RecordingClient> | null = null;
  function directUnified(): Promise<RecordingClient> {
    unifiedDirect ??= (async () => {
      const c = await openSocket(`${up.wsUrl}/v1/stt/local/pocketsphinx:en`, { Authorization: `Bearer ${up.key}` });
      c.sendJson({ type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16', channels: 1, enable_partials: true, enable_vad: true, enable_word_timestamps: true, endpointing: 300, vad_events: true } });
      await c.waitType('ready');
      await direct(c, { type: 'finalize' }, { type: 'close' });
      return c;
    })();
    return unifiedDirect;
  }

  it('slng: relayed finals equal a direct unified client’s (transcripts, word times), one fromFinalize final', async () => {
    const c = await directUnified();
    const want = c.ofType('final_transcript') as unknown as { transcript: string; words?: { word: string; start: number; end: number }[]; from_finalize: boolean; speech_final: boolean; confidence: number }[];
    assert.ok(want.length >= 1 && want.some((f) => f.transcript.length > 10), `direct client got speech: ${JSON.stringify(want)}`);

    const got = await relay('slng');
    assert.deepEqual(finalsView(got.finals), finalsView(want));
    // Every non-empty final's confidence and speech_final relayed unchanged.
    const nonEmpty = got.finals.filter((f) => f.transcript);
    assert.deepEqual(nonEmpty.map((f) => [f.confidence, f.speechFinal]), want.filter((f) => f.transcript).map((f) => [f.confidence, f.speech_final]));
    assert.equal(got.finals.filter((f) => f.fromFinalize).length, 1, 'exactly one final answers finalize()');
    assert.ok(got.finals.every((f) => f.language === 'en'));
    assert.ok(got.partials.length > 0, 'partials relayed');
  });

  it('deepgram: relayed finals equal a direct /v1/listen client’s, SpeechStarted relayed, one fromFinalize final', async () => {
    const q = 'model=nova-3&language=en&encoding=linear16&sample_rate=16000&channels=1&interim_results=true&endpointing=300&vad_events=true';
    const c = await openSocket(`${up.wsUrl}/v1/listen?${q}`, { Authorization: `Token ${up.key}` });
    await direct(c, { type: 'Finalize' }, { type: 'CloseStream' });
    type Alt = { transcript: string; confidence: number; words: { word: string; start: number; end: number }[] };
    const results = c.ofType('Results').filter((m) => m.is_final === true) as unknown as { channel: { alternatives: Alt[] }; speech_final: boolean; from_finalize: boolean }[];
    const want = results.map((m) => m.channel.alternatives[0]!);
    assert.ok(want.some((a) => a.transcript.length > 10), `direct client got speech: ${JSON.stringify(want)}`);

    const got = await relay('deepgram');
    assert.deepEqual(finalsView(got.finals), finalsView(want));
    assert.deepEqual(
      got.finals.map((f) => [f.transcript, f.confidence, f.speechFinal, f.fromFinalize]),
      results.map((m) => [m.channel.alternatives[0]!.transcript, m.channel.alternatives[0]!.confidence, m.speech_final, m.from_finalize]),
      'every final (empty ones too) relayed with its confidence, speech_final and from_finalize',
    );
    assert.equal(got.finals.filter((f) => f.fromFinalize).length, 1);
    const directStarted = c.ofType('SpeechStarted').map((m) => m.timestamp);
    assert.ok(directStarted.length >= 1);
    assert.deepEqual(got.speechStarted, directStarted);
    assert.ok(got.partials.some((p) => p.transcript && p.words && p.words.length > 0), 'interim Results relayed as partials with words');
  });

  // BYOK (protocols.md §1.1): on an external route the client's X-Slng-Provider-Key is the key the
  // gateway uses upstream (before: ignored, so a gateway without a configured key always got 401).
  it('BYOK: X-Slng-Provider-Key on an external route authenticates the upstream; a wrong one is backend_connection_failed (401), never echoed', async () => {
    const base = loadConfig();
    const gw = await startConfiguredServer({
      ...base,
      engines: { dg: { type: 'deepgram', url: up.wsUrl, model: 'nova-3' } }, // no apiKeyEnv: only BYOK can work
      stt: { models: [{ code: 'deepgram/nova:3', engine: 'dg', dialect: 'unified', options: {}, aliases: [] }] },
    });
    try {
      const open = async (providerKey?: string) => {
        const c = await openSocket(`${gw.wsUrl}/v1/stt/deepgram/nova:3`, { Authorization: `Bearer ${gw.key}`, ...(providerKey ? { 'X-Slng-Provider-Key': providerKey } : {}) });
        c.sendJson({ type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16' } });
        return c;
      };
      const ok = await open(up.key);
      await ok.waitType('ready');
      await ok.sendBinary(audio, 3200);
      ok.sendJson({ type: 'close' });
      await ok.closed;
      assert.ok(ok.ofType('final_transcript').some((f) => String(f.transcript).length > 10), JSON.stringify(ok.messages));
      const wrong = 'vg_not_a_real_key_0123456789';
      const bad = await open(wrong);
      const closed = await bad.closed;
      const err = bad.ofType('error')[0]!;
      assert.equal(err.code, 'backend_connection_failed');
      assert.match(String(err.message), /401/);
      assert.ok(!JSON.stringify(bad.messages).includes(wrong), 'the provider key is never echoed');
      assert.equal(closed.code, 1011);
    } finally {
      await gw.cleanup();
    }
  });

  // Engine contract v2: Opus from a client passes through untouched; the upstream decodes it.
  for (const kind of ['slng', 'deepgram'] as const) {
    it(`${kind}: Ogg/Opus passes through undecoded (passthrough format) and the upstream transcribes it`, async () => {
      const fx = new FixtureDir();
      try {
        const opus = fx.read(fx.encode(['asr_en/en_ls_1272-128104-0000.wav'], 'ogg-opus'));
        const e = engineOf(kind, up.wsUrl, { apiKeyEnv: KEY_ENV });
        await e.init();
        assert.ok(e.capabilities.passthroughEncodings?.includes('opus'));
        const s = await e.start({ ...STREAM, passthrough: { encoding: 'opus', sampleRate: 48000, channels: 1 } }, ctx());
        const rec = record(s);
        for (let i = 0; i < opus.length; i += 4096) s.writeEncoded!(opus.subarray(i, i + 4096));
        s.finalize();
        await s.close();
        assert.deepEqual(rec.errors, []);
        const text = rec.finals.map((f) => f.transcript).join(' ').toLowerCase();
        assert.match(text, /middle/, text);
        assert.match(text, /gospel/, text);
        assert.ok(s.audioSeconds > 5, `audio clock from the results: ${s.audioSeconds}`);
      } finally {
        fx.cleanup();
      }
    });
  }

  it('deepgram: a fixed smart_format query reaches the upstream and punctuated_word is relayed into SttWord.punctuatedWord', async () => {
    const got = await relay('deepgram', { query: { smart_format: 'true' } });
    const ws = got.finals.flatMap((f) => f.words ?? []);
    assert.ok(ws.length > 3);
    assert.ok(ws.every((w) => typeof w.punctuatedWord === 'string'), 'every word carries punctuatedWord');
    assert.ok(ws.some((w) => w.punctuatedWord !== w.word), 'formatting shows (capitals/punctuation)');
  });

  it('both types: an upstream refusing the key at the upgrade is a non-retryable backend_connection_failed naming 401', async () => {
    process.env.VOXGATE_TEST_WRONG_KEY = 'definitely-not-a-key-123456';
    try {
      for (const kind of KINDS) {
        const e = engineOf(kind, up.wsUrl, { apiKeyEnv: 'VOXGATE_TEST_WRONG_KEY' });
        const err = await assertRejects(e.start(STREAM, ctx()));
        assert.equal(err.code, 'backend_connection_failed', kind);
        assert.equal(err.retryable, false, kind);
        assert.match(err.message, /^Failed to connect to backend: 401\b/, kind);
        assert.ok(!err.message.includes('definitely-not-a-key-123456'));
      }
    } finally {
      delete process.env.VOXGATE_TEST_WRONG_KEY;
    }
  });

  for (const kind of KINDS) {
    it(`${kind}: a gateway voxgate serving a model on this engine relays the worker's transcript to a unified client`, async () => {
      const base = loadConfig();
      const cfg: VoxgateConfig = {
        ...base,
        engines: { w: { type: kind, url: up.wsUrl, model: kind === 'slng' ? 'local/pocketsphinx:en' : 'nova-3', apiKeyEnv: KEY_ENV } },
        stt: { models: [{ ...base.stt.models[0]!, code: 'relay/w:en', engine: 'w', dialect: 'unified', aliases: [], backends: undefined }] },
      };
      const gw = await startConfiguredServer(cfg);
      try {
        const c = await openSocket(`${gw.wsUrl}/v1/stt/relay/w:en`, { Authorization: `Bearer ${gw.key}` });
        c.sendJson({ type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16', enable_word_timestamps: true } });
        await c.waitType('ready');
        await c.sendBinary(audio, 3200);
        c.sendJson({ type: 'finalize' });
        c.sendJson({ type: 'close' });
        assert.equal((await c.closed).code, 1000);
        const finals = c.ofType('final_transcript');
        const want = (await directUnified()).ofType('final_transcript');
        assert.deepEqual(finals.map((f) => f.transcript).filter(Boolean), want.map((f) => f.transcript).filter(Boolean));
        assert.equal(finals.filter((f) => f.from_finalize === true).length, 1);
      } finally {
        await gw.cleanup();
      }
    });
  }

  it('a language the upstream refuses is a non-retryable config_error with its detail (slng: error frame before ready; deepgram: HTTP 400)', async () => {
    for (const kind of KINDS) {
      const e = engineOf(kind, up.wsUrl, { apiKeyEnv: KEY_ENV, languages: ['en', 'hi'] });
      const err = await assertRejects(e.start({ ...STREAM, language: 'hi' }, ctx()));
      assert.equal(err.code, 'config_error', `${kind}: ${err.message}`);
      assert.equal(err.retryable, false, kind);
      assert.match(err.message, /\bhi\b/, `${kind}: the upstream's detail names the language: ${err.message}`);
      assert.ok(!err.message.includes(up.key));
    }
  });

  it('a language the instance does not list is a config_error before any connect', async () => {
    const e = engineOf('slng', up.wsUrl, { apiKeyEnv: KEY_ENV });
    const err = await assertRejects(e.start({ ...STREAM, language: 'hi' }, ctx()));
    assert.equal(err.code, 'config_error');
    assert.equal(err.retryable, false);
  });
});

// ---------- failures with tiny servers ----------

for (const kind of KINDS) {
  describe(`${kind} upstream failures`, () => {
    it('port refused → retryable backend_connection_failed with the connect error', async () => {
      const port = await freePort();
      const err = await assertRejects(engineOf(kind, `ws://127.0.0.1:${port}`).start(STREAM, ctx()));
      assert.equal(err.code, 'backend_connection_failed');
      assert.equal(err.retryable, true);
      assert.equal(err.message, `Failed to connect to backend: connect ECONNREFUSED 127.0.0.1:${port}`);
    });

    it('HTTP 500 at the upgrade → retryable backend_connection_failed "500 Internal Server Error"', async () => {
      const srv = await refusingServer(500, '{"message":"oops"}');
      try {
        const err = await assertRejects(engineOf(kind, srv.url).start(STREAM, ctx()));
        assert.equal(err.code, 'backend_connection_failed');
        assert.equal(err.retryable, true);
        assert.equal(err.message, 'Failed to connect to backend: 500 Internal Server Error');
      } finally {
        await srv.close();
      }
    });

    it('HTTP 401/403 → non-retryable backend_connection_failed; 400 → config_error with the detail (key redacted); 429 → rate_limit', async () => {
      process.env[KEY_ENV] = 'sk-secret-0123456789';
      try {
        for (const [status, code, retryable] of [
          [401, 'backend_connection_failed', false],
          [403, 'backend_connection_failed', false],
          [400, 'config_error', false],
          [429, 'rate_limit', true],
        ] as const) {
          const srv = await refusingServer(status, JSON.stringify({ err_msg: `bad request for key sk-secret-0123456789: unknown model` }));
          try {
            const err = await assertRejects(engineOf(kind, srv.url, { apiKeyEnv: KEY_ENV }).start(STREAM, ctx()));
            assert.equal(err.code, code, `status ${status}`);
            assert.equal(err.retryable, retryable, `status ${status}`);
            assert.match(err.message, new RegExp(`\\b${status}\\b`));
            assert.ok(!err.message.includes('sk-secret-0123456789'), `no key in "${err.message}"`);
            if (status === 400) assert.match(err.message, /unknown model/);
          } finally {
            await srv.close();
          }
        }
      } finally {
        delete process.env[KEY_ENV];
      }
    });

    it('the key from apiKeyEnv reaches the upstream header (with X-Request-Id), and the mapped stream config reaches it too', async () => {
      process.env[KEY_ENV] = 'sk-live-abcdef';
      const srv = await scriptedServer();
      try {
        const ac = new AbortController();
        const c = ctx({ signal: ac.signal });
        const e = engineOf(kind, srv.url, { apiKeyEnv: KEY_ENV });
        const s = await e.start({ ...STREAM, partials: false, endpointingMs: null }, c);
        const req = srv.requests[0]!;
        assert.equal(req.headers.authorization, kind === 'slng' ? 'Bearer sk-live-abcdef' : 'Token sk-live-abcdef');
        assert.equal(req.headers['x-request-id'], c.requestId);
        if (kind === 'slng') {
          assert.equal(req.url, '/v1/stt/local/pocketsphinx:en');
          assert.deepEqual(JSON.parse(srv.texts[0]!), {
            type: 'init',
            config: { language: 'en', sample_rate: 16000, encoding: 'linear16', channels: 1, enable_partials: false, enable_vad: true, enable_word_timestamps: true, endpointing: false, vad_events: true },
          });
        } else {
          const q = new URL(req.url!, 'http://x').searchParams;
          assert.equal(new URL(req.url!, 'http://x').pathname, '/v1/listen');
          assert.deepEqual(Object.fromEntries(q), { model: 'nova-3', language: 'en', encoding: 'linear16', sample_rate: '16000', channels: '1', interim_results: 'false', endpointing: 'false', vad_events: 'true' });
        }
        assert.equal(e.stats().activeStreams, 1);
        ac.abort(); // the request's signal ends the open stream too
        assert.equal(e.stats().activeStreams, 0);
        s.write(new Int16Array(160)); // harmless after the end
      } finally {
        delete process.env[KEY_ENV];
        await srv.close();
      }
    });

    it('an unset apiKeyEnv variable refuses the start naming the variable', async () => {
      delete process.env.VOXGATE_TEST_UNSET_KEY;
      const err = await assertRejects(engineOf(kind, 'ws://127.0.0.1:9', { apiKeyEnv: 'VOXGATE_TEST_UNSET_KEY' }).start(STREAM, ctx()));
      assert.equal(err.code, 'backend_connection_failed');
      assert.match(err.message, /VOXGATE_TEST_UNSET_KEY is not set/);
    });

    it('a server that accepts TCP and never answers → "timeout after <connectTimeoutMs> ms"; the ctx deadline and abort signal are honoured', async () => {
      const srv = await rawServer('silent');
      try {
        let err = await assertRejects(engineOf(kind, srv.url, { connectTimeoutMs: 300 }).start(STREAM, ctx()));
        assert.equal(err.code, 'backend_connection_failed');
        assert.equal(err.retryable, true);
        assert.equal(err.message, 'Failed to connect to backend: timeout after 300 ms');
        // A request deadline shorter than the setting wins.
        err = await assertRejects(engineOf(kind, srv.url, { connectTimeoutMs: 60000 }).start(STREAM, ctx({ connectDeadline: performance.now() + 200 })));
        assert.match(err.message, /^Failed to connect to backend: timeout after (19\d|200) ms$/);
        // Aborting the request aborts the connect.
        const ac = new AbortController();
        const p = engineOf(kind, srv.url, { connectTimeoutMs: 60000 }).start(STREAM, ctx({ signal: ac.signal }));
        setTimeout(() => ac.abort(), 50);
        err = await assertRejects(p);
        assert.equal(err.message, 'Failed to connect to backend: request aborted');
        assert.equal(err.retryable, false);
      } finally {
        await srv.close();
      }
    });

    it('a backend that goes silent while audio flows (no frame, no pong) → retryable provider_error', async () => {
      const srv = await rawServer('mute');
      try {
        const e = engineOf(kind, srv.url, { pingIntervalMs: 100, stallTimeoutMs: 500 });
        const s = await e.start(STREAM, ctx());
        const failed = waitError(s, 5000);
        const feeder = setInterval(() => s.write(new Int16Array(1600)), 100);
        const err = await failed.finally(() => {
          clearInterval(feeder);
          s.abort();
        });
        assert.equal(err.code, 'provider_error');
        assert.equal(err.retryable, true);
        assert.match(err.message, /no response from backend for 500 ms/);
        assert.equal(e.stats().activeStreams, 0);
      } finally {
        await srv.close();
      }
    });

    it('our own event loop blocked longer than stallTimeoutMs is not taken for a silent backend', async () => {
      const srv = await scriptedServer(); // answers pings (ws does), sends nothing else
      try {
        const s = await engineOf(kind, srv.url, { pingIntervalMs: 100, stallTimeoutMs: 500 }).start(STREAM, ctx());
        const rec = record(s);
        await new Promise((r) => setTimeout(r, 250)); // a few pongs
        const t0 = Date.now();
        while (Date.now() - t0 < 1200) {
          /* block the loop: the pongs wait unread in the socket */
        }
        await new Promise((r) => setTimeout(r, 400)); // the watchdog runs again, pongs are read
        assert.deepEqual(rec.errors, []);
        s.abort();
      } finally {
        await srv.close();
      }
    });

    it('a backend that closes 1011 mid-stream → retryable provider_error naming the close', async () => {
      const srv = await scriptedServer((ws, f) => {
        if (f.binary) ws.close(1011, 'boom');
      });
      try {
        const s = await engineOf(kind, srv.url).start(STREAM, ctx());
        const failed = waitError(s);
        s.write(new Int16Array(1600));
        const err = await failed;
        assert.equal(err.code, 'provider_error');
        assert.equal(err.retryable, true);
        assert.match(err.message, /1011 boom/);
      } finally {
        await srv.close();
      }
    });

    it('an error frame mid-stream keeps its code, an auth refusal of the gateway\'s key is a non-retryable backend_connection_failed; a malformed frame is a retryable provider_error', async () => {
      const authFrame = kind === 'slng' ? { type: 'error', code: 'auth_error', message: 'key revoked' } : { type: 'Error', err_code: 'INVALID_AUTH', description: 'key revoked' };
      for (const [frame, code, retryable] of [
        [JSON.stringify(authFrame), 'backend_connection_failed', false],
        ['this is not json', 'provider_error', true],
        [JSON.stringify({ type: kind === 'slng' ? 'final_transcript' : 'Results', transcript: 42 }), 'provider_error', true],
      ] as const) {
        const srv = await scriptedServer((ws, f) => {
          if (f.binary) ws.send(frame);
        });
        try {
          const s = await engineOf(kind, srv.url).start(STREAM, ctx());
          const failed = waitError(s);
          s.write(new Int16Array(1600));
          const err = await failed;
          assert.equal(err.code, code, frame);
          assert.equal(err.retryable, retryable, frame);
        } finally {
          await srv.close();
        }
      }
    });

    it('finalize() with no answer from the upstream → one empty fromFinalize final; close() answers a pending finalize on a normal close', async () => {
      const closeType = kind === 'slng' ? 'close' : 'CloseStream';
      const srv = await scriptedServer((ws, f) => {
        if (f.text && JSON.parse(f.text).type === closeType) ws.close(1000);
      });
      try {
        const e = engineOf(kind, srv.url, { finalizeTimeoutMs: 200 });
        let s = await e.start(STREAM, ctx());
        let rec = record(s);
        s.write(new Int16Array(1600));
        s.finalize();
        for (const t0 = Date.now(); rec.finals.length === 0 && Date.now() - t0 < 5000; ) await new Promise((r) => setTimeout(r, 20));
        assert.equal(rec.finals.length, 1);
        assert.equal(rec.finals[0]!.fromFinalize, true);
        assert.equal(rec.finals[0]!.transcript, '');
        await s.close();
        assert.equal(rec.finals.length, 1, 'no second final');
        assert.deepEqual(rec.errors, []);

        s = await e.start(STREAM, ctx());
        rec = record(s);
        s.finalize();
        await s.close(); // upstream closes 1000 without answering the finalize
        assert.deepEqual(rec.finals.map((f) => f.fromFinalize), [true]);
        assert.deepEqual(rec.errors, []);
        assert.equal(e.stats().activeStreams, 0);
      } finally {
        await srv.close();
      }
    });
  });
}

describe('mapping of upstream frames the voxgate upstream does not send', () => {
  it('slng: SLNG-hosted finals with only the §1.3 fields map with documented fills; words without confidence are accepted', async () => {
    const srv = await scriptedServer((ws, f) => {
      if (!f.binary) return;
      ws.send(JSON.stringify({ type: 'partial_transcript', transcript: 'hello' }));
      ws.send(JSON.stringify({ type: 'final_transcript', transcript: 'hello world', confidence: 0.95, language: 'en', duration: 2.5, words: [{ word: 'hello', start: 0.1, end: 0.5 }] }));
      ws.send(JSON.stringify({ type: 'utterance_end', last_word_end: 2.48 }));
      ws.send(JSON.stringify({ type: 'final_transcript', transcript: 'again', speech_final: true }));
    });
    try {
      const s = await engineOf('slng', srv.url).start(STREAM, ctx());
      const rec = record(s);
      s.write(new Int16Array(16000));
      for (const t0 = Date.now(); rec.finals.length < 2 && Date.now() - t0 < 5000; ) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(rec.partials, [{ transcript: 'hello', start: 0, duration: 1 }]);
      assert.deepEqual(rec.finals, [
        { transcript: 'hello world', confidence: 0.95, words: [{ word: 'hello', start: 0.1, end: 0.5, confidence: 0 }], start: 0, duration: 2.5, language: 'en', speechFinal: false, fromFinalize: false },
        { transcript: 'again', confidence: 0, words: [], start: 2.5, duration: 0, language: 'en', speechFinal: true, fromFinalize: false },
      ]);
      assert.deepEqual(rec.errors, []);
      s.abort();
    } finally {
      await srv.close();
    }
  });

  it('deepgram: speaker, languages, punctuated_word, SpeechStarted and interim Results map exactly; Metadata/UtteranceEnd are not relayed', async () => {
    const alt = { transcript: 'Namaste duniya.', confidence: 0.91, languages: ['hi'], words: [
      { word: 'namaste', start: 1.01, end: 1.4, confidence: 0.93, punctuated_word: 'Namaste', speaker: 0, language: 'hi' },
      { word: 'duniya', start: 1.4, end: 1.9, confidence: 0.89, punctuated_word: 'duniya.', speaker: 1, language: 'hi' },
    ] };
    const srv = await scriptedServer((ws, f) => {
      if (!f.binary) return;
      ws.send(JSON.stringify({ type: 'SpeechStarted', channel: [0, 1], timestamp: 0.98 }));
      ws.send(JSON.stringify({ type: 'Results', channel_index: [0, 1], start: 1.0, duration: 0.5, is_final: false, speech_final: false, channel: { alternatives: [{ transcript: 'namaste', confidence: 0.5, words: [alt.words[0]] }] }, metadata: {} }));
      ws.send(JSON.stringify({ type: 'Results', channel_index: [0, 1], start: 1.0, duration: 1.0, is_final: true, speech_final: true, from_finalize: false, channel: { alternatives: [alt] }, metadata: { request_id: 'x' } }));
      ws.send(JSON.stringify({ type: 'UtteranceEnd', channel: [0, 1], last_word_end: 1.9 }));
      ws.send(JSON.stringify({ type: 'Metadata', request_id: 'x', duration: 2 }));
    });
    try {
      const e = engineOf('deepgram', srv.url, { languages: ['hi', 'en'] });
      const s = await e.start({ ...STREAM, language: 'hi' }, ctx());
      const rec = record(s);
      s.write(new Int16Array(16000));
      for (const t0 = Date.now(); rec.finals.length < 1 && Date.now() - t0 < 5000; ) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(rec.speechStarted, [0.98]);
      assert.deepEqual(rec.partials, [{ transcript: 'namaste', start: 1, duration: 0.5, confidence: 0.5, words: [{ word: 'namaste', start: 1.01, end: 1.4, confidence: 0.93, punctuatedWord: 'Namaste', speaker: 0 }] }]);
      assert.deepEqual(rec.finals, [
        {
          transcript: 'Namaste duniya.',
          confidence: 0.91,
          words: [
            { word: 'namaste', start: 1.01, end: 1.4, confidence: 0.93, punctuatedWord: 'Namaste', speaker: 0 },
            { word: 'duniya', start: 1.4, end: 1.9, confidence: 0.89, punctuatedWord: 'duniya.', speaker: 1 },
          ],
          start: 1,
          duration: 1,
          language: 'hi',
          speechFinal: true,
          fromFinalize: false,
        },
      ]);
      assert.deepEqual(rec.errors, []);
      assert.equal(new URL(srv.requests[0]!.url!, 'http://x').searchParams.get('language'), 'hi');
      s.abort();
    } finally {
      await srv.close();
    }
  });
});

describe('upstream settings and registry', () => {
  it('settings are validated per type: unknown keys and reserved query keys are refused naming the instance', () => {
    assert.throws(() => createSlngSttEngine(cfgWith('w1', { type: 'slng', url: 'ws://x', model: 'a/b:c', apiKey: 'oops' }), 'w1'), /engines\.w1 \(type slng\).*apiKey/s);
    assert.throws(() => createDeepgramSttEngine(cfgWith('dg', { type: 'deepgram', url: 'https://x', model: 'nova-3' }), 'dg'), /engines\.dg .*ws:\/\//s);
    assert.throws(() => createDeepgramSttEngine(cfgWith('dg', { type: 'deepgram', url: 'wss://x', model: 'nova-3', query: { encoding: 'opus' } }), 'dg'), /engines\.dg .*query may not set/s);
    assert.throws(() => createSlngSttEngine(cfgWith('w2', { type: 'slng', url: 'ws://x', model: 'a/b:c', pingIntervalMs: 5000 }), 'w2'), /pingIntervalMs/);
    const e = createDeepgramSttEngine(cfgWith('dg', { type: 'deepgram', url: 'wss://api.deepgram.com', model: 'nova-3', languages: ['en', 'hi'] }), 'dg');
    // diarization: Deepgram labels speakers itself (`diarize=true`, issue 13 upstream pass-through).
    assert.deepEqual(e.capabilities, { partials: true, wordTimestamps: true, diarization: true, languages: ['en', 'hi'], inputSampleRate: 16000, endpointing: true, vadEvents: true, passthroughEncodings: ['linear16', 'mulaw', 'alaw', 'opus', 'ogg-opus', 'webm', 'mp3', 'flac', 'aac', 'mp4'] });
  });

  it('the registry creates both types from the config by instance id', async () => {
    const base = loadConfig();
    const m = base.stt.models[0]!;
    const cfg: VoxgateConfig = {
      ...base,
      engines: { 'worker-eu': { type: 'slng', region: 'eu-north-1', url: 'ws://127.0.0.1:1', model: 'local/pocketsphinx:en' }, 'dg-us': { type: 'deepgram', url: 'wss://api.deepgram.com', model: 'nova-3' } },
      stt: { models: [{ ...m, engine: 'worker-eu', backends: ['worker-eu', 'dg-us'] }] },
    };
    const engines = await createSttEngines(cfg);
    assert.ok(engines.get('worker-eu') instanceof SlngSttEngine);
    assert.ok(engines.get('dg-us') instanceof DeepgramSttEngine);
    assert.equal(engines.get('dg-us')!.id, 'dg-us');
  });

  it('the Deepgram shape relays an engine’s own punctuated_word and transcript unchanged', () => {
    const alt = deepgramAlternative('Hello, world.', [
      { word: 'hello', start: 0.1, end: 0.4, confidence: 0.9, punctuatedWord: 'Hello,' },
      { word: 'world', start: 0.5, end: 0.9, confidence: 0.8, punctuatedWord: 'world.' },
    ], 0.85, NO_FORMAT);
    assert.equal(alt.transcript, 'Hello, world.');
    assert.deepEqual(alt.words.map((w) => w.punctuated_word), ['Hello,', 'world.']);
  });
});
