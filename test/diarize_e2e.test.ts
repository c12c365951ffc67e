/**
 * Diarization end to end (issue 13 "End-to-end tests"): a real gateway on 127.0.0.1:0, real engines
 * (PocketSphinx + the embedded classical diarizer), real audio from ../shared/data/diarization, and
 * clients we did not write where there is one:
 *
 * - the official `@deepgram/sdk` with `diarize: true`, live (`listen.v1.connect`) and pre-recorded
 *   (`listen.v1.media.transcribeFile`, with `utterances`): `speaker` on every word and at least two
 *   distinct speakers on a clean multi-speaker file (picovoice_falcon_3spk.wav: three speakers with
 *   pauses between turns);
 * - the unified dialect (`enable_diarization`): words[].speaker on every word and the segment speaker;
 * - multichannel as diarization: librispeech_stereo_2spk.wav, one speaker per channel, labelled
 *   perfectly (every word's speaker = its channel), live and pre-recorded;
 * - upstream pass-through: a `deepgram`-type backend (a fake Deepgram `/v1/listen` on a loopback
 *   socket that labels words 3 and 5, labels the embedded diarizer never starts with) gets
 *   `diarize=true` and the hints, and its labels reach the client unchanged;
 * - bad hint values: each dialect's error (HTTP 400 `INVALID_QUERY_PARAMETER` on `/v1/listen`, live
 *   and pre-recorded; `error` frame `config_error` + close 1008 after a unified `init`).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { WebSocketServer } from 'ws';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../src/config/config.js';
import { loadClip, openSession, openSocket, sharedData, silence, startConfiguredServer, startTestServer, type RecordingClient, type TestServer } from './helpers.js';
import { DeepgramClient } from '@deepgram/sdk';
import { listenServerMessageSchema } from '../src/protocol/deepgram/schema.js';
import { serverMessageSchema as unifiedSchema } from '../src/protocol/unified/schema.js';

const MULTI = 'diarization/picovoice_falcon_3spk.wav';
const STEREO = 'diarization/librispeech_stereo_2spk.wav';
const UNIFIED = 'local/pocketsphinx:en';
/** A fake engine's script: one final with words after 1 s of audio. */
const SCRIPT_FINAL = { steps: [{ at: 1, final: { transcript: 'one two', words: [{ word: 'one', start: 0.1, end: 0.4 }, { word: 'two', start: 0.5, end: 0.9 }] } }] };

/** A Deepgram SDK client whose REST and WebSocket base URLs are the local gateway (as test/deepgram_sdk_live.test.ts). */
function localDeepgram(s: TestServer): DeepgramClient {
  const http = `http://127.0.0.1:${s.port}`;
  return new DeepgramClient({ apiKey: s.key, environment: { base: http, production: s.wsUrl, agent: s.wsUrl, agentRest: http } });
}

type Word = { word: string; start: number; end: number; speaker?: number; speaker_confidence?: number };
const resultWords = (msgs: Record<string, unknown>[]): (Word & { channel: number })[] =>
  msgs
    .filter((m) => m.type === 'Results' && m.is_final)
    .flatMap((m) => (m.channel as { alternatives: { words: Word[] }[] }).alternatives[0]!.words.map((w) => ({ ...w, channel: (m.channel_index as number[])[0]! })));

