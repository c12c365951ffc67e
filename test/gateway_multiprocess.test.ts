/**
 * voxgate as a gateway, proven with real processes (issue 10 "Tests"): a gateway `voxgate serve`
 * and two engine-worker `voxgate serve` processes on loopback — each worker on the embedded engines,
 * labelled with its own region (us-east-1 / world part na, eu-north-1 / eu) — and a fault-injecting
 * TCP proxy (test/support/fault_proxy.ts) between the gateway and each worker. The gateway reaches
 * the workers through `slng` engine instances (SLNG unified protocol, shared/spec/protocols.md §1.3).
 *
 * Which worker served a session is read from the worker itself: its `session ready` /
 * `tts session ready` log lines (one per session it accepted), never from the gateway.
 *
 * Cases: the seed quick-start client (unified messages) and the official `@deepgram/sdk` unchanged
 * through the gateway; region and world-part overrides (header and query, header wins) pick the
 * right worker, unknown values get HTTP 400 listing the valid ones; a pinned region that is down →
 * `backend_connection_failed` in the unified, Deepgram-style and `/v1/listen` dialects; unpinned →
 * transparent failover for refuse, HTTP 500, stall and cut faults; a worker killed mid-utterance →
 * the transcript's words equal the no-fault run's; TTS failover before the first audio byte.
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DeepgramClient } from '@deepgram/sdk';
import { eventually, loadClip, openSocket, silence, type Clip, type RecordingClient } from './helpers.js';
import { FaultProxy } from './support/fault_proxy.js';
import { startVoxgateProcess, stopAllProcesses, type VoxgateProcess } from './support/processes.js';

/** The seed model code (seeds 000/001/004). */
const SEED = 'slng/deepgram/nova:3-en';
/** A relayed model answering in the unified dialect only. */
const UNIFIED = 'relay/unified:en';
/** A relayed model answering in the Deepgram-style dialect (protocols.md §1.4). */
const DG_STYLE = 'relay/deepgram-style:en';
/** The relayed TTS model. */
const TTS = 'slng/deepgram/aura:2-en';

