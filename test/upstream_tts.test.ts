/**
 * Upstream TTS engine types `slng` and `deepgram` (issue 10 part 2), driven directly on real sockets:
 * an in-process voxgate on 127.0.0.1:0 is the upstream (its `/v1/tts/<code>` speaks the SLNG
 * unified protocol, its `/v1/speak` is Deepgram's), and tiny local servers inject failures.
 * No network.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import { loadConfig, type VoxgateConfig } from '../src/config/config.js';
import { BackendHealth } from '../src/engines/health.js';
import { FailoverTtsEngine } from '../src/engines/tts/failover.js';
import { TTS_ENGINE_FACTORIES } from '../src/engines/tts/registry.js';
import type { TtsEngine, TtsSynthesisRequest } from '../src/engines/tts/types.js';
import { deepgramReusable } from '../src/engines/tts/upstream/deepgram.js';
import type { UpstreamConnection } from '../src/engines/tts/upstream/common.js';
import { VoxgateError } from '../src/util/errors.js';
import { startConfiguredServer, type TestServer } from './helpers.js';
import { openTts, startTtsServer } from './tts_helpers.js';

const KEY_ENV = 'VOXGATE_TEST_UPSTREAM_TTS_KEY';
const TEXT = 'Hello from the upstream engine.';
const TEXT2 = 'A second segment on the same connection.';
const KAL16 = [{ id: 'kal16', languages: ['en-us', 'en'], gender: 'male' as const, sampleRate: 16000 }];

let up: TestServer;
const engines: TtsEngine[] = [];
const servers: { close(): void }[] = [];

/** A config holding only `engines` (what the factories read). */
function cfgWith(engines: Record<string, Record<string, unknown>>): VoxgateConfig {
  return { ...loadConfig(), engines } as VoxgateConfig;
}

/** Create and init an engine through the registry (type `slng`/`deepgram`), remembered for shutdown. */
async function engine(type: 'slng' | 'deepgram', settings: Record<string, unknown>, id = `${type}-test`): Promise<TtsEngine> {
  const e = TTS_ENGINE_FACTORIES[type]!(cfgWith({ [id]: { type, ...settings } }), id);
  await e.init();
  engines.push(e);
  return e;
}

/** Synthesise one segment, concatenating every chunk (little-endian bytes). */
async function speak(e: TtsEngine, text: string, voice: string, signal?: AbortSignal, speed = 1): Promise<Buffer> {
  const parts: Buffer[] = [];
  const req: TtsSynthesisRequest = { text, voice, speed };
  for await (const c of e.synthesize(req, signal)) parts.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
  return Buffer.concat(parts);
}

/** The error iteration ends with (fails the test when it ends without one). */
async function speakError(e: TtsEngine, text = TEXT, voice = 'kal16', signal?: AbortSignal): Promise<Error & Partial<VoxgateError>> {
  try {
    await speak(e, text, voice, signal);
  } catch (err) {
    return err as Error & Partial<VoxgateError>;
  }
  assert.fail('synthesis should have failed');
}

/** What a direct SLNG unified client of the upstream gets for `text` (kal16, 16 kHz linear16). */
async function directUnified(text: string): Promise<Buffer> {
  const c = await openTts(up, '/v1/tts/local/flite:en');
  c.send({ type: 'init', voice: 'kal16', config: { sample_rate: 16000, encoding: 'linear16', speed: 1 } });
  await c.waitType('ready');
  c.send({ type: 'text', text, flush: false });
  c.send({ type: 'flush' });
  const end = await c.waitType('flushed');
  c.ws.close();
  return c.audio(0, end);
}

/** What a direct Deepgram client of the upstream's `/v1/speak` WebSocket gets for `text`. */
async function directSpeakWs(text: string): Promise<Buffer> {
  const c = await openTts(up, '/v1/speak?model=aura-2-thalia-en&encoding=linear16&sample_rate=24000', { Authorization: `Token ${up.key}` });
  c.send({ type: 'Speak', text });
  c.send({ type: 'Flush' });
  const end = await c.waitType('Flushed');
  c.ws.close();
  return c.audio(0, end);
}