describe('diarization end to end', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(async () => {
    await s.cleanup();
  });

  it('official @deepgram/sdk live, diarize: true: speaker on every final word, ≥ 2 distinct speakers, labels never rewritten', async () => {
    const clip = await loadClip(MULTI);
    const connection = await localDeepgram(s).listen.v1.connect({
      model: 'nova-3',
      language: 'en',
      encoding: 'linear16',
      sample_rate: 16000,
      diarize: 'true',
      interim_results: 'true',
      endpointing: 300,
      Authorization: `Token ${s.key}`,
      reconnectAttempts: 0,
    });
    const messages: Record<string, unknown>[] = [];
    const closed = new Promise<{ code: number }>((resolve) => connection.on('close', (ev: { code: number }) => resolve({ code: ev.code })));
    connection.on('message', (m: unknown) => messages.push(m as Record<string, unknown>));
    connection.connect();
    await connection.waitForOpen();
    const bytes = Buffer.concat([clip.bytes, silence(800)]);
    for (let o = 0; o < bytes.length; o += 3200) connection.sendMedia(bytes.subarray(o, o + 3200));
    connection.sendCloseStream({ type: 'CloseStream' });
    assert.equal((await closed).code, 1000);
    for (const m of messages) listenServerMessageSchema.parse(m);
    const words = resultWords(messages);
    assert.ok(words.length >= 10, `words: ${JSON.stringify(words)}`);
    assert.ok(
      words.every((w) => Number.isInteger(w.speaker) && w.speaker! >= 0),
      `a word without speaker: ${JSON.stringify(words.find((w) => w.speaker === undefined))}`,
    );
    assert.ok(new Set(words.map((w) => w.speaker)).size >= 2, `speakers: ${JSON.stringify(words.map((w) => [w.word, w.start, w.speaker]))}`);
    // Stable labels: the first label sent is 0 and labels appear in order (a new person gets the next number).
    const order = [...new Set(words.map((w) => w.speaker))];
    assert.deepEqual(order, [...order].sort((a, b) => a! - b!));
    assert.equal(order[0], 0);
  });

  it('official @deepgram/sdk pre-recorded, diarize + utterances: speaker and speaker_confidence on every word, ≥ 2 speakers, utterances carry speaker', async () => {
    const res = (await localDeepgram(s).listen.v1.media.transcribeFile(readFileSync(sharedData(MULTI)), { model: 'nova-3', diarize: true, utterances: true, punctuate: true })) as unknown as {
      results: { channels: { alternatives: { words: Word[] }[] }[]; utterances: { speaker?: number; words: Word[] }[] };
    };
    const words = res.results.channels[0]!.alternatives[0]!.words;
    assert.ok(words.length >= 10);
    assert.ok(words.every((w) => Number.isInteger(w.speaker) && typeof w.speaker_confidence === 'number' && w.speaker_confidence >= 0 && w.speaker_confidence <= 1));
    assert.ok(new Set(words.map((w) => w.speaker)).size >= 2, JSON.stringify(words.map((w) => [w.word, w.start, w.speaker])));
    assert.ok(res.results.utterances.length >= 2);
    for (const u of res.results.utterances) {
      assert.ok(Number.isInteger(u.speaker));
      assert.ok(u.words.every((w) => w.speaker === u.speaker), 'an utterance is one speaker');
    }
  });

  it('unified dialect, enable_diarization: words[].speaker on every word and the segment speaker on every final', async () => {
    const clip = await loadClip(MULTI);
    const c = await openSession(s, UNIFIED, { enable_diarization: true, enable_word_timestamps: true, max_speakers: 4 });
    await c.sendBinary(Buffer.concat([clip.bytes, silence(800)]));
    c.sendJson({ type: 'close' });
    assert.equal((await c.closed).code, 1000);
    for (const m of c.messages) unifiedSchema.parse(m);
    const finals = c.ofType('final_transcript').filter((m) => m.transcript);
    assert.ok(finals.length >= 2);
    for (const f of finals) {
      const words = f.words as Word[];
      assert.ok(words.length > 0 && words.every((w) => Number.isInteger(w.speaker)));
      assert.ok(Number.isInteger(f.speaker));
      assert.ok(words.some((w) => w.speaker === f.speaker), 'the segment speaker is one of its words’');
    }
    assert.ok(new Set(finals.flatMap((f) => (f.words as Word[]).map((w) => w.speaker))).size >= 2);
  });

  it('unified dialect without words: each final still carries its speaker', async () => {
    const clip = await loadClip(MULTI);
    const c = await openSession(s, UNIFIED, { enable_diarization: true });
    await c.sendBinary(Buffer.concat([clip.bytes, silence(800)]));
    c.sendJson({ type: 'close' });
    await c.closed;
    const finals = c.ofType('final_transcript').filter((m) => m.transcript);
    assert.ok(finals.length >= 2 && finals.every((f) => Number.isInteger(f.speaker) && f.words === undefined));
  });

  it('Deepgram-style route, init diarize: true (§1.4 Hindi example key): speaker on every final word', async () => {
    const clip = await loadClip(MULTI);
    const c = await openSession(s, 'local/pocketsphinx:en-deepgram', { diarize: true });
    await c.sendBinary(Buffer.concat([clip.bytes, silence(800)]));
    c.sendJson({ type: 'close' });
    await c.closed;
    const words = resultWords(c.messages);
    assert.ok(words.length >= 10 && words.every((w) => Number.isInteger(w.speaker)));
    assert.ok(new Set(words.map((w) => w.speaker)).size >= 2);
  });

  it('smallest.ai Pulse, diarize=true: speaker and speaker_confidence on every final word', async () => {
    const clip = await loadClip(MULTI);
    const c = await openSocket(`${s.wsUrl}/waves/v1/pulse/get_text?language=en&encoding=linear16&sample_rate=16000&diarize=true`, { Authorization: `Bearer ${s.key}` });
    await c.sendBinary(Buffer.concat([clip.bytes, silence(1000)]));
    c.sendJson({ type: 'close_stream' });
    await c.closed;
    const words = c.messages.filter((m) => m.is_final).flatMap((m) => (m.words ?? []) as Word[]);
    assert.ok(words.length >= 10);
    assert.ok(words.every((w) => Number.isInteger(w.speaker) && typeof w.speaker_confidence === 'number'));
    assert.ok(new Set(words.map((w) => w.speaker)).size >= 2);
  });

  it('multichannel=true&diarize=true live: every word’s speaker is its channel (perfect on the stereo 2-speaker file)', async () => {
    const c = await openSocket(`${s.wsUrl}/v1/listen?encoding=linear16&sample_rate=16000&channels=2&multichannel=true&diarize=true&endpointing=300`, { Authorization: `Token ${s.key}` });
    await c.sendBinary(Buffer.concat([readFileSync(sharedData(STEREO)), Buffer.alloc(16000 * 2 * 2)]));
    c.sendJson({ type: 'CloseStream' });
    assert.equal((await c.closed).code, 1000);
    const words = resultWords(c.messages);
    assert.ok(words.filter((w) => w.channel === 0).length >= 5 && words.filter((w) => w.channel === 1).length >= 3, JSON.stringify(words));
    for (const w of words) assert.equal(w.speaker, w.channel, `${w.word}@${w.start} on channel ${w.channel}`);
  });

  it('multichannel=true&diarize=true pre-recorded: every word’s speaker is its channel, speaker_confidence 1', async () => {
    const res = await fetch(`${s.url}/v1/listen?multichannel=true&diarize=true&utterances=true`, {
      method: 'POST',
      body: readFileSync(sharedData(STEREO)),
      headers: { Authorization: `Token ${s.key}`, 'Content-Type': 'audio/wav' },
    });
    assert.equal(res.status, 200);
    const json = (await res.json()) as { results: { channels: { alternatives: { words: Word[] }[] }[]; utterances: { channel: number; speaker: number }[] } };
    assert.equal(json.results.channels.length, 2);
    json.results.channels.forEach((ch, i) => {
      assert.ok(ch.alternatives[0]!.words.length >= 3);
      for (const w of ch.alternatives[0]!.words) assert.deepEqual([w.speaker, w.speaker_confidence], [i, 1]);
    });
    for (const u of json.results.utterances) assert.equal(u.speaker, u.channel);
  });

  it('bad hint values: /v1/listen HTTP 400 INVALID_QUERY_PARAMETER (live and pre-recorded); unified config_error frame + close 1008', async () => {
    const live = await openSocket(`${s.wsUrl}/v1/listen?diarize=true&max_speakers=0`, { Authorization: `Token ${s.key}` }).then(
      () => assert.fail('upgrade accepted'),
      (e: { statusCode: number; body: string }) => e,
    );
    assert.equal(live.statusCode, 400);
    assert.match(live.body, /INVALID_QUERY_PARAMETER/);
    assert.match(live.body, /max_speakers/);
    const pre = await fetch(`${s.url}/v1/listen?diarize=true&min_speakers=4&max_speakers=2`, { method: 'POST', body: new Uint8Array(silence(100)), headers: { Authorization: `Token ${s.key}`, 'Content-Type': 'audio/l16;rate=16000' } });
    assert.equal(pre.status, 400);
    const body = (await pre.json()) as { err_code: string; err_msg: string };
    assert.equal(body.err_code, 'INVALID_QUERY_PARAMETER');
    assert.match(body.err_msg, /min_speakers \(4\) is above max_speakers \(2\)/);
    const c: RecordingClient = await openSocket(`${s.wsUrl}/v1/stt/${UNIFIED}`, { Authorization: `Bearer ${s.key}` });
    c.sendJson({ type: 'init', config: { language: 'en', enable_diarization: true, num_speakers: 42 } });
    const err = await c.waitType('error');
    assert.equal(err.code, 'config_error');
    assert.match(err.message as string, /num_speakers/);
    assert.equal((await c.closed).code, 1008);
  });
});

