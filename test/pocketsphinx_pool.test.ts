/**
 * Warm decoder pool (src/engines/stt/pocketsphinx/pool.ts) with real PocketSphinx decoders.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { PsDecoder, SharedModel } from '../src/engines/stt/pocketsphinx/native.js';
import { readSharedWavSync } from './paths.js';
import { DecoderPool } from '../src/engines/stt/pocketsphinx/pool.js';

const CHUNK = 1600; // 100 ms at 16 kHz


const readWav = (name: string): Int16Array => readSharedWavSync(`asr_en/${name}`);

async function transcribe(d: PsDecoder, pcm: Int16Array): Promise<string> {
  for (let i = 0; i < pcm.length; i += CHUNK) await d.process(pcm.subarray(i, i + CHUNK));
  return (await d.endUtterance()).text;
}

/** Waits until background creations have settled. */
async function settle(pool: DecoderPool): Promise<void> {
  while (pool.stats().creating > 0) await new Promise((r) => setTimeout(r, 20));
}

describe('DecoderPool', () => {
  let model: SharedModel;
  const clip = readWav('en_cmu_goforward.wav');
  let freshText = '';

  before(async () => {
    model = await SharedModel.load();
    const d = await PsDecoder.create(model);
    freshText = await transcribe(d, clip);
    d.free();
  });
  after(() => model.free());

  test('warm, acquire/release accounting, cap, reuse and shutdown', async () => {
    const pool = new DecoderPool(model, { minIdle: 1, maxDecoders: 2 });
    await pool.warm();
    assert.deepEqual(pool.stats(), { idle: 1, busy: 0, creating: 0, sharedLm: true });

    const a = await pool.acquire(); // the warm one; a replacement is created in the background
    assert.equal(pool.stats().busy, 1);
    assert.equal(pool.stats().idle + pool.stats().creating, 1);
    const b = await pool.acquire(); // the replacement (or one still being created)
    assert.notEqual(a, b);
    await settle(pool);
    assert.deepEqual(pool.stats(), { idle: 0, busy: 2, creating: 0, sharedLm: true }); // cap reached: no replenishing

    await assert.rejects(pool.acquire(), (err: Error & { code?: string }) => err.code === 'rate_limit');
    assert.equal(pool.stats().busy, 2);

    // Released mid-utterance: the next stream must not see any of it.
    await a.process(clip.subarray(0, 10 * CHUNK));
    pool.release(a);
    pool.release(a); // double release is a no-op
    const foreign = await PsDecoder.create(model);
    pool.release(foreign); // not from this pool: ignored
    foreign.free();
    assert.deepEqual(pool.stats(), { idle: 1, busy: 1, creating: 0, sharedLm: true });

    const again = await pool.acquire();
    assert.equal(again, a, 'the idle decoder is reused');
    assert.equal(await transcribe(again, clip), freshText);

    pool.release(again);
    pool.release(b);
    assert.deepEqual(pool.stats(), { idle: 2, busy: 0, creating: 0, sharedLm: true }); // keeps max(minIdle, 2)

    await pool.shutdown();
    assert.deepEqual(pool.stats(), { idle: 0, busy: 0, creating: 0, sharedLm: true });
    await assert.rejects(pool.acquire(), /shut down/);
    await assert.rejects(a.process(clip.subarray(0, CHUNK)), /freed/);
    await pool.shutdown(); // idempotent
  });

  test('available() is the number of acquires that would succeed now (the 429 check at the upgrade)', async () => {
    const pool = new DecoderPool(model, { minIdle: 1, maxDecoders: 2 });
    await pool.warm();
    assert.equal(pool.available(), 2);
    const a = await pool.acquire();
    assert.equal(pool.available(), 1, 'while the replacement is being created too');
    await settle(pool);
    assert.equal(pool.available(), 1);
    const b = await pool.acquire();
    await settle(pool);
    assert.equal(pool.available(), 0);
    await assert.rejects(pool.acquire(), (err: Error & { code?: string }) => err.code === 'rate_limit');
    pool.release(a);
    assert.equal(pool.available(), 1);
    pool.release(b);
    assert.equal(pool.available(), 2);
    await pool.shutdown();
    assert.equal(pool.available(), 0);
  });

  test('excess idle decoders are freed on release', async () => {
    const pool = new DecoderPool(model, { minIdle: 0, maxDecoders: 3 });
    const ds = [await pool.acquire(), await pool.acquire(), await pool.acquire()];
    assert.deepEqual(pool.stats(), { idle: 0, busy: 3, creating: 0, sharedLm: true });
    for (const d of ds) pool.release(d);
    assert.deepEqual(pool.stats(), { idle: 2, busy: 0, creating: 0, sharedLm: true });
    await assert.rejects(ds[2].process(clip.subarray(0, CHUNK)), /freed/);
    await pool.shutdown();
  });

  test('shutdown while a creation is in flight rejects the waiting acquire', async () => {
    const pool = new DecoderPool(model, { minIdle: 0, maxDecoders: 1 });
    const pending = pool.acquire();
    assert.equal(pool.stats().creating, 1);
    const rejected = assert.rejects(pending, /shut down/);
    await pool.shutdown();
    await rejected;
    assert.deepEqual(pool.stats(), { idle: 0, busy: 0, creating: 0, sharedLm: true });
  });

  test('invalid options are rejected', () => {
    assert.throws(() => new DecoderPool(model, { maxDecoders: 0 }), RangeError);
    assert.throws(() => new DecoderPool(model, { minIdle: 1.5 }), RangeError);
  });
});