/** A TCP proxy to `port` that counts the connections it accepted. */
async function countingProxy(port: number): Promise<{ port: number; connections: () => number }> {
  let n = 0;
  const srv = net.createServer((sock) => {
    n++;
    const out = net.connect(port, '127.0.0.1');
    sock.pipe(out).pipe(sock);
    sock.on('error', () => out.destroy());
    out.on('error', () => sock.destroy());
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  servers.push({ close: () => srv.close() });
  return { port: (srv.address() as net.AddressInfo).port, connections: () => n };
}

/** A WebSocket server on 127.0.0.1:0 running `onConn` per connection; records upgrade headers. */
async function tinyWs(onConn: (ws: WebSocket, n: number) => void): Promise<{ url: string; auth: string[]; closes: number[] }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const auth: string[] = [];
  const closes: number[] = [];
  let n = 0;
  wss.on('connection', (ws, req) => {
    auth.push(String(req.headers.authorization));
    ws.on('close', (code) => closes.push(code));
    ws.on('error', () => {});
    onConn(ws, n++);
  });
  servers.push({
    close: () => {
      for (const c of wss.clients) c.terminate();
      wss.close();
    },
  });
  return { url: `ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}`, auth, closes };
}

/** An HTTP server answering every upgrade and request with `status` and a JSON body echoing the Authorization header. */
async function refusingHttp(status: number): Promise<string> {
  const body = (req: http.IncomingMessage) => JSON.stringify({ message: `refused; you sent ${req.headers.authorization}` });
  const srv = http.createServer((req, res) => {
    req.resume();
    res.writeHead(status, { 'content-type': 'application/json' }).end(body(req));
  });
  srv.on('upgrade', (req, sock: net.Socket) => {
    const b = body(req);
    sock.end(`HTTP/1.1 ${status} Refused\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(b)}\r\nConnection: close\r\n\r\n${b}`);
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  servers.push({ close: () => srv.close() });
  return `ws://127.0.0.1:${(srv.address() as net.AddressInfo).port}`;
}

/** A port on which nothing listens. */
async function deadPort(): Promise<number> {
  const srv = net.createServer().listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** A tiny SLNG unified server's `ready` handling: answer `init` with `ready`, then `onFlush` per flush. */
function unifiedScript(ws: WebSocket, onFlush: (ws: WebSocket, k: number) => void): void {
  let k = 0;
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString()) as { type: string };
    if (m.type === 'init') ws.send(JSON.stringify({ type: 'ready', session_id: 's1' }));
    if (m.type === 'flush') onFlush(ws, k++);
  });
}

const pcm = (n: number, v = 1000) => Buffer.from(new Int16Array(n).fill(v).buffer);

before(async () => {
  up = await startTtsServer();
  process.env[KEY_ENV] = up.key;
});

after(async () => {
  await Promise.all(engines.map((e) => e.shutdown()));
  for (const s of servers) s.close();
  await up?.cleanup();
  delete process.env[KEY_ENV];
});

describe('slng upstream TTS engine', () => {
  it('relays segments byte-identically to a direct unified client, reusing one upstream connection', async () => {
    const proxy = await countingProxy(up.port);
    const e = await engine('slng', { url: `ws://127.0.0.1:${proxy.port}`, model: 'local/flite:en', apiKeyEnv: KEY_ENV, voices: KAL16 });
    assert.equal(e.synthesize({ text: TEXT, voice: 'kal16', speed: 1 }).sampleRate, 16000);
    const a1 = await speak(e, TEXT, 'kal16');
    const a2 = await speak(e, TEXT2, 'kal16');
    const [d1, d2] = [await directUnified(TEXT), await directUnified(TEXT2)];
    assert.ok(d1.length > 16000, `direct audio too short: ${d1.length} bytes`);
    assert.ok(a1.equals(d1), `segment 1: relayed ${a1.length} bytes differ from direct ${d1.length}`);
    assert.ok(a2.equals(d2), `segment 2: relayed ${a2.length} bytes differ from direct ${d2.length}`);
    assert.equal(proxy.connections(), 1, 'both segments should use one warm upstream connection');
    assert.deepEqual(e.capabilities.languages, ['en']);
    assert.equal(e.capabilities.incremental, true);
  });

  it('prepare() opens the connection ahead of the first segment, which then uses it', async () => {
    const proxy = await countingProxy(up.port);
    const e = await engine('slng', { url: `ws://127.0.0.1:${proxy.port}`, model: 'local/flite:en', apiKeyEnv: KEY_ENV, voices: KAL16 });
    e.prepare!({ voice: 'kal16', speed: 1 });
    const deadline = Date.now() + 5000;
    while (proxy.connections() === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.equal(proxy.connections(), 1, 'prepare should have connected');
    assert.ok((await speak(e, TEXT, 'kal16')).length > 0);
    assert.equal(proxy.connections(), 1);
  });

  it('opens a fresh connection per segment when idleConnectionMs is 0', async () => {
    const proxy = await countingProxy(up.port);
    const e = await engine('slng', { url: `ws://127.0.0.1:${proxy.port}`, model: 'local/flite:en', apiKeyEnv: KEY_ENV, voices: KAL16, idleConnectionMs: 0 });
    await speak(e, TEXT, 'kal16');
    await speak(e, TEXT2, 'kal16');
    assert.equal(proxy.connections(), 2);
  });

  it('sends the key as a Bearer token, init with the voice (upstream case), format and initConfig, and reads audio_chunk as well as binary', async () => {
    const frames: Record<string, unknown>[] = [];
    const srv = await tinyWs((ws) => {
      ws.on('message', (d) => frames.push(JSON.parse(d.toString()) as Record<string, unknown>));
      unifiedScript(ws, (w) => {
        w.send(JSON.stringify({ type: 'segment_start', segment_id: 'seg_001' }));
        w.send(pcm(100, 7));
        w.send(JSON.stringify({ type: 'audio_chunk', data: pcm(50, 9).toString('base64'), sequence: 2 }));
        w.send(JSON.stringify({ type: 'flushed' }));
      });
    });
    const e = await engine('slng', { url: srv.url, model: 'deepgram/aura:2', apiKeyEnv: KEY_ENV, voices: [{ id: 'Aura-2-Thalia-en', languages: ['en'], sampleRate: 24000 }], speed: { min: 0.7, max: 1.5 }, initConfig: { language: 'en', sample_rate: 8000 } });
    const audio = await speak(e, TEXT, 'aura-2-thalia-en', undefined, 1.2);
    assert.ok(audio.equals(Buffer.concat([pcm(100, 7), pcm(50, 9)])));
    assert.deepEqual(srv.auth, [`Bearer ${up.key}`]);
    assert.deepEqual(frames[0], { type: 'init', model: 'deepgram/aura:2', voice: 'Aura-2-Thalia-en', config: { language: 'en', sample_rate: 24000, encoding: 'linear16', speed: 1.2 } });
    assert.deepEqual(frames.slice(1), [{ type: 'text', text: TEXT, flush: false }, { type: 'flush' }]);
  });

  it('ignores malformed upstream frames', async () => {
    const srv = await tinyWs((ws) =>
      unifiedScript(ws, (w) => {
        for (const junk of ['not json', '[1,2]', 'null', '{"type":"audio_chunk","data":5}', '{"type":"segment_end"}', '{"no":"type"}']) w.send(junk);
        w.send(pcm(10, 3));
        w.send(JSON.stringify({ type: 'flushed' }));
      }),
    );
    const e = await engine('slng', { url: srv.url, model: 'm/x:y', voices: KAL16 });
    assert.ok((await speak(e, TEXT, 'kal16')).equals(pcm(10, 3)));
  });

  it('joins samples split across frames at an odd byte', async () => {
    const srv = await tinyWs((ws) =>
      unifiedScript(ws, (w) => {
        const b = pcm(3, 0x1234);
        w.send(b.subarray(0, 3));
        w.send(b.subarray(3));
        w.send(JSON.stringify({ type: 'flushed' }));
      }),
    );
    const e = await engine('slng', { url: srv.url, model: 'm/x:y', voices: KAL16 });
    assert.ok((await speak(e, TEXT, 'kal16')).equals(pcm(3, 0x1234)));
  });

  it('a late flushed of an earlier segment does not end the next one (audio_end first, as voxgate sends)', async () => {
    // Segment k's `flushed` is sent only when segment k+1's flush arrives, so it always lands inside
    // the next segment, before that segment's audio.
    const srv = await tinyWs((ws) =>
      unifiedScript(ws, (w, k) => {
        if (k > 0) w.send(JSON.stringify({ type: 'flushed' }));
        setTimeout(() => {
          w.send(pcm(20, k + 1));
          w.send(JSON.stringify({ type: 'audio_end', duration: 0.001 }));
        }, 30); // the audio comes in a later read than the stale flushed (correctness does not depend on this delay)
      }),
    );
    const e = await engine('slng', { url: srv.url, model: 'm/x:y', voices: KAL16 });
    assert.ok((await speak(e, TEXT, 'kal16')).equals(pcm(20, 1)));
    assert.ok((await speak(e, TEXT2, 'kal16')).equals(pcm(20, 2)));
  });

  it('a warm connection that fails before audio is retried once on a fresh connection', async () => {
    const srv = await tinyWs((ws) =>
      unifiedScript(ws, (w, k) => {
        if (k > 0) return void w.close(1011, 'gone stale');
        w.send(pcm(10, 5));
        w.send(JSON.stringify({ type: 'flushed' }));
      }),
    );
    const e = await engine('slng', { url: srv.url, model: 'm/x:y', voices: KAL16 });
    await speak(e, TEXT, 'kal16');
    assert.ok((await speak(e, TEXT2, 'kal16')).equals(pcm(10, 5)));
    assert.equal(srv.auth.length, 2, 'the second segment needed exactly one fresh connection');
  });

  it('refused connection → retryable backend_connection_failed', async () => {
    const e = await engine('slng', { url: `ws://127.0.0.1:${await deadPort()}`, model: 'm/x:y', apiKeyEnv: KEY_ENV, voices: KAL16 });
    const err = await speakError(e);
    assert.equal(err.code, 'backend_connection_failed');
    assert.equal(err.retryable, true);
    assert.match(err.message, /^Failed to connect to backend: slng-test: connection refused/);
  });

  for (const [status, code, retryable] of [
    [500, 'backend_connection_failed', true],
    [503, 'backend_connection_failed', true],
    [401, 'backend_connection_failed', false],
    [403, 'backend_connection_failed', false],
    [400, 'config_error', false],
    [429, 'rate_limit', true],
  ] as const) {
    it(`HTTP ${status} at the upgrade → ${code}, retryable ${retryable}, key never in the message`, async () => {
      const e = await engine('slng', { url: await refusingHttp(status), model: 'm/x:y', apiKeyEnv: KEY_ENV, voices: KAL16 });
      const err = await speakError(e);
      assert.equal(err.code, code);
      assert.equal(err.retryable, retryable);
      assert.match(err.message, new RegExp(`HTTP ${status}`));
      assert.match(err.message, /refused; you sent Bearer \*\*\*/, 'the upstream detail is kept, the key redacted');
      assert.ok(!err.message.includes(up.key), 'the key leaked into the message');
    });
  }

  it('accept and never answer init → retryable backend_connection_failed after connectTimeoutMs', async () => {
    const srv = await tinyWs(() => {});
    const e = await engine('slng', { url: srv.url, model: 'm/x:y', voices: KAL16, connectTimeoutMs: 300 });
    const err = await speakError(e);
    assert.equal(err.code, 'backend_connection_failed');
    assert.equal(err.retryable, true);
    assert.match(err.message, /no "ready" within 300 ms/);
  });

  it('an error frame answering init maps by its code (auth_error → not retryable)', async () => {
    const srv = await tinyWs((ws) => ws.on('message', () => ws.send(JSON.stringify({ type: 'error', code: 'auth_error', message: `bad key ${up.key}` }))));
    const e = await engine('slng', { url: srv.url, model: 'm/x:y', apiKeyEnv: KEY_ENV, voices: KAL16 });
    const err = await speakError(e);
    assert.equal(err.code, 'backend_connection_failed');
    assert.equal(err.retryable, false);
    assert.ok(!err.message.includes(up.key));
  });

  it('ready, then silence after text → retryable provider_error after stallTimeoutMs', async () => {
    const srv = await tinyWs((ws) => unifiedScript(ws, () => {}));
    const e = await engine('slng', { url: srv.url, model: 'm/x:y', voices: KAL16, stallTimeoutMs: 300 });
    const err = await speakError(e);
    assert.equal(err.code, 'provider_error');
    assert.equal(err.retryable, true);
    assert.match(err.message, /no audio or message from upstream for 300 ms/);
  });

  it('close 1011 mid-segment → retryable provider_error thrown after the audio already relayed', async () => {
    const srv = await tinyWs((ws) =>
      unifiedScript(ws, (w) => {
        w.send(pcm(100, 4));
        setTimeout(() => w.close(1011, 'engine crashed'), 20);
      }),
    );
    const e = await engine('slng', { url: srv.url, model: 'm/x:y', voices: KAL16 });
    let got = 0;
    let err: VoxgateError | null = null;
    try {
      for await (const c of e.synthesize({ text: TEXT, voice: 'kal16', speed: 1 })) got += c.length;
    } catch (x) {
      err = x as VoxgateError;
    }
    assert.equal(got, 100);
    assert.equal(err?.code, 'provider_error');
    assert.equal(err?.retryable, true);
    assert.match(err!.message, /1011 engine crashed/);
  });

  it('an upstream error frame mid-segment → retryable provider_error', async () => {
    const srv = await tinyWs((ws) => unifiedScript(ws, (w) => w.send(JSON.stringify({ type: 'error', code: 'provider_error', message: 'engine failed' }))));
    const e = await engine('slng', { url: srv.url, model: 'm/x:y', voices: KAL16 });
    const err = await speakError(e);
    assert.equal(err.code, 'provider_error');
    assert.equal(err.retryable, true);
    assert.match(err.message, /engine failed/);
  });

  it('aborting the signal ends iteration with an AbortError and closes the upstream socket', async () => {
    const srv = await tinyWs((ws) =>
      unifiedScript(ws, (w) => {
        const t = setInterval(() => w.readyState === w.OPEN && w.send(pcm(160)), 10); // endless audio
        w.on('close', () => clearInterval(t));
      }),
    );
    const e = await engine('slng', { url: srv.url, model: 'm/x:y', voices: KAL16 });
    const ctl = new AbortController();
    const it = e.synthesize({ text: TEXT, voice: 'kal16', speed: 1 }, ctl.signal)[Symbol.asyncIterator]();
    assert.equal((await it.next()).done, false);
    assert.equal((await it.next()).done, false);
    ctl.abort(); // while the consumer is busy elsewhere: the socket must close without another next()
    const deadline = Date.now() + 3000;
    while (srv.closes.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(srv.closes.length, 1, 'the upstream socket should be closed at the abort');
    await assert.rejects(it.next(), { name: 'AbortError' });
    assert.equal((e as unknown as { openConnections: number }).openConnections, 0);
  });

  it('aborting while the connection waits for ready ends with an AbortError, not a connect timeout', async () => {
    const srv = await tinyWs(() => {}); // never answers init
    const e = await engine('slng', { url: srv.url, model: 'm/x:y', voices: KAL16, connectTimeoutMs: 30_000 });
    const ctl = new AbortController();
    const p = speakError(e, TEXT, 'kal16', ctl.signal);
    while (srv.auth.length === 0) await new Promise((r) => setTimeout(r, 5));
    ctl.abort();
    assert.equal((await p).name, 'AbortError');
    const deadline = Date.now() + 3000;
    while (srv.closes.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(srv.closes.length, 1, 'the half-open upstream socket should be released');
  });

  it('rejects unknown settings naming the instance, and a missing key variable', async () => {
    assert.throws(() => TTS_ENGINE_FACTORIES.slng!(cfgWith({ 'up-eu': { type: 'slng', url: 'ws://x', model: 'a/b', voices: KAL16, apiKey: 'secret' } }), 'up-eu'), /engines\.up-eu \(type slng\) is invalid[\s\S]*apiKey/);
    assert.throws(() => TTS_ENGINE_FACTORIES.slng!(cfgWith({ u: { type: 'slng', url: 'ws://x', voices: KAL16 } }), 'u'), /engines\.u \(type slng\) is invalid[\s\S]*model/);
    const e = TTS_ENGINE_FACTORIES.slng!(cfgWith({ u: { type: 'slng', url: 'ws://x', model: 'a/b', voices: KAL16, apiKeyEnv: 'VOXGATE_TEST_UNSET_VARIABLE' } }), 'u');
    await assert.rejects(e.init(), /engines\.u: the environment variable VOXGATE_TEST_UNSET_VARIABLE \(apiKeyEnv\) is not set/);
  });
});

describe('deepgram upstream TTS engine', () => {
  it('ws: relays byte-identically to a direct /v1/speak client, with Aura-2 voices at 24 kHz by default', async () => {
    const e = await engine('deepgram', { url: up.wsUrl, apiKeyEnv: KEY_ENV });
    assert.equal(e.synthesize({ text: TEXT, voice: 'aura-2-thalia-en', speed: 1 }).sampleRate, 24000);
    assert.deepEqual(e.capabilities.speed, { min: 0.7, max: 1.5 });
    const a = await speak(e, TEXT, 'aura-2-thalia-en');
    const a2 = await speak(e, TEXT2, 'aura-2-thalia-en');
    const [d, d2] = [await directSpeakWs(TEXT), await directSpeakWs(TEXT2)];
    assert.ok(d.length > 24000, `direct audio too short: ${d.length}`);
    assert.ok(a.equals(d), `relayed ${a.length} bytes differ from direct ${d.length}`);
    assert.ok(a2.equals(d2), `segment 2: relayed ${a2.length} bytes differ from direct ${d2.length}`);
  });

  it('rest: relays byte-identically to a direct POST /v1/speak', async () => {
    const e = await engine('deepgram', { url: `http://127.0.0.1:${up.port}`, apiKeyEnv: KEY_ENV, transport: 'rest' });
    const a = await speak(e, TEXT, 'aura-2-thalia-en');
    const res = await fetch(`http://127.0.0.1:${up.port}/v1/speak?model=aura-2-thalia-en&encoding=linear16&sample_rate=24000&container=none`, {
      method: 'POST',
      headers: { Authorization: `Token ${up.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ text: TEXT }),
    });
    assert.equal(res.status, 200);
    const d = Buffer.from(await res.arrayBuffer());
    assert.ok(d.length > 24000);
    assert.ok(a.equals(d), `relayed ${a.length} bytes differ from direct ${d.length}`);
  });

  it('ws: sends Token auth, the voice/format/speed in the URL, Speak + Flush; ends at Flushed', async () => {
    const seen: { url: string; frames: unknown[] } = { url: '', frames: [] };
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(wss, 'listening');
    servers.push({ close: () => wss.close() });
    let auth = '';
    wss.on('connection', (ws, req) => {
      seen.url = req.url!;
      auth = String(req.headers.authorization);
      ws.send(JSON.stringify({ type: 'Metadata', request_id: 'r' }));
      ws.on('message', (d) => {
        const m = JSON.parse(d.toString()) as { type: string };
        seen.frames.push(m);
        if (m.type === 'Flush') {
          ws.send(pcm(40, 2));
          ws.send(JSON.stringify({ type: 'Warning', description: 'something harmless', code: 'X' }));
          ws.send(JSON.stringify({ type: 'Flushed', sequence_id: 0 }));
        }
      });
    });
    const e = await engine('deepgram', { url: `ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}`, apiKeyEnv: KEY_ENV, sampleRate: 16000 });
    assert.ok((await speak(e, TEXT, 'aura-2-thalia-en', undefined, 1.25)).equals(pcm(40, 2)));
    assert.equal(auth, `Token ${up.key}`);
    assert.equal(seen.url, '/v1/speak?model=aura-2-thalia-en&encoding=linear16&sample_rate=16000&speed=1.25');
    assert.deepEqual(seen.frames, [{ type: 'Speak', text: TEXT }, { type: 'Flush' }]);
  });

  for (const [status, code, retryable] of [
    [500, 'backend_connection_failed', true],
    [401, 'backend_connection_failed', false],
    [400, 'config_error', false],
    [429, 'rate_limit', true],
  ] as const) {
    for (const transport of ['ws', 'rest'] as const) {
      it(`${transport}: HTTP ${status} → ${code}, retryable ${retryable}, key redacted`, async () => {
        const e = await engine('deepgram', { url: await refusingHttp(status), apiKeyEnv: KEY_ENV, transport });
        const err = await speakError(e, TEXT, 'aura-2-thalia-en');
        assert.equal(err.code, code);
        assert.equal(err.retryable, retryable);
        assert.match(err.message, /refused; you sent Token \*\*\*/);
        assert.ok(!err.message.includes(up.key));
      });
    }
  }

  it('rest: refused → retryable backend_connection_failed', async () => {
    const e = await engine('deepgram', { url: `http://127.0.0.1:${await deadPort()}`, transport: 'rest' });
    const err = await speakError(e, TEXT, 'aura-2-thalia-en');
    assert.equal(err.code, 'backend_connection_failed');
    assert.equal(err.retryable, true);
    assert.match(err.message, /connection refused/);
  });

  it('ws: accepted but no audio after Speak → retryable provider_error', async () => {
    const srv = await tinyWs(() => {});
    const e = await engine('deepgram', { url: srv.url, stallTimeoutMs: 300 });
    const err = await speakError(e, TEXT, 'aura-2-thalia-en');
    assert.equal(err.code, 'provider_error');
    assert.equal(err.retryable, true);
  });

  it('ws: a flush-rate Warning fails the segment instead of waiting for a Flushed that never comes', async () => {
    const srv = await tinyWs((ws) => ws.on('message', () => ws.send(JSON.stringify({ type: 'Warning', code: 'FLUSH_LIMIT_EXCEEDED', description: 'Flush not processed' }))));
    const e = await engine('deepgram', { url: srv.url, stallTimeoutMs: 10_000 });
    const err = await speakError(e, TEXT, 'aura-2-thalia-en');
    assert.equal(err.code, 'provider_error');
    assert.match(err.message, /refused the flush/);
  });

  it('a connection is reused only while it has flush budget (20 per 60 s) and is young enough', () => {
    const now = 1e9;
    const conn = (flushes: number, age = 0) => ({ flushTimes: Array.from({ length: flushes }, (_, i) => now - 1000 * i), openedAt: now - age }) as unknown as UpstreamConnection;
    assert.equal(deepgramReusable(conn(19), now), true);
    assert.equal(deepgramReusable(conn(20), now), false);
    assert.equal(deepgramReusable(conn(1, 56 * 60_000), now), false);
  });
});

describe('upstream TTS through FailoverTtsEngine', () => {
  it('first backend refuses, second speaks: audio arrives and the failure is recorded', async () => {
    const dead = await engine('slng', { url: `ws://127.0.0.1:${await deadPort()}`, model: 'local/flite:en', apiKeyEnv: KEY_ENV, voices: KAL16 }, 'worker-a');
    const live = await engine('slng', { url: up.wsUrl, model: 'local/flite:en', apiKeyEnv: KEY_ENV, voices: KAL16 }, 'worker-b');
    const health = new BackendHealth();
    const failovers: string[] = [];
    const f = new FailoverTtsEngine(
      [
        { id: 'worker-a', engine: dead, region: 'us-east-1', worldPart: 'na' },
        { id: 'worker-b', engine: live, region: 'us-east-1', worldPart: 'na' },
      ],
      { health, onFailover: (from, to, reason) => failovers.push(`${from.id}->${to?.id}: ${reason.code}`) },
    );
    const audio = await speak(f, TEXT, 'kal16');
    assert.ok(audio.equals(await directUnified(TEXT)));
    assert.equal(f.lastBackend?.id, 'worker-b');
    assert.deepEqual(failovers, ['worker-a->worker-b: backend_connection_failed']);
    assert.equal(health.state('worker-a'), 'cooling');
  });

  it('401 from the first backend goes to the client: no failover', async () => {
    const bad = await engine('slng', { url: await refusingHttp(401), model: 'local/flite:en', apiKeyEnv: KEY_ENV, voices: KAL16 }, 'worker-401');
    const live = await engine('slng', { url: up.wsUrl, model: 'local/flite:en', apiKeyEnv: KEY_ENV, voices: KAL16 }, 'worker-ok');
    const f = new FailoverTtsEngine(
      [
        { id: 'worker-401', engine: bad, region: 'us-east-1', worldPart: 'na' },
        { id: 'worker-ok', engine: live, region: 'us-east-1', worldPart: 'na' },
      ],
      { health: new BackendHealth() },
    );
    const err = await speakError(f);
    assert.equal(err.code, 'backend_connection_failed');
    assert.equal(err.retryable, false);
  });
});

describe('a gateway voxgate serving a model from an slng upstream', () => {
  it('a unified client of the gateway gets the same audio as a direct client of the worker', async () => {
    const base = loadConfig();
    const gw = await startConfiguredServer({
      ...base,
      engines: { pocketsphinx: { minIdleDecoders: 1, maxDecoders: 2 }, 'worker-us': { type: 'slng', region: 'us-east-1', url: up.wsUrl, model: 'local/flite:en', apiKeyEnv: KEY_ENV, voices: KAL16 } },
      tts: { ...base.tts, models: [{ code: 'slng/local/flite:en', engine: 'worker-us', dialect: 'unified', audio: 'binary' }] },
    });
    try {
      const c = await openTts(gw, '/v1/tts/slng/local/flite:en');
      c.send({ type: 'init', voice: 'kal16', config: { sample_rate: 16000, encoding: 'linear16' } });
      await c.waitType('ready');
      c.send({ type: 'text', text: TEXT, flush: true });
      const end = await c.waitType('flushed');
      c.ws.close();
      const relayed = c.audio(0, end);
      const direct = await directUnified(TEXT);
      assert.ok(relayed.equals(direct), `gateway ${relayed.length} bytes vs worker ${direct.length}`);
    } finally {
      await gw.cleanup();
    }
  });
});
