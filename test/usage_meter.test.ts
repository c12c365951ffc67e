/**
 * The usage meter (src/store/usage.ts; issue 12 "usage recorded … batched writes"), on the real SQLite
 * store: rows are buffered until a flush, written in one batch, kept when the store fails and written
 * later, counted in quota totals while still unwritten, and flushed on close. Quota totals read from
 * the store are reused for `quotaCacheMs` and re-read after it (a controllable clock, no sleeps).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KeyStore } from '../src/store/keys.js';
import type { UsageRecord } from '../src/store/types.js';
import { UsageMeter } from '../src/store/usage.js';
import { admitQuota } from '../src/server/admission.js';

const rec = (keyId: string, o: Partial<UsageRecord> = {}): UsageRecord => ({
  keyId,
  at: new Date(),
  service: 'stt',
  transport: 'ws',
  model: 'm',
  provider: 'p',
  backend: 'b',
  region: 'r',
  requests: 1,
  audioSecondsIn: 1,
  charsIn: 0,
  audioSecondsOut: 0,
  ...o,
});

describe('UsageMeter', () => {
  let dir: string;
  let store: KeyStore;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'vg-meter-'));
    store = new KeyStore(dir);
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('buffers until flush, writes one batch; totals include unwritten rows', async () => {
    const m = new UsageMeter(store, { flushMs: 60_000, quotaCacheMs: 0 });
    m.record(rec('k1', { audioSecondsIn: 2 }));
    m.record(rec('k1', { audioSecondsIn: 3 }));
    m.record(rec('k2'));
    m.record(rec('k1', { requests: 0, audioSecondsIn: 0 })); // nothing used: ignored
    assert.equal(m.pending(), 3);
    assert.equal((await store.usageTotals('k1', new Date(0))).requests, 0, 'nothing written yet');
    assert.equal((await m.totals('k1')).day.audioSecondsIn, 5, 'quota totals see the buffered rows');
    await m.flush();
    assert.equal(m.pending(), 0);
    assert.equal(m.written, 3);
    assert.deepEqual(await store.usageTotals('k1', new Date(0)), { requests: 2, audioSecondsIn: 5, charsIn: 0, audioSecondsOut: 0 });
    assert.equal((await m.totals('k1')).day.audioSecondsIn, 5, 'not counted twice after the write');
    await m.close();
  });

  it('a failed write keeps the rows (counted in totals) and the next flush writes them', async () => {
    let fail = true;
    const flaky = Object.create(store) as KeyStore;
    flaky.recordUsage = async (rows) => {
      if (fail) throw new Error('database down');
      return store.recordUsage(rows);
    };
    const m = new UsageMeter(flaky, { flushMs: 60_000, quotaCacheMs: 0 });
    m.record(rec('k3', { charsIn: 7, service: 'tts' }));
    await m.flush();
    assert.equal(m.pending(), 1);
    assert.equal((await m.totals('k3')).month.charsIn, 7);
    fail = false;
    m.record(rec('k3', { charsIn: 5, service: 'tts' }));
    await m.close(); // close flushes
    assert.equal(m.pending(), 0);
    assert.equal((await store.usageTotals('k3', new Date(0))).charsIn, 12);
    m.record(rec('k3')); // after close: ignored, never throws
    assert.equal(m.pending(), 0);
  });

  it('store totals are reused for quotaCacheMs, re-read after it (usage written by another gateway)', async () => {
    let now = new Date('2026-06-15T12:00:00Z');
    const m = new UsageMeter(store, { flushMs: 60_000, quotaCacheMs: 1000, now: () => now });
    assert.equal((await m.totals('k4')).day.audioSecondsIn, 0);
    await store.recordUsage([rec('k4', { at: new Date('2026-06-15T11:00:00Z'), audioSecondsIn: 9 })]); // another gateway
    assert.equal((await m.totals('k4')).day.audioSecondsIn, 0, 'cached');
    now = new Date(now.getTime() + 1000);
    assert.equal((await m.totals('k4')).day.audioSecondsIn, 9, 're-read after quotaCacheMs');
    // Day and month boundaries are UTC: yesterday counts for the month only.
    await store.recordUsage([rec('k4', { at: new Date('2026-06-14T23:59:59Z'), audioSecondsIn: 4 }), rec('k4', { at: new Date('2026-05-31T23:59:59Z'), audioSecondsIn: 100 })]);
    now = new Date(now.getTime() + 1000);
    const t = await m.totals('k4');
    assert.equal(t.day.audioSecondsIn, 9);
    assert.equal(t.month.audioSecondsIn, 13);
    assert.equal(t.dayStart.toISOString(), '2026-06-15T00:00:00.000Z');
    assert.equal(t.monthStart.toISOString(), '2026-06-01T00:00:00.000Z');
    await m.close();
  });

  it('admitQuota: admits under the quota, refuses at it, and fails open when usage cannot be read', async () => {
    const { info } = store.create('q', { limits: { audioSecondsPerDay: 10, charsPerDay: 5 } });
    const m = new UsageMeter(store, { flushMs: 60_000, quotaCacheMs: 0 });
    assert.equal(await admitQuota({ key: info, service: 'stt', meter: m }), null);
    m.record(rec(info.id, { audioSecondsIn: 10 }));
    const e = await admitQuota({ key: info, service: 'stt', meter: m });
    assert.equal(e?.code, 'rate_limit');
    assert.equal(await admitQuota({ key: info, service: 'tts', meter: m }), null, 'the audio quota does not limit TTS');
    assert.equal((await admitQuota({ key: info, service: 'tts', meter: m, chars: 6 }))?.code, 'rate_limit', '6 chars > 5 per day');
    assert.equal(await admitQuota({ key: info, service: 'tts', meter: m, chars: 5 }), null);
    assert.equal(await admitQuota({ key: info, service: 'stt' }), null, 'no meter: no quotas');
    const broken = Object.create(store) as KeyStore;
    broken.usageTotals = async () => {
      throw new Error('database down');
    };
    const bm = new UsageMeter(broken, { flushMs: 60_000, quotaCacheMs: 0 });
    assert.equal(await admitQuota({ key: info, service: 'stt', meter: bm }), null);
    await bm.close();
    await m.close();
  });
});
