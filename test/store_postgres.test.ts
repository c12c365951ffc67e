/**
 * Keys in PostgreSQL shared by several gateways (issue 12 "Postgres (`pg`) for API keys … migrations
 * applied at start, keys still stored only as hashes. A revoked key is refused by every instance
 * within 5 s"). A real throw-away PostgreSQL (test/support/servers.ts `startPostgres`, started once for
 * the file) and two real gateways on 127.0.0.1:0 sharing it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { loadConfig, type VoxgateConfig } from '../src/config/config.js';
import { migrate, MIGRATIONS, PgKeyStore } from '../src/store/postgres.js';
import { openSocket, sharedData, startConfiguredServer, type TestServer } from './helpers.js';
import { startPostgres, type PostgresServer } from './support/servers.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A gateway configuration on the shared database (default catalogue, small decoder pool). */
export function pgConfig(url: string, over: Partial<VoxgateConfig> = {}): VoxgateConfig {
  const base = loadConfig();
  return { ...base, engines: { pocketsphinx: { minIdleDecoders: 1, maxDecoders: 2 } }, storage: { ...base.storage!, url }, ...over };
}

/** Status of `GET /v1/status` with `key` on gateway `s` (the one authenticated HTTP check). */
async function statusWith(s: TestServer, key: string): Promise<number> {
  const r = await fetch(`${s.url}/v1/status`, { headers: { Authorization: `Bearer ${key}` } });
  await r.arrayBuffer();
  return r.status;
}

