/**
 * Sessions driven by the scripted fake engines (src/engines/stt/fake, src/engines/tts/fake) through a
 * real gateway on 127.0.0.1:0 and real `ws` clients: finals order, an engine failure at start and
 * mid-stream in every STT dialect, and a TTS engine failure mid-segment (issue 10 Part 1). The fakes
 * fire on audio time, so nothing here depends on timing.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { loadConfig, type VoxgateConfig } from '../src/config/config.js';
import { FakeEngineError, FakeSttEngine, type FakeSttScript } from '../src/engines/stt/fake/index.js';
import { FakeTtsEngine } from '../src/engines/tts/fake/index.js';
import { DRAIN_STALL_MIN_SECONDS } from '../src/session/stt_session.js';
import { openSocket, silence, startConfiguredServer, type RecordingClient, type TestServer } from './helpers.js';
import { openTtsSession } from './tts_helpers.js';

const UNIFIED = 'test/fake:en';
const DG_STYLE = 'test/fake:en-deepgram';
const TTS = 'test/fake:tts';

/** A gateway whose whole catalogue is served by the fake engines (no real engine is loaded). */
async function startFakeServer(limits: Partial<VoxgateConfig['limits']> = {}): Promise<TestServer> {
  const base = loadConfig();
  const config: VoxgateConfig = {
    ...base,
    stt: {
      models: [
        // The registry gives the engine the script and capabilities of the first entry naming it.
        { code: UNIFIED, engine: 'fake', dialect: 'unified', options: { script: { finalizeTranscript: 'from the config' }, capabilities: { diarization: true, languages: ['en', 'hi'] } }, aliases: [] },
        { code: DG_STYLE, engine: 'fake', dialect: 'deepgram-style', options: {}, aliases: [] },
      ],
    },
    tts: { ...base.tts, models: [{ code: TTS, engine: 'fake', dialect: 'unified', audio: 'binary' }] },
    compat: { defaultSttModel: UNIFIED },
    limits: { ...base.limits, ...limits },
  };
  return startConfiguredServer(config);
}

/** A result as the client saw it: final or interim, and its transcript. */
interface Seen {
  final: boolean;
  text: string;
}

/**
 * The STT dialects: how to open a session on each, read its results, and check the error a failed
 * engine stream ends the session with (as each dialect renders it today).
 */