describe('diarization: upstream pass-through (a deepgram-type backend)', () => {
  let gw: TestServer;
  let fake: WebSocketServer;
  const queries: URLSearchParams[] = [];
  before(async () => {
    // A Deepgram `/v1/listen` stand-in: after 1 s of audio one final whose words are labelled 3 and 5.
    fake = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((r) => fake.once('listening', r));
    fake.on('connection', (ws, req) => {
      const q = new URL(req.url!, 'http://x').searchParams;
      queries.push(q);
      let bytes = 0;
      let sent = false;
      ws.on('message', (data, isBinary) => {
        if (isBinary) {
          bytes += (data as Buffer).length;
          if (!sent && bytes >= 32000) {
            sent = true;
            const words = [
              { word: 'hello', start: 0.1, end: 0.4, confidence: 0.9, speaker: 3 },
              { word: 'world', start: 0.5, end: 0.9, confidence: 0.9, speaker: 5 },
              { word: 'again', start: 0.9, end: 1.0, confidence: 0.9, speaker: 5 },
            ];
            ws.send(JSON.stringify({ type: 'Results', start: 0, duration: 1, is_final: true, speech_final: true, channel: { alternatives: [{ transcript: 'hello world again', confidence: 0.9, words }] } }));
          }
          return;
        }
        const m = JSON.parse(data.toString()) as { type: string };
        if (m.type === 'CloseStream') {
          ws.send(JSON.stringify({ type: 'Metadata', request_id: 'x', duration: bytes / 32000 }));
          ws.close(1000);
        }
      });
    });
    const base = loadConfig();
    const port = (fake.address() as AddressInfo).port;
    gw = await startConfiguredServer({
      ...base,
      engines: { dg: { type: 'deepgram', url: `ws://127.0.0.1:${port}`, model: 'nova-3' } },
      stt: { ...base.stt, models: [{ code: 'deepgram/nova:3', engine: 'dg', dialect: 'unified', options: {}, aliases: [] }] },
    });
  });
  after(async () => {
    await gw.cleanup();
    fake.close();
  });

  it('diarize=true and the hints reach the backend; its labels reach the client unchanged (the embedded diarizer is not run)', async () => {
    const c = await openSession(gw, 'deepgram/nova:3', { enable_diarization: true, enable_word_timestamps: true, min_speakers: 2, max_speakers: 6 });
    await c.sendBinary(Buffer.concat([silence(1500)]));
    const f = await c.waitType('final_transcript');
    c.sendJson({ type: 'close' });
    await c.closed;
    const q = queries.at(-1)!;
    assert.deepEqual([q.get('diarize'), q.get('min_speakers'), q.get('max_speakers')], ['true', '2', '6']);
    // 3 and 5: the embedded diarizer numbers speakers from 0 in order of appearance, so these can only be the backend's.
    assert.deepEqual(
      (f.words as Word[]).map((w) => w.speaker),
      [3, 5, 5],
    );
    assert.equal(f.speaker, 5, 'segment speaker: 0.5 s of speaker 5 vs 0.3 s of speaker 3');
    const models = (await (await fetch(`${gw.url}/v1/models`)).json()) as { models: { code: string; capabilities?: { diarization: boolean; diarizer?: { source: string } } }[] };
    assert.deepEqual(models.models.find((m) => m.code === 'deepgram/nova:3')?.capabilities?.diarizer?.source, 'upstream');
  });

  it('without diarize the backend is not asked to diarize', async () => {
    const c = await openSession(gw, 'deepgram/nova:3', { enable_word_timestamps: true });
    await c.sendBinary(silence(1200));
    await c.waitType('final_transcript');
    c.sendJson({ type: 'close' });
    await c.closed;
    assert.equal(queries.at(-1)!.get('diarize'), null);
  });
});