describe('PostgreSQL key store (issue 12)', () => {
  let db: PostgresServer;
  let a: TestServer;
  let b: TestServer;
  before(async () => {
    db = await startPostgres();
    // Two gateways starting at once on an empty database: migrations and the admin key race.
    [a, b] = await Promise.all([startConfiguredServer(pgConfig(db.url), 'a'), startConfiguredServer(pgConfig(db.url), 'b')]);
  });
  after(async () => {
    await a?.cleanup();
    await b?.cleanup();
    await db?.stop();
  });

  it('migrations ran once: schema_migrations lists each version once; re-running applies nothing; concurrent runs are safe', async () => {
    const pool = new pg.Pool({ connectionString: db.url, max: 4 });
    try {
      const rows = (await pool.query<{ version: number; name: string }>('SELECT version, name FROM schema_migrations ORDER BY version')).rows;
      assert.deepEqual(rows, MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
      const again = await Promise.all([migrate(pool), migrate(pool), migrate(pool)]);
      assert.deepEqual(again, [[], [], []]);
      // A new migration offered by three instances at once is applied exactly once.
      const extra = [...MIGRATIONS, { version: 99, name: 'probe', sql: 'CREATE TABLE probe_99 (x int)' }];
      const applied = await Promise.all([migrate(pool, extra), migrate(pool, extra), migrate(pool, extra)]);
      assert.deepEqual(applied.flat(), [99]);
      assert.equal((await pool.query('SELECT count(*)::int AS n FROM schema_migrations WHERE version = 99')).rows[0].n, 1);
      await pool.query('DROP TABLE probe_99; DELETE FROM schema_migrations WHERE version = 99');
    } finally {
      await pool.end();
    }
  });

  it('two gateways starting at once on an empty database made one admin key; keys are stored only as SHA-256', async () => {
    const keys = await a.store.listKeys();
    assert.equal(keys.filter((k) => k.admin && !k.revokedAt).length, 1, JSON.stringify(keys));
    const pool = new pg.Pool({ connectionString: db.url, max: 1 });
    try {
      const row = (await pool.query<{ hash: Buffer }>('SELECT hash FROM api_keys WHERE id = $1', [a.key.split('_')[1]])).rows[0]!;
      assert.deepEqual(row.hash, createHash('sha256').update(a.key).digest());
      const all = JSON.stringify((await pool.query('SELECT * FROM api_keys')).rows);
      assert.ok(!all.includes(a.key.split('_')[2]!), 'no secret material in the table');
    } finally {
      await pool.end();
    }
  });

  it('a key created on A works on B at once (HTTP and WebSocket); wrong secrets and unknown keys are refused', async () => {
    const { key } = await a.store.createKey('fresh');
    assert.equal(await statusWith(b, key), 200);
    const c = await openSocket(`${b.wsUrl}/v1/stt/local/pocketsphinx:en`, { Authorization: `Bearer ${key}` });
    c.ws.close();
    await c.closed;
    const wrong = key.slice(0, -4) + (key.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    assert.equal(await statusWith(b, wrong), 401);
    assert.equal(await statusWith(b, 'vgk_000000000000_' + 'x'.repeat(43)), 401);
  });

  it('revoked on A, the key is refused by B within 5 s (B had it cached)', async () => {
    const { key, info } = await a.store.createKey('to-revoke');
    assert.equal(await statusWith(b, key), 200); // now in B's cache
    assert.equal(await statusWith(a, key), 200);
    assert.equal(await a.store.revokeKey(info.id), true);
    assert.equal(await statusWith(a, key), 401, 'the revoking instance refuses at once');
    const t0 = Date.now();
    let status = 200;
    while (Date.now() - t0 < 5000) {
      status = await statusWith(b, key);
      if (status === 401) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(status, 401, 'B refuses the revoked key within 5 s');
    // And the WebSocket upgrade on B too.
    await assert.rejects(openSocket(`${b.wsUrl}/v1/stt/local/pocketsphinx:en`, { Authorization: `Bearer ${key}` }), (e: { statusCode?: number }) => e.statusCode === 401);
  });

  it('usage metered on A counts against the quota on B: a real pre-recorded request on A, then B refuses with 429 before dialling', async () => {
    const clip = readFileSync(sharedData('asr_en/en_cmu_goforward.wav'));
    const { key, info } = await a.store.createKey('shared-quota', { limits: { audioSecondsPerDay: 1 } });
    const first = await fetch(`${a.url}/v1/stt/local/pocketsphinx:en`, { method: 'POST', headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'audio/wav' }, body: new Uint8Array(clip) });
    assert.equal(first.status, 200, 'under the quota: admitted');
    await first.arrayBuffer();
    const onA = (await (await fetch(`${a.url}/v1/usage`, { headers: { Authorization: `Bearer ${key}` } })).json()) as { day: { audio_seconds_in: number } }; // flushes A's rows
    assert.ok(onA.day.audio_seconds_in > 1, JSON.stringify(onA));
    const onB = await fetch(`${b.url}/v1/stt/local/pocketsphinx:en`, { method: 'POST', headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'audio/wav' }, body: new Uint8Array(clip) });
    assert.equal(onB.status, 429);
    const body = (await onB.json()) as { error: string; message: string };
    assert.equal(body.error, 'rate_limit');
    assert.match(body.message, /audioSecondsPerDay/);
    const dg = await openSocket(`${b.wsUrl}/v1/listen`, { Authorization: `Token ${key}` }).then(
      () => 0,
      (e: { statusCode?: number }) => e.statusCode ?? -1,
    );
    assert.equal(dg, 429);
    assert.equal((await b.store.getKey(info.id))!.limits.audioSecondsPerDay, 1);
  });

  it('database down: an uncached key gets 503 (not 401), usage rows are kept; back up: the key works and the rows are written', async () => {
    const { key, info } = await a.store.createKey('outage');
    const r = await fetch(`${a.url}/v1/tts/local/flite:en`, { method: 'POST', headers: { Authorization: `Bearer ${a.key}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ text: 'Still here.' }) });
    assert.equal(r.status, 200);
    await r.arrayBuffer();
    let pendingWhileDown = -1;
    await db.restart(0, async () => {
      const status = await fetch(`${a.url}/v1/status`, { headers: { Authorization: `Bearer ${key}` } });
      assert.equal(status.status, 503, 'the key store is unavailable: neither accepted nor called invalid');
      assert.equal(((await status.json()) as { error: string }).error, 'backpressure'); // SLNG's code for `unavailable`
      await a.meter.flush();
      pendingWhileDown = a.meter.pending();
    });
    assert.ok(pendingWhileDown >= 1, 'the TTS request is still pending while the database is down');
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = await statusWith(a, key);
      if (status !== 200) await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal(status, 200, 'the key works once the database is back');
    await a.meter.flush();
    assert.equal(a.meter.pending(), 0);
    const rows = await a.store.queryUsage({ keyId: a.key.split('_')[1]! });
    assert.ok(rows.some((x) => x.service === 'tts' && x.charsIn >= 'Still here.'.length), JSON.stringify(rows));
    assert.ok(info.id);
  });

  it('a database that cannot be reached fails the start with a clear message (password never shown)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vg-pgbad-'));
    try {
      await assert.rejects(PgKeyStore.open({ url: 'postgres://u:s3cret@127.0.0.1:1/x', dataDir: dir }), (e: Error) => /cannot open the PostgreSQL store/.test(e.message) && !e.message.includes('s3cret'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