const DIALECTS: {
  name: string;
  open(s: TestServer): Promise<RecordingClient>;
  results(c: RecordingClient): Seen[];
  checkFailure(c: RecordingClient, closed: { code: number; reason: string }, message: string): void;
}[] = [
  {
    name: 'unified',
    async open(s) {
      const c = await openSocket(`${s.wsUrl}/v1/stt/${UNIFIED}`, { Authorization: `Bearer ${s.key}` });
      c.sendJson({ type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16', enable_partials: true } });
      await c.waitType('ready');
      return c;
    },
    results: (c) =>
      c.messages.flatMap((m) => (m.type === 'final_transcript' || m.type === 'partial_transcript' ? [{ final: m.type === 'final_transcript', text: m.transcript as string }] : [])),
    checkFailure(c, closed, message) {
      assert.deepEqual(c.messages.at(-1), { type: 'error', code: 'provider_error', message: `speech engine failed: ${message}` });
      assert.equal(closed.code, 1011);
    },
  },
  {
    name: 'deepgram-style',
    async open(s) {
      const c = await openSocket(`${s.wsUrl}/v1/stt/${DG_STYLE}`, { Authorization: `Bearer ${s.key}` });
      c.sendJson({ type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16', enable_partials: true } });
      await c.waitType('Metadata');
      return c;
    },
    results: (c) => dgResults(c),
    checkFailure(c, closed, message) {
      assert.deepEqual(c.messages.at(-1), { type: 'Error', code: 'provider_error', message: `speech engine failed: ${message}` });
      assert.equal(closed.code, 1011);
    },
  },
  {
    name: 'deepgram /v1/listen',
    open: (s) => openSocket(`${s.wsUrl}/v1/listen?encoding=linear16&sample_rate=16000&interim_results=true`, { Authorization: `Token ${s.key}` }),
    results: (c) => dgResults(c),
    checkFailure(c, closed, message) {
      // Deepgram's live API reports a server-side failure in the close frame only (protocols.md §2.5).
      assert.equal(c.messages.filter((m) => m.type !== 'Results').length, 0, JSON.stringify(c.messages));
      assert.deepEqual(closed, { code: 1011, reason: `NET-0000: speech engine failed: ${message}` });
    },
  },
  {
    name: 'smallest.ai pulse',
    open: (s) => openSocket(`${s.wsUrl}/waves/v1/pulse/get_text?language=en&encoding=linear16&sample_rate=16000`, { Authorization: `Bearer ${s.key}` }),
    // Pulse formats transcripts by default ("One two."): compare the words.
    results: (c) =>
      c.messages.flatMap((m) => (typeof m.transcript === 'string' ? [{ final: m.is_final === true, text: m.transcript.toLowerCase().replace(/[.,?!]/g, '') }] : [])),
    checkFailure(c, closed, message) {
      assert.deepEqual(c.messages.at(-1), { status: 'error', error: { message: `speech engine failed: ${message}`, code: 'provider_error' } });
      assert.equal(closed.code, 1011);
    },
  },
];

function dgResults(c: RecordingClient): Seen[] {
  return c.ofType('Results').map((m) => ({ final: m.is_final === true, text: (m.channel as { alternatives: { transcript: string }[] }).alternatives[0]!.transcript }));
}

const finals = (seen: Seen[]): string[] => seen.filter((r) => r.final).map((r) => r.text);

/** Wait until the client has seen `n` finals (the fake fires on audio already sent: no timing luck). */
async function waitFinals(c: RecordingClient, d: (typeof DIALECTS)[number], n: number): Promise<void> {
  const t0 = Date.now();
  while (finals(d.results(c)).length < n) {
    if (Date.now() - t0 > 10000) throw new Error(`expected ${n} finals; got ${JSON.stringify(c.messages)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('STT sessions on the fake engine', () => {
  let s: TestServer;
  let stt: FakeSttEngine;

  before(async () => {
    s = await startFakeServer();
    stt = s.engines.get('fake') as FakeSttEngine;
    assert.ok(stt instanceof FakeSttEngine);
    assert.equal(stt.script.finalizeTranscript, 'from the config');
  });
  after(async () => {
    await s?.cleanup();
  });
  beforeEach(() => {
    stt.script = {};
  });

  it('capabilities are data: the configured ones reach GET /v1/models and init validation', async () => {
    const all = (await (await fetch(`${s.url}/v1/models`)).json()) as { models: { code: string; capabilities?: { languages: string[]; diarization: boolean } }[] };
    const m = all.models.find((x) => x.code === UNIFIED);
    assert.deepEqual(m?.capabilities && { languages: m.capabilities.languages, diarization: m.capabilities.diarization }, { languages: ['en', 'hi'], diarization: true });
    const c = await openSocket(`${s.wsUrl}/v1/stt/${UNIFIED}`, { Authorization: `Bearer ${s.key}` });
    c.sendJson({ type: 'init', config: { language: 'hi', sample_rate: 16000, encoding: 'linear16' } });
    await c.waitType('ready');
    assert.equal(stt.started.at(-1)?.language, 'hi');
    c.ws.close();
    await c.closed;
  });

  const ORDER: FakeSttScript = {
    steps: [
      { at: 0.3, speechStarted: true },
      { at: 0.5, partial: 'one' },
      { at: 1.0, final: { transcript: 'one two' } },
      { at: 1.5, partial: 'three' },
      { at: 2.0, final: { transcript: 'three four' } },
      { at: 2.5, final: { transcript: 'five' } },
      { at: 10, final: { transcript: 'never reached' } },
    ],
  };

  for (const d of DIALECTS) {
    it(`${d.name}: results arrive in the engine's order, each partial before its final`, async () => {
      stt.script = ORDER;
      const c = await d.open(s);
      await c.sendBinary(silence(3000));
      await waitFinals(c, d, 3);
      assert.deepEqual(d.results(c), [
        { final: false, text: 'one' },
        { final: true, text: 'one two' },
        { final: false, text: 'three' },
        { final: true, text: 'three four' },
        { final: true, text: 'five' },
      ]);
      c.ws.close();
      await c.closed;
    });

    it(`${d.name}: an engine failure mid-stream ends the session with the dialect's error, after the finals before it`, async () => {
      stt.script = { steps: [{ at: 0.5, final: { transcript: 'before the fault' } }, { at: 1.0, error: { message: 'upstream went away', retryable: true } }] };
      const c = await d.open(s);
      await c.sendBinary(silence(2000));
      const closed = await c.closed;
      assert.deepEqual(finals(d.results(c)), ['before the fault']);
      d.checkFailure(c, closed, 'upstream went away');
      assert.equal(stt.stats().activeStreams, 0, 'the failed stream was released');
    });
  }

  // Issue 10: an engine's own code reaches the client. Before, every mid-stream failure became
  // `internal_error` "speech engine failed: …", so failover's `backend_connection_failed` was lost.
  it('unified: a mid-stream backend_connection_failed reaches the client with its code and exact message, close 1011', async () => {
    stt.script = { steps: [{ at: 0.5, error: { code: 'backend_connection_failed', message: 'Failed to connect to backend: 500 Internal Server Error', retryable: false } }] };
    const c = await DIALECTS[0]!.open(s);
    await c.sendBinary(silence(1000));
    const closed = await c.closed;
    assert.deepEqual(c.messages.at(-1), { type: 'error', code: 'backend_connection_failed', message: 'Failed to connect to backend: 500 Internal Server Error' });
    assert.equal(closed.code, 1011);
  });

  it('unified: an engine refusing the stream at start gives its code (rate_limit) and closes 1013', async () => {
    stt.script = { failAtStart: { code: 'rate_limit', message: 'no capacity', retryable: true } };
    const c = await openSocket(`${s.wsUrl}/v1/stt/${UNIFIED}`, { Authorization: `Bearer ${s.key}` });
    c.sendJson({ type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16' } });
    const closed = await c.closed;
    assert.deepEqual(c.messages, [{ type: 'error', code: 'rate_limit', message: 'no capacity' }]);
    assert.equal(closed.code, 1013);
  });

  it('unified: a client close drains the finals of audio sent, then closes 1000', async () => {
    stt.script = { steps: [{ at: 0.2, final: { transcript: 'first' } }, { at: 0.9, final: { transcript: 'second' } }, { at: 5, final: { transcript: 'later' } }], finalizeTranscript: 'tail' };
    const c = await DIALECTS[0]!.open(s);
    await c.sendBinary(silence(1000));
    c.sendJson({ type: 'finalize' });
    c.sendJson({ type: 'close' });
    const closed = await c.closed;
    assert.equal(closed.code, 1000);
    assert.deepEqual(finals(DIALECTS[0]!.results(c)), ['first', 'second', 'tail']);
    const last = c.ofType('final_transcript').at(-1)!;
    assert.equal(last.from_finalize, true);
  });

  // A stalled engine used to hold a closing session open until maxSessionSeconds (the drain had no
  // deadline and the idle timer is off while draining). Now: no result and no backlog decoded for
  // max(idle timeout, DRAIN_STALL_MIN_SECONDS) → the engine-failure error, close 1011.
  it('unified: an engine that stalls while draining ends the session with the engine error, not a hang', async () => {
    const s2 = await startFakeServer({ idleTimeoutSeconds: 1 });
    try {
      const fake = s2.engines.get('fake') as FakeSttEngine;
      fake.script = { steps: [{ at: 0.2, final: { transcript: 'first' } }, { at: 0.5, stall: true }, { at: 0.9, final: { transcript: 'second' } }] };
      const c = await DIALECTS[0]!.open(s2);
      await c.sendBinary(silence(2000));
      c.sendJson({ type: 'close' });
      const closed = await Promise.race([c.closed, new Promise<null>((r) => setTimeout(() => r(null), (DRAIN_STALL_MIN_SECONDS + 10) * 1000))]);
      c.ws.terminate();
      assert.ok(closed, `still open ${DRAIN_STALL_MIN_SECONDS + 10} s after close; got ${JSON.stringify(c.messages)}`);
      assert.equal(closed.code, 1011);
      assert.deepEqual(finals(DIALECTS[0]!.results(c)), ['first']);
      assert.deepEqual(c.messages.at(-1), { type: 'error', code: 'provider_error', message: `speech engine failed: no result for ${DRAIN_STALL_MIN_SECONDS} s while finishing the session` });
      assert.equal(fake.stats().activeStreams, 0, 'the stalled stream was aborted');
    } finally {
      await s2.cleanup();
    }
  });
});

describe('TTS sessions on the fake engine', () => {
  let s: TestServer;
  let tts: FakeTtsEngine;

  before(async () => {
    s = await startFakeServer();
    tts = s.ttsEngines.get('fake') as FakeTtsEngine;
    assert.ok(tts instanceof FakeTtsEngine);
  });
  after(async () => {
    await s?.cleanup();
  });

  it('unified: an engine failure mid-segment ends that segment with provider_error; the next segment is spoken', async () => {
    const msPerChar = 10;
    tts.script = { msPerChar, failures: [{ when: 'Broken', atChar: 4, message: 'synthesis backend lost', retryable: true }] };
    tts.requests.length = 0;
    const c = await openTtsSession(s, TTS, { config: { encoding: 'linear16', sample_rate: 16000 } });
    c.send({ type: 'text', text: 'First one here. Broken one there. Last one now.', flush: true });
    const fl = await c.waitType('flushed');
    const texts = tts.requests.map((r) => r.text);
    assert.equal(texts.length, 3, JSON.stringify(texts));
    const msgs = c.messages.filter((m) => m.type !== 'audio_chunk');
    const err = msgs.find((m) => m.type === 'error');
    assert.ok(err, c.describe());
    assert.equal(err.code, 'provider_error');
    assert.match(String(err.message), /synthesis backend lost/);
    // Exactly the audio the engine produced: all of segments 1 and 3, the first 4 characters of segment 2.
    const samplesPerChar = (16000 * msPerChar) / 1000;
    const chars = [...texts[0]!].length + 4 + [...texts[2]!].length;
    assert.equal(c.audio(0, fl).length, chars * samplesPerChar * 2);
    // Segment 3's audio comes after the error.
    const errIdx = c.frames.findIndex((f) => f.kind === 'json' && f.m.type === 'error');
    assert.ok(c.audio(errIdx, fl).length >= [...texts[2]!].length * samplesPerChar * 2);
    c.send({ type: 'close' });
    await c.closed;
  });
});

describe('TTS engine errors keep their code', () => {
  // Issue 10: every engine error used to become provider_error "speech synthesis failed: …", so a
  // gateway's `backend_connection_failed` (seed 001 shape) never reached TTS clients.
  it('unified: backend_connection_failed from the engine reaches the client with its exact message, then close 1011', async () => {
    const s = await startFakeServer();
    try {
      const tts = s.ttsEngines.get('fake') as FakeTtsEngine;
      tts.script = { failures: [{ when: 'Hello', code: 'backend_connection_failed', message: 'Failed to connect to backend: connection refused', retryable: false }] };
      const c = await openTtsSession(s, TTS, { config: { encoding: 'linear16', sample_rate: 16000 } });
      c.send({ type: 'text', text: 'Hello there.', flush: true });
      const closed = await c.closed;
      const err = c.messages.find((m) => m.type === 'error');
      assert.deepEqual(err && { code: err.code, message: err.message }, { code: 'backend_connection_failed', message: 'Failed to connect to backend: connection refused' });
      assert.equal(closed.code, 1011);
    } finally {
      await s.cleanup();
    }
  });
});

describe('fake engines, directly', () => {
  it('STT: failures carry retryable; a stall keeps audio as backlog and only abort ends it', async () => {
    const e = new FakeSttEngine({ script: { failAtStart: { code: 'rate_limit', retryable: false } } });
    const cfg = { language: 'en', partials: true, wordTimestamps: true, vad: true, endpointingMs: 300 };
    await assert.rejects(e.start(cfg), (err: unknown) => err instanceof FakeEngineError && err.code === 'rate_limit' && err.retryable === false);
    e.script = { steps: [{ at: 0.5, stall: true }] };
    const st = await e.start(cfg);
    st.write(new Int16Array(16000));
    assert.equal(st.backlogSeconds, 0.5);
    let drained = false;
    void st.close().then(() => (drained = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(drained, false);
    st.abort();
    await new Promise((r) => setImmediate(r));
    assert.equal(drained, true);
    assert.equal(e.stats().activeStreams, 0);
  });

  it('TTS: msPerChar of audio per character; a stall ends only when the job is aborted', async () => {
    const e = new FakeTtsEngine({ script: { msPerChar: 5, failures: [{ when: 'stall', atChar: 2, kind: 'stall' }] } });
    let n = 0;
    for await (const pcm of e.synthesize({ text: 'abc', voice: 'fake', speed: 1 })) n += pcm.length;
    assert.equal(n, 3 * 80);
    const ctl = new AbortController();
    const got: number[] = [];
    const run = (async () => {
      for await (const pcm of e.synthesize({ text: 'stall here', voice: 'fake', speed: 1 }, ctl.signal)) got.push(pcm.length);
    })();
    while (got.length < 2) await new Promise((r) => setImmediate(r));
    ctl.abort();
    await assert.rejects(run, (err: Error) => err.name === 'AbortError');
    assert.deepEqual(got, [80, 80]);
    assert.equal(e.stats().activeJobs, 0);
  });
});