describe('gateway + two workers as real processes, fault proxies between them', () => {
  let us: VoxgateProcess;
  let eu: VoxgateProcess;
  let gw: VoxgateProcess;
  let pUs: FaultProxy;
  let pEu: FaultProxy;
  let clip: Clip;
  let short: Clip;

  /** `session ready` lines a worker has logged so far (one per STT session it accepted). */
  const sttSessions = (w: VoxgateProcess) => w.logsWithMsg('session ready').length;
  const ttsSessions = (w: VoxgateProcess) => w.logsWithMsg('tts session ready').length;

  /**
   * A gateway with a fresh backend-health state (cool-downs are per gateway process, and a fault
   * case leaves its failed backend cooling): stops the current one, starts another on the same workers.
   */
  async function startGateway(): Promise<VoxgateProcess> {
    if (gw) await gw.stop();
    const worker = (region: string, url: string, keyEnv: string, model: string) => ({ type: 'slng', region, url, model, apiKeyEnv: keyEnv, languages: ['en'], connectTimeoutMs: 1500, stallTimeoutMs: 2500, replayPace: null });
    const ttsWorker = { type: 'slng', model: 'local/flite:en', voices: [{ id: 'kal16', languages: ['en-us', 'en'], gender: 'male', sampleRate: 16000 }], initConfig: { pacing: false }, connectTimeoutMs: 1500, idleConnectionMs: 0 };
    return startVoxgateProcess({
      role: 'gateway',
      config: {
        gateway: { region: 'us-east-1' },
        engines: {
          'worker-us': worker('us-east-1', pUs.wsUrl, 'WORKER_US_KEY', 'local/pocketsphinx:en'),
          'worker-eu': worker('eu-north-1', pEu.wsUrl, 'WORKER_EU_KEY', 'local/pocketsphinx:en'),
          // TTS and STT need separate instances (docs/tts.md "Upstream engines"); no warm connections, so
          // each segment connects through the proxy as it is at that moment.
          'tts-us': { ...ttsWorker, region: 'us-east-1', url: pUs.wsUrl, apiKeyEnv: 'WORKER_US_KEY' },
          'tts-eu': { ...ttsWorker, region: 'eu-north-1', url: pEu.wsUrl, apiKeyEnv: 'WORKER_EU_KEY' },
        },
        stt: {
          models: [
            { code: SEED, engine: 'worker-us', backends: ['worker-us', 'worker-eu'], dialect: 'dual', aliases: ['nova-3'] },
            { code: UNIFIED, engine: 'worker-us', backends: ['worker-us', 'worker-eu'], dialect: 'unified' },
            { code: DG_STYLE, engine: 'worker-us', backends: ['worker-us', 'worker-eu'], dialect: 'deepgram-style' },
          ],
        },
        compat: { defaultSttModel: SEED },
        tts: { models: [{ code: TTS, engine: 'tts-us', backends: ['tts-us', 'tts-eu'], dialect: 'unified', audio: 'binary', defaultVoice: 'kal16' }] },
      },
      env: { WORKER_US_KEY: us.key, WORKER_EU_KEY: eu.key },
    });
  }

  before(async () => {
    [us, eu, clip, short] = await Promise.all([
      startVoxgateProcess({ role: 'worker', region: 'us-east-1' }),
      startVoxgateProcess({ role: 'worker', region: 'eu-north-1' }),
      loadClip('asr_en/en_ls_1272-128104-0000.wav'),
      loadClip('asr_en/en_cmu_goforward.wav'),
    ]);
    pUs = await FaultProxy.start(us.wsUrl);
    pEu = await FaultProxy.start(eu.wsUrl);
    gw = await startGateway();
  });
  after(async () => {
    await stopAllProcesses();
    await pUs?.close();
    await pEu?.close();
  });
  beforeEach(() => {
    pUs?.pass();
    pEu?.pass();
  });

  /** Open an STT WebSocket on the gateway (`path` after the host), authenticated with its key. */
  const open = (path: string, headers: Record<string, string> = {}) => openSocket(`${gw.wsUrl}${path}`, { Authorization: `Bearer ${gw.key}`, ...headers });
  const init = (c: RecordingClient) => c.sendJson({ type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16', enable_partials: true } });

  /** Stream `bytes` in 100 ms chunks at `speed`× real time (Infinity = as fast as possible). */
  async function stream(c: RecordingClient, bytes: Buffer, speed = Infinity, onChunk?: (sentMs: number) => void): Promise<void> {
    const chunk = 3200;
    const t0 = Date.now();
    for (let o = 0, k = 0; o < bytes.length; o += chunk, k++) {
      if (c.ws.readyState !== c.ws.OPEN) return;
      c.ws.send(bytes.subarray(o, o + chunk));
      onChunk?.((k + 1) * 100);
      if (Number.isFinite(speed)) {
        const due = t0 + ((k + 1) * 100) / speed;
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  /** Unified finals' transcripts so far, joined. */
  const unifiedText = (c: RecordingClient) =>
    c.messages
      .filter((m) => m.type === 'final_transcript')
      .map((m) => m.transcript as string)
      .filter(Boolean)
      .join(' ');

  /** One whole unified session: init, the clip (+ silence), close; returns the client after the server closed. */
  async function transcribe(path: string, headers: Record<string, string> = {}, audio = short.bytes): Promise<RecordingClient> {
    const c = await open(path, headers);
    init(c);
    await c.waitType('ready');
    await stream(c, Buffer.concat([audio, silence(500)]));
    c.sendJson({ type: 'close' });
    const closed = await c.closed;
    assert.equal(closed.code, 1000, `close ${closed.code} ${closed.reason}; messages ${JSON.stringify(c.messages)}`);
    return c;
  }

  it('the seed quick-start client (ready / partial_transcript / final_transcript) works unchanged through the gateway, served by the home-region worker', async () => {
    const u0 = sttSessions(us);
    const e0 = sttSessions(eu);
    const c = await transcribe(`/v1/stt/${SEED}`, {}, clip.bytes);
    const ready = c.messages.find((m) => m.type === 'ready')!;
    assert.equal(typeof ready.session_id, 'string');
    const text = unifiedText(c);
    assert.match(text, /\b(quilter|apostle|middle|classes|gospel)\b/i, text);
    assert.equal(sttSessions(us), u0 + 1, 'the us-east-1 worker served it');
    assert.equal(sttSessions(eu), e0);
    assert.ok(pUs.stats.bytesUp > clip.bytes.length, 'the audio went through the us proxy');
  });

  it('the official @deepgram/sdk live client works unchanged through the gateway (/v1/listen)', async () => {
    const http = gw.httpUrl;
    const client = new DeepgramClient({ apiKey: gw.key, environment: { base: http, production: gw.wsUrl, agent: gw.wsUrl, agentRest: http } });
    const u0 = sttSessions(us);
    const connection = await client.listen.v1.connect({
      model: 'nova-3',
      language: 'en',
      encoding: 'linear16',
      sample_rate: 16000,
      interim_results: 'true',
      Authorization: `Token ${gw.key}`,
      reconnectAttempts: 0,
    });
    const messages: Record<string, unknown>[] = [];
    const closed = new Promise<void>((resolve) => connection.on('close', () => resolve()));
    connection.on('message', (m: unknown) => messages.push(m as Record<string, unknown>));
    connection.connect();
    await connection.waitForOpen();
    for (let o = 0; o < clip.bytes.length; o += 3200) connection.sendMedia(clip.bytes.subarray(o, o + 3200));
    connection.sendMedia(silence(500));
    connection.sendCloseStream({ type: 'CloseStream' });
    await closed;
    const finals = messages.filter((m) => m.type === 'Results' && m.is_final === true);
    const text = finals.map((m) => (m.channel as { alternatives: { transcript: string }[] }).alternatives[0]!.transcript).join(' ');
    assert.match(text, /\b(quilter|apostle|middle|classes|gospel)\b/i, JSON.stringify(messages).slice(0, 2000));
    assert.ok(messages.some((m) => m.type === 'Metadata'));
    assert.equal(sttSessions(us), u0 + 1);
  });

  it('region and world-part overrides (header or query; header wins) pick the right worker', async () => {
    const cases: { path: string; headers?: Record<string, string>; want: 'us' | 'eu' }[] = [
      { path: `/v1/stt/${UNIFIED}`, headers: { 'X-Region-Override': 'eu-north-1' }, want: 'eu' },
      { path: `/v1/stt/${UNIFIED}?region=eu-north-1`, want: 'eu' },
      { path: `/v1/stt/${UNIFIED}`, headers: { 'X-World-Part-Override': 'eu' }, want: 'eu' },
      { path: `/v1/stt/${UNIFIED}?world-part=eu`, want: 'eu' },
      { path: `/v1/stt/${UNIFIED}?region=eu-north-1`, headers: { 'X-Region-Override': 'us-east-1' }, want: 'us' },
      { path: `/v1/stt/${UNIFIED}?world-part=eu`, headers: { 'X-World-Part-Override': 'na' }, want: 'us' },
      { path: `/v1/stt/${UNIFIED}?region=us-east-1`, want: 'us' },
    ];
    for (const k of cases) {
      const u0 = sttSessions(us);
      const e0 = sttSessions(eu);
      const c = await open(k.path, k.headers);
      init(c);
      await c.waitType('ready');
      await eventually(() => sttSessions(us) + sttSessions(eu) > u0 + e0, 5000, `a worker session for ${JSON.stringify(k)}`);
      assert.deepEqual([sttSessions(us) - u0, sttSessions(eu) - e0], k.want === 'us' ? [1, 0] : [0, 1], JSON.stringify(k));
      c.ws.terminate();
    }
  });

  it('an unknown region or world part, or one the model is not offered in, is refused before the upgrade with HTTP 400 listing the valid values', async () => {
    for (const q of ['region=mars-1', 'world-part=xx', 'region=ap-southeast-2']) {
      const err = (await open(`/v1/stt/${UNIFIED}?${q}`).then(
        () => assert.fail(`upgrade accepted for ${q}`),
        (e: { statusCode?: number; body?: string }) => e,
      )) as { statusCode?: number; body?: string };
      assert.equal(err.statusCode, 400, q);
      const body = JSON.parse(err.body ?? '{}') as Record<string, unknown>;
      assert.ok(JSON.stringify(body).includes('us-east-1') && JSON.stringify(body).includes('eu-north-1'), `${q}: ${err.body}`);
    }
  });

  /**
   * Open `path` on the gateway, start a session in its dialect and return everything the client
   * learned about the failure: an HTTP refusal of the upgrade (status + body), or the messages and
   * the close frame. Never throws for a refused or closed session.
   */
  async function failedSession(path: string, headers: Record<string, string>, start: (c: RecordingClient) => void): Promise<{ status?: number; body?: string; messages: Record<string, unknown>[]; close?: { code: number; reason: string } }> {
    let c: RecordingClient;
    try {
      c = await open(path, headers);
    } catch (e) {
      const r = e as { statusCode?: number; body?: string };
      if (r.statusCode === undefined) throw e;
      return { status: r.statusCode, body: r.body, messages: [] };
    }
    start(c);
    const close = await Promise.race([c.closed, new Promise<undefined>((r) => setTimeout(r, 15000))]);
    if (!close) c.ws.terminate();
    return { messages: c.messages, close };
  }

  it('a pinned region that is down → backend_connection_failed in the unified, Deepgram-style and /v1/listen dialects', async () => {
    await pEu.stopListening();
    try {
      const u0 = sttSessions(us);
      const said = (r: Awaited<ReturnType<typeof failedSession>>) => JSON.stringify(r);
      // unified: error frame {type:"error", code, message} (protocols.md §1.3), or the same JSON in a 502.
      const a = await failedSession(`/v1/stt/${UNIFIED}`, { 'X-Region-Override': 'eu-north-1' }, init);
      const ea = a.messages.find((m) => m.type === 'error') ?? (a.body ? (JSON.parse(a.body) as Record<string, unknown>) : {});
      assert.equal(ea.code ?? ea.error, 'backend_connection_failed', said(a));
      assert.match(String(ea.message), /^Failed to connect to backend: /, said(a));
      assert.ok(!a.messages.some((m) => m.type === 'final_transcript'), said(a));
      // Deepgram-style (protocols.md §1.4): capitalised Error with SLNG code/message (seed 001 shape).
      const b = await failedSession(`/v1/stt/${DG_STYLE}?region=eu-north-1`, {}, init);
      const eb = b.messages.find((m) => m.type === 'Error') ?? (b.body ? (JSON.parse(b.body) as Record<string, unknown>) : {});
      assert.equal(eb.code ?? eb.error, 'backend_connection_failed', said(b));
      assert.match(String(eb.message), /^Failed to connect to backend: /, said(b));
      // Deepgram /v1/listen: the client learns it from the 502 body, an error message or the close reason.
      const c = await failedSession(`/v1/listen?encoding=linear16&sample_rate=16000&region=eu-north-1`, {}, (x) => x.ws.send(silence(200)));
      assert.match(said(c), /backend_connection_failed|Failed to connect to backend/, said(c));
      assert.ok(c.status === 502 || (c.close !== undefined && c.close.code !== 1000), said(c));
      assert.equal(sttSessions(us), u0, 'a pinned region never falls over to another region');
    } finally {
      await pEu.resumeListening();
    }
  });

  for (const fault of ['refuse', 'http500', 'stall', 'cut'] as const) {
    it(`unpinned, home worker faulty (${fault}) → transparent failover to the other region`, async () => {
      gw = await startGateway();
      if (fault === 'refuse') pUs.refuse();
      else if (fault === 'http500') pUs.http500();
      else if (fault === 'stall') pUs.stall();
      else pUs.cutAfter(400, 'down'); // the 101 answer, `ready` and a first partial pass, then the connection dies mid-stream
      const e0 = sttSessions(eu);
      const c = await transcribe(`/v1/stt/${UNIFIED}`);
      assert.ok(!c.messages.some((m) => m.type === 'error'), JSON.stringify(c.messages));
      assert.match(unifiedText(c), /\b(go|forward|ten|meters)\b/i, JSON.stringify(c.messages));
      assert.ok(sttSessions(eu) > e0, 'the eu-north-1 worker served it');
    });
  }

  it('a worker killed mid-utterance: the client sees no error and the transcript words equal the no-fault run', async () => {
    gw = await startGateway();
    const audio = Buffer.concat([clip.bytes, silence(800)]);
    const words = (c: RecordingClient) => unifiedText(c).toLowerCase().split(/\s+/).filter(Boolean);
    // No-fault reference, through the same gateway and the same (us) worker.
    const ref = await transcribe(`/v1/stt/${UNIFIED}`, {}, audio);
    assert.ok(words(ref).length >= 4, unifiedText(ref));

    const e0 = sttSessions(eu);
    const c = await open(`/v1/stt/${UNIFIED}`);
    init(c);
    await c.waitType('ready');
    let killed = false;
    let midUtterance = false;
    // 2× real time; kill the us worker's connection once an interim with words is out (mid-utterance).
    await stream(c, audio, 2, () => {
      if (!killed && c.messages.some((m) => m.type === 'partial_transcript' && String(m.transcript).split(' ').length >= 2)) {
        killed = true;
        const types = c.messages.map((m) => m.type);
        midUtterance = types.lastIndexOf('partial_transcript') > types.lastIndexOf('final_transcript');
        pUs.refuse();
        pUs.killAll();
      }
    });
    c.sendJson({ type: 'close' });
    const closed = await c.closed;
    assert.ok(killed && midUtterance, 'the kill happened mid-utterance (words shown in a partial, not yet in a final)');
    assert.equal(closed.code, 1000);
    assert.ok(!c.messages.some((m) => m.type === 'error'), JSON.stringify(c.messages));
    assert.ok(sttSessions(eu) > e0, 'the session moved to the eu worker');
    assert.deepEqual(words(c), words(ref));
  });

  // `cut`: the worker's 101 (129 bytes), `ready` and `segment_start` pass, the connection dies inside the
  // first audio frame (measured: first binary frame starts at byte 233), so no audio byte reached the gateway.
  for (const fault of ['http500', 'cut'] as const) {
    it(`TTS: the home worker fails before the first audio byte (${fault}) → the segment is spoken by the other worker`, async () => {
      gw = await startGateway();
      if (fault === 'http500') pUs.http500();
      else pUs.cutAfter(300, 'down');
      const e0 = ttsSessions(eu);
      const u0 = pUs.stats.accepted;
      const c = await open(`/v1/tts/${TTS}`);
      const audio: Buffer[] = [];
      c.ws.on('message', (d, isBinary) => {
        if (isBinary) audio.push(d as Buffer);
      });
      c.sendJson({ type: 'init', voice: 'kal16', config: { encoding: 'linear16', sample_rate: 16000 } });
      await c.waitType('ready');
      c.sendJson({ type: 'text', text: 'Hello from the other region.', flush: true });
      await c.waitFor((m) => m.type === 'flushed' || m.type === 'audio_end', 20000);
      assert.ok(!c.messages.some((m) => m.type === 'error'), JSON.stringify(c.messages));
      const bytes = audio.reduce((n, b) => n + b.length, 0);
      assert.ok(bytes > 16000, `got ${bytes} bytes of audio`);
      assert.ok(pUs.stats.accepted > u0, 'the home worker was tried first');
      assert.ok(ttsSessions(eu) > e0, 'the eu worker synthesised it');
      c.ws.terminate();
    });
  }
});
