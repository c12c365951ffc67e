/**
 * Engine contract v2 passthrough (issue 10 part 1: "an engine declares the encodings and rates it
 * accepts, so Opus/mp3 from a client passes through untouched to an upstream that takes it"): a real
 * server whose model is served by the scripted fake STT engine declaring `passthroughEncodings`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../src/config/config.js';
import type { FakeSttEngine } from '../src/engines/stt/fake/index.js';
import { FixtureDir } from './audio_fixtures.js';
import { openSocket, silence, startConfiguredServer, type TestServer } from './helpers.js';

const CODE = 'test/fake:passthrough';
const CLIP = 'asr_en/en_ls_1272-128104-0000.wav';

describe('STT passthrough of the client encoding to an engine that takes it', () => {
  let s: TestServer;
  let fake: FakeSttEngine;
  let fx: FixtureDir;
  before(async () => {
    const base = loadConfig();
    s = await startConfiguredServer({
      ...base,
      stt: { models: [{ code: CODE, engine: 'fake', dialect: 'unified', options: { capabilities: { passthroughEncodings: ['opus', 'ogg-opus', 'linear16'] } }, aliases: [] }] },
    });
    fake = s.engines.get('fake') as FakeSttEngine;
    fx = new FixtureDir();
  });
  after(async () => {
    await s.cleanup();
    fx.cleanup();
  });

  async function session(config: Record<string, unknown>) {
    const c = await openSocket(`${s.wsUrl}/v1/stt/${CODE}`, { Authorization: `Bearer ${s.key}` });
    c.sendJson({ type: 'init', config: { language: 'en', ...config } });
    await c.waitType('ready');
    return c;
  }

  it('Ogg/Opus reaches the engine byte for byte, with its format, and is not decoded', async () => {
    fake.script = { steps: [], finalizeTranscript: 'opus seen' };
    fake.encodedWrites.length = 0;
    const bytes = fx.read(fx.encode([CLIP], 'ogg-opus'));
    const c = await session({ encoding: 'opus', sample_rate: 48000 });
    await c.sendBinary(bytes, 4096);
    c.sendJson({ type: 'finalize' });
    c.sendJson({ type: 'close' });
    const closed = await c.closed;
    assert.equal(closed.code, 1000, JSON.stringify(c.messages));
    assert.deepEqual(fake.started.at(-1)!.passthrough, { encoding: 'opus', sampleRate: 48000, channels: 1 });
    assert.ok(Buffer.concat(fake.encodedWrites).equals(bytes), 'the engine got exactly the bytes the client sent');
    assert.equal(c.ofType('final_transcript').at(-1)?.transcript, 'opus seen');
    // Engine contract v2: the catalogue entry's options reach start().
    assert.deepEqual(fake.started.at(-1)!.modelOptions, { capabilities: { passthroughEncodings: ['opus', 'ogg-opus', 'linear16'] } });
  });

  it('linear16 at 8 kHz passes through at its own rate (no resampling); the engine clock follows it', async () => {
    fake.script = { steps: [{ at: 0.5, final: { transcript: 'half a second' } }] };
    fake.encodedWrites.length = 0;
    const c = await session({ encoding: 'linear16', sample_rate: 8000 });
    const audio = silence(1000, 8000);
    await c.sendBinary(audio);
    await c.waitType('final_transcript');
    assert.deepEqual(fake.started.at(-1)!.passthrough, { encoding: 'linear16', sampleRate: 8000, channels: 1 });
    assert.ok(Buffer.concat(fake.encodedWrites).equals(audio));
    assert.equal(c.ofType('final_transcript')[0]!.transcript, 'half a second');
    c.ws.close();
    await c.closed;
  });

  it('an odd-length linear16 frame is refused in the dialect, not passed on', async () => {
    fake.encodedWrites.length = 0;
    const c = await session({ encoding: 'linear16', sample_rate: 16000 });
    await c.sendBinary(Buffer.alloc(301));
    await c.waitType('error');
    assert.equal(c.ofType('error')[0]!.code, 'invalid_request');
    assert.equal(fake.encodedWrites.length, 0);
    c.ws.close();
    await c.closed;
  });

  it('an encoding the engine does not take (mp3) is decoded to PCM as before', async () => {
    fake.encodedWrites.length = 0;
    const bytes = fx.read(fx.encode([CLIP], 'mp3'));
    const c = await session({ encoding: 'mp3' });
    await c.sendBinary(bytes, 4096);
    c.sendJson({ type: 'close' });
    await c.closed;
    assert.equal(fake.started.at(-1)!.passthrough, undefined);
    assert.equal(fake.encodedWrites.length, 0);
  });
});
