/**
 * Cross-provider TTS failover (issue 11 "Failover across providers": "TTS Cartesia → ElevenLabs before
 * the first audio byte"), through a real gateway and a real unified TTS client, with both providers
 * as protocol-faithful ReplayFakes. The model maps its catalogue voice onto each backend's own voice
 * (`backendVoices`), so ElevenLabs is asked for an ElevenLabs voice, not Cartesia's id.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig, type VoxgateConfig } from '../src/config/config.js';
import { resetAccountLimiters } from '../src/engines/limits.js';
import { packageRoot } from '../src/util/paths.js';
import { startConfiguredServer, type TestServer } from './helpers.js';
import { loadFixture, ReplayFake } from './support/replay_fake.js';
import { openTts } from './tts_helpers.js';

const FX = path.join(packageRoot(), 'test', 'fixtures', 'upstreams');
const CART_KEY = 'VOXGATE_TEST_XP_CARTESIA_KEY';
const EL_KEY = 'VOXGATE_TEST_XP_ELEVENLABS_KEY';
const EL_VOICE = '21m00Tcm4TlvDq8ikWAM';

describe('cross-provider TTS failover: Cartesia → ElevenLabs before the first audio byte', () => {
  let cart: ReplayFake;
  let el: ReplayFake;
  let gw: TestServer | null = null;
  before(async () => {
    process.env[CART_KEY] = 'test-cartesia-key';
    process.env[EL_KEY] = 'test-elevenlabs-key';
    resetAccountLimiters();
    cart = new ReplayFake({ fixtures: [loadFixture(path.join(FX, 'cartesia', 'tts_context_500.jsonl'))] });
    el = new ReplayFake({ fixtures: [loadFixture(path.join(FX, 'elevenlabs', 'tts_multi_segments.jsonl'))] });
    const c = await cart.start();
    const e = await el.start();
    const base = loadConfig();
    gw = await startConfiguredServer({
      ...base,
      engines: {
        cart: { type: 'cartesia', region: 'us-east-1', url: c.ws, apiKeyEnv: CART_KEY, sampleRate: 16000, voices: [{ id: 'a0e99841-438c-4a64-b679-ae501e7d6091', alias: 'sonic-demo', languages: ['en'] }] },
        el: { type: 'elevenlabs', region: 'us-east-1', url: e.ws, apiKeyEnv: EL_KEY },
      },
      tts: {
        ...base.tts,
        models: [
          {
            code: 'voxgate/agent-voice:1',
            engine: 'cart',
            backends: ['cart', 'el'],
            dialect: 'unified',
            audio: 'binary',
            defaultVoice: 'sonic-demo',
            backendVoices: { el: { 'sonic-demo': EL_VOICE } },
          } as VoxgateConfig['tts']['models'][number],
        ],
      },
    } as VoxgateConfig);
  });
  after(async () => {
    await gw?.cleanup();
    await cart?.close();
    await el?.close();
    delete process.env[CART_KEY];
    delete process.env[EL_KEY];
  });

  it('a Cartesia server error for the context, before any audio → the segment is spoken by ElevenLabs with the mapped voice; the client sees no error', async () => {
    const c = await openTts(gw!, '/v1/tts/voxgate/agent-voice:1');
    c.send({ type: 'init', voice: 'sonic-demo', config: { sample_rate: 16000, encoding: 'linear16' } });
    await c.waitType('ready');
    c.send({ type: 'text', text: 'Hello from ElevenLabs.', flush: true });
    const end = await c.waitType('flushed');
    c.ws.close();
    assert.ok(!c.messages.some((m) => m.type === 'error'), JSON.stringify(c.messages));
    // ElevenLabs' 0.5 s at 24 kHz, resampled to the session's 16 kHz (the first backend's voice rate).
    const bytes = c.audio(0, end).length;
    assert.ok(Math.abs(bytes - 0.5 * 32000) <= 64, `0.5 s of 16 kHz audio, got ${bytes} bytes`);
    assert.equal(cart.sessions.length, 1, 'Cartesia was tried first');
    assert.equal(el.sessions.length, 1, 'ElevenLabs took over');
    assert.equal(el.sessions[0]!.path, `/v1/text-to-speech/${EL_VOICE}/multi-stream-input`, 'the mapped ElevenLabs voice, not the Cartesia id');
    assert.ok(el.sessions[0]!.textIn.some((m) => (m as { text?: string }).text === 'Hello from ElevenLabs. '), JSON.stringify(el.sessions[0]!.textIn));
    assert.deepEqual(cart.violations(), []);
    assert.deepEqual(el.violations(), []);
  });
});
