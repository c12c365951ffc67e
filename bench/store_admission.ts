/**
 * Admission cost of the durable store (issue 12 "Benchmark: session admission overhead with … Postgres
 * vs the embedded default"): WebSocket handshake → open (the upgrade = authentication + quota check +
 * backend selection) on a gateway whose STT model is a scripted fake (no decoder cost), one session at
 * a time, with a key that has a day quota (so the quota path runs):
 *
 * - `sqlite`: the embedded default;
 * - `postgres`: a private PostgreSQL, default caches (verified keys 2 s, quota totals 1 s);
 * - `postgres-nocache`: `keyCacheTtlMs: 0, quotaCacheMs: 0` — every upgrade asks the database (key
 *   lookup + two usage sums).
 *
 * Client and gateway share this process (loopback), so the absolute numbers include the client's
 * work and the box's load; the differences between rows are the store's cost. `direct` times the
 * admission work alone (`authenticate` + `admitQuota`, awaited in a loop) for each row, which is
 * what the store adds to a handshake. `node dist/bench/store_admission.js [N]`
 * (default N = 400 sessions per row after 50 warm-up) → bench/results/store_admission.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { loadConfig, type VoxgateConfig } from '../src/config/config.js';
import { packageRoot } from '../src/util/paths.js';
import { startConfiguredServer } from '../test/helpers.js';
import { startPostgres } from '../test/support/servers.js';
import { authenticate } from '../src/server/auth.js';
import { admitQuota } from '../src/server/admission.js';

const N = Number(process.argv[2] ?? 400);
const WARM = 50;

function config(url?: string, nocache = false): VoxgateConfig {
  const base = loadConfig();
  return {
    ...base,
    engines: { fake: { type: 'fake' } },
    stt: { models: [{ code: 'bench/fake:admit', engine: 'fake', dialect: 'unified', options: {}, aliases: [] }] },
    compat: { defaultSttModel: 'bench/fake:admit' },
    storage: { ...base.storage!, url, ...(nocache ? { keyCacheTtlMs: 0, quotaCacheMs: 0 } : {}) },
  };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! * 1000) / 1000;
}

async function handshakeMs(url: string, key: string): Promise<number> {
  const t0 = performance.now();
  const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${key}` } });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const ms = performance.now() - t0;
  ws.close();
  await new Promise((r) => ws.once('close', r));
  return ms;
}

async function row(name: string, url?: string, nocache = false): Promise<Record<string, unknown>> {
  const s = await startConfiguredServer(config(url, nocache));
  try {
    const { key } = await s.store.createKey('bench', { limits: { audioSecondsPerDay: 1e9 } });
    const target = `${s.wsUrl}/v1/stt/bench/fake:admit`;
    for (let i = 0; i < WARM; i++) await handshakeMs(target, key);
    const xs: number[] = [];
    for (let i = 0; i < N; i++) xs.push(await handshakeMs(target, key));
    // The admission work alone, as the upgrade runs it.
    const headers = { authorization: `Bearer ${key}` };
    const u = new URL(target.replace(/^ws/, 'http'));
    const ds: number[] = [];
    for (let i = 0; i < WARM + N * 5; i++) {
      const t0 = performance.now();
      const a = await authenticate(headers, u, s.store);
      if (!a.ok) throw a.error;
      if (await admitQuota({ key: a.key, service: 'stt', meter: s.meter })) throw new Error('refused');
      if (i >= WARM) ds.push(performance.now() - t0);
    }
    const r = {
      store: name,
      sessions: N,
      handshake: { p50_ms: pct(xs, 50), p90_ms: pct(xs, 90), p99_ms: pct(xs, 99), max_ms: pct(xs, 100) },
      direct: { calls: ds.length, p50_ms: pct(ds, 50), p90_ms: pct(ds, 90), p99_ms: pct(ds, 99), max_ms: pct(ds, 100) },
      load_avg_1m: (await import('node:os')).loadavg()[0],
    };
    process.stdout.write(JSON.stringify(r) + '\n');
    return r;
  } finally {
    await s.cleanup();
  }
}

const db = await startPostgres();
try {
  const rows = [await row('sqlite'), await row('postgres', db.url), await row('postgres-nocache', db.url, true)];
  const out = path.join(packageRoot(), 'bench', 'results', 'store_admission.json');
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), note: 'handshake→open of a WebSocket upgrade, one at a time, client in-process (loopback)', rows }, null, 2) + '\n');
} finally {
  await db.stop();
}