describe('diarization: a backend that takes undecoded audio but does not diarize', () => {
  let gw: TestServer;
  before(async () => {
    const base = loadConfig();
    gw = await startConfiguredServer({
      ...base,
      engines: { fk: { type: 'fake', capabilities: { passthroughEncodings: ['linear16'] }, script: SCRIPT_FINAL } },
      stt: { ...base.stt, models: [{ code: 'test/fake:pt', engine: 'fk', dialect: 'unified', options: {}, aliases: [] }] },
    });
  });
  after(async () => {
    await gw.cleanup();
  });

  it('the session decodes the audio so the embedded diarizer gets PCM (labelled final, no engine error)', async () => {
    const c = await openSession(gw, 'test/fake:pt', { enable_diarization: true, enable_word_timestamps: true });
    await c.sendBinary(silence(1500));
    const f = await c.waitType('final_transcript');
    c.sendJson({ type: 'close' });
    await c.closed;
    assert.equal(c.ofType('error').length, 0, JSON.stringify(c.ofType('error')));
    assert.ok((f.words as Word[]).every((w) => Number.isInteger(w.speaker)));
    assert.ok(Number.isInteger(f.speaker));
  });
});

describe('diarization: a deepgram-type backend that is a real voxgate /v1/listen', () => {
  let inner: TestServer;
  let outer: TestServer;
  before(async () => {
    inner = await startTestServer();
    process.env.VOXGATE_DIAR_INNER_KEY = inner.key;
    const base = loadConfig();
    outer = await startConfiguredServer({
      ...base,
      // Generous drain/stall budgets: the inner gateway decodes the whole file after CloseStream on a loaded box.
      engines: { dg: { type: 'deepgram', url: inner.wsUrl, model: 'nova-3', apiKeyEnv: 'VOXGATE_DIAR_INNER_KEY', closeTimeoutMs: 120000, stallTimeoutMs: 60000 } },
      stt: { ...base.stt, models: [{ code: 'deepgram/nova:3', engine: 'dg', dialect: 'unified', options: {}, aliases: [] }] },
    });
  });
  after(async () => {
    await outer.cleanup();
    await inner.cleanup();
    delete process.env.VOXGATE_DIAR_INNER_KEY;
  });

  it('the inner gateway diarizes (diarize=true relayed) and the outer passes its labels through: speaker on every word, ≥ 2 speakers', async () => {
    const clip = await loadClip(MULTI);
    const c = await openSession(outer, 'deepgram/nova:3', { enable_diarization: true, enable_word_timestamps: true });
    await c.sendBinary(Buffer.concat([clip.bytes, silence(1000)]));
    c.sendJson({ type: 'close' });
    assert.equal((await c.closed).code, 1000, JSON.stringify(c.ofType('error')));
    const finals = c.ofType('final_transcript').filter((m) => m.transcript);
    const words = finals.flatMap((f) => f.words as Word[]);
    assert.ok(words.length >= 10 && words.every((w) => Number.isInteger(w.speaker)), JSON.stringify(words));
    assert.ok(new Set(words.map((w) => w.speaker)).size >= 2);
    assert.ok(finals.every((f) => Number.isInteger(f.speaker)));
  });
});
