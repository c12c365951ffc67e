/**
 * Proof with a client we did not write: the official Deepgram JavaScript SDK (`@deepgram/sdk` v5),
 * pointed at a local voxgate through its `environment` option, transcribes a real clip live with
 * interim results and exercises `sendKeepAlive`, `sendFinalize` and `sendCloseStream`
 * (issue #3 "Proof with clients we did not write"; shared/spec/protocols.md §2).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DeepgramClient } from '@deepgram/sdk';
import { loadClip, silence, startTestServer, type TestServer } from './helpers.js';

/** A Deepgram client whose REST and WebSocket base URLs are the local gateway. */
export function localDeepgram(s: TestServer, apiKey = s.key): DeepgramClient {
  const http = `http://127.0.0.1:${s.port}`;
  return new DeepgramClient({ apiKey, environment: { base: http, production: s.wsUrl, agent: s.wsUrl, agentRest: http } });
}

describe('official @deepgram/sdk live client against voxgate', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(async () => {
    await s.cleanup();
  });

  it('listen.v1.connect: interim results, KeepAlive, Finalize, CloseStream on a real clip', async () => {
    const clip = await loadClip('asr_en/en_ls_1272-128104-0000.wav');
    const client = localDeepgram(s);
    const connection = await client.listen.v1.connect({
      model: 'nova-3',
      language: 'en',
      encoding: 'linear16',
      sample_rate: 16000,
      interim_results: 'true',
      smart_format: 'true',
      endpointing: 300,
      Authorization: `Token ${s.key}`,
      reconnectAttempts: 0,
    });
    const messages: Record<string, unknown>[] = [];
    const closed = new Promise<{ code: number; reason: string }>((resolve) => connection.on('close', (ev: { code: number; reason: string }) => resolve({ code: ev.code, reason: ev.reason })));
    connection.on('message', (m: unknown) => messages.push(m as Record<string, unknown>));
    connection.connect();
    await connection.waitForOpen();
    connection.sendKeepAlive({ type: 'KeepAlive' });
    const half = Math.floor(clip.bytes.length / 4) * 2;
    for (let o = 0; o < half; o += 3200) connection.sendMedia(clip.bytes.subarray(o, Math.min(o + 3200, half)));
    connection.sendFinalize({ type: 'Finalize' });
    const t0 = Date.now();
    while (!messages.some((m) => m.type === 'Results' && m.from_finalize === true)) {
      assert.ok(Date.now() - t0 < 15000, `no from_finalize Results; got ${JSON.stringify(messages).slice(0, 500)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const rest = Buffer.concat([clip.bytes.subarray(half), silence(600)]);
    for (let o = 0; o < rest.length; o += 3200) connection.sendMedia(rest.subarray(o, o + 3200));
    connection.sendCloseStream({ type: 'CloseStream' });
    const c = await closed;
    assert.equal(c.code, 1000);
    const results = messages.filter((m) => m.type === 'Results');
    assert.ok(results.some((m) => m.is_final === false), 'interim results arrived through the SDK');
    const text = results
      .filter((m) => m.is_final)
      .map((m) => (m.channel as { alternatives: { transcript: string }[] }).alternatives[0]!.transcript)
      .join(' ')
      .toLowerCase();
    assert.match(text, /class|glad|welcome|apostle/);
    assert.equal(messages.at(-1)!.type, 'Metadata');
  });
});
