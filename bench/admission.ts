/**
 * Session admission overhead of shared state (issue 12 "Benchmark": "Session admission overhead with
 * Redis + Postgres vs the embedded default (p50/p99 of handshake → ready), and sessions per second
 * admitted by three gateways. Target: admission p99 ≤ 5 ms added over the embedded default").
 * Standalone: `node dist/bench/admission.js [--sessions N] [--seconds S] [--out FILE]`
 * (defaults 1000 sessions per variant, 5 s → bench/results/admission.json); also a step of `npm run bench`.
 *
 * Engine: the scripted `fake` STT engine (no decoder), so what is measured is the front door: auth
 * (SQLite, or PostgreSQL with its key cache), quotas, live limits (in-memory, or Redis leases + rpm),
 * the session registry, backend selection and the `init` → `ready` exchange. The key has
 * `maxSessions` and `rpm` set (high), so both live checks run on every session.
 *
 * 0. The live admission step alone (`admitLive`: rpm + lease + registry; then release), in memory
 *    vs on Redis, 5000 each alternating after 500 warm-up: the cost Redis adds, without the
 *    scheduling noise of whole handshakes on a shared machine.
 * 1. Latency: one gateway in this process per variant — `embedded` (SQLite, in-memory state) and
 *    `redis+postgres` (state.redisUrl, storage.url; real `redis-server` and PostgreSQL from
 *    test/support/servers.ts) — N sequential sessions each, alternating between the two, after 50
 *    warm-up ones: time from the WebSocket connect to `ready`, p50/p99; `added_*` = shared minus embedded.
 * 2. Throughput: three `voxgate serve` processes sharing the Redis and PostgreSQL, 8 concurrent
 *    clients per gateway for S seconds, each looping connect → init → ready → close: sessions
 *    admitted per second in total.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { loadConfig, type VoxgateConfig } from '../src/config/config.js';
import { startVoxgate, type RunningVoxgate } from '../src/server/bootstrap.js';
import { openStore } from '../src/store/index.js';
import { adminKeyPath } from '../src/store/keys.js';
import { packageRoot } from '../src/util/paths.js';
import { startPostgres, startRedis } from '../test/support/servers.js';
import { startVoxgateProcess, stopAllProcesses } from '../test/support/processes.js';
import { percentile } from './lib/stats.js';
import pino from 'pino';
import { LiveState } from '../src/state/live.js';
import { admitLive } from '../src/server/admission.js';

const log = (s: string) => process.stderr.write(`${s}\n`);
const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const SESSIONS = arg('--sessions', 1000);
const SECONDS = arg('--seconds', 5);
const outIdx = process.argv.indexOf('--out');
const OUT = outIdx > 0 ? process.argv[outIdx + 1]! : path.join(packageRoot(), 'bench', 'results', 'admission.json');
const MODEL = 'bench/fake:en';
const LIMITS = { maxSessions: 100_000, rpm: 100_000_000 };

/** The config file contents of every variant (plus state/storage). */
const baseFile = { stt: { models: [{ code: MODEL, engine: 'fake', dialect: 'unified' }] }, limits: { initTimeoutSeconds: 30 } };

/** Connect, init, wait `ready`, close: ms from connect to ready. @throws on refusal or error frame. */
function oneSession(wsUrl: string, key: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const ws = new WebSocket(`${wsUrl}/v1/stt/${MODEL}`, { headers: { Authorization: `Bearer ${key}` } });
    ws.on('open', () => ws.send(JSON.stringify({ type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16' } })));
    ws.on('message', (d, bin) => {
      if (bin) return;
      const m = JSON.parse(d.toString()) as { type: string };
      if (m.type === 'ready') {
        const ms = performance.now() - t0;
        ws.send(JSON.stringify({ type: 'close' }));
        ws.once('close', () => resolve(ms));
      } else if (m.type === 'error') reject(new Error(JSON.stringify(m)));
    });
    ws.on('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.on('error', reject);
  });
}

/**
 * N sessions on each gateway, alternating between them (so load drift on a shared machine hits both
 * variants alike), after 50 warm-up sessions each. @returns ms per session, per gateway.
 */
async function latency(gws: { v: RunningVoxgate; key: string }[]): Promise<number[][]> {
  const urls = gws.map((g) => `ws://127.0.0.1:${g.v.port}`);
  for (let i = 0; i < 50; i++) for (const [j, g] of gws.entries()) await oneSession(urls[j]!, g.key);
  const out: number[][] = gws.map(() => []);
  for (let i = 0; i < SESSIONS; i++) for (const [j, g] of gws.entries()) out[j]!.push(await oneSession(urls[j]!, g.key));
  return out;
}

const r2 = (x: number | null) => (x === null ? null : Math.round(x * 100) / 100);
const summary = (xs: number[]) => ({ n: xs.length, p50_ms: r2(percentile(xs, 50)), p99_ms: r2(percentile(xs, 99)), max_ms: r2(Math.max(...xs)) });

async function main(): Promise<void> {
  const [redis, pg] = await Promise.all([startRedis(), startPostgres()]);
  const dirs: string[] = [];
  const tmp = () => {
    const d = mkdtempSync(path.join(os.tmpdir(), 'voxgate-bench-adm-'));
    dirs.push(d);
    return d;
  };
  try {
    const cfgOf = (extra: Record<string, unknown>): VoxgateConfig => {
      const f = path.join(tmp(), 'config.json');
      writeFileSync(f, JSON.stringify({ ...baseFile, ...extra }));
      return loadConfig(f);
    };
    // 0. The live admission step alone (rpm + lease + registry, then release), memory vs Redis, alternating.
    const liveMem = new LiveState({ log: pino({ level: 'silent' }) });
    const liveRedis = new LiveState({ redisUrl: redis.url, log: pino({ level: 'silent' }), keyPrefix: 'bench:' });
    const keyInfo = { id: 'benchkey0000', name: 'bench', createdAt: '', lastUsedAt: null, revokedAt: null, admin: false, limits: LIMITS };
    while (!liveRedis.shared) await new Promise((r) => setTimeout(r, 20));
    const step: number[][] = [[], []];
    for (let i = 0; i < 5000 + 500; i++) {
      for (const [j, st] of [liveMem, liveRedis].entries()) {
        const t = performance.now();
        const lease = await admitLive(st, { key: keyInfo, session: { sessionId: `s${i}`, model: MODEL, kind: 'stt' } });
        const ms = performance.now() - t;
        lease.release();
        if (i >= 500) step[j]!.push(ms);
      }
    }
    await liveMem.close();
    await liveRedis.close();
    const admissionStep = { memory: summary(step[0]!), redis: summary(step[1]!) };
    log(`admission step alone: memory p50 ${admissionStep.memory.p50_ms} / p99 ${admissionStep.memory.p99_ms} ms; Redis p50 ${admissionStep.redis.p50_ms} / p99 ${admissionStep.redis.p99_ms} ms`);

    // 1. Latency: both variants in this process, sessions alternating between them.
    const variants: Record<string, ReturnType<typeof summary>> = {};
    const names = ['embedded', 'redis+postgres'] as const;
    const extras = [{}, { state: { redisUrl: redis.url }, storage: { url: pg.url } }];
    const inProc: { v: RunningVoxgate; key: string }[] = [];
    try {
      for (const extra of extras) {
        const v = await startVoxgate({ port: 0, host: '127.0.0.1', dataDir: tmp(), config: cfgOf(extra), logLevel: 'error' });
        inProc.push({ v, key: (await v.store.createKey('bench', { limits: LIMITS })).key });
      }
      const xs = await latency(inProc);
      names.forEach((name, j) => {
        variants[name] = summary(xs[j]!);
        log(`${name}: handshake → ready p50 ${variants[name]!.p50_ms} ms, p99 ${variants[name]!.p99_ms} ms (n=${xs[j]!.length})`);
      });
    } finally {
      for (const g of inProc) await g.v.stop();
    }
    const e = variants.embedded!;
    const s = variants['redis+postgres']!;
    const added = { p50_ms: r2(s.p50_ms! - e.p50_ms!), p99_ms: r2(s.p99_ms! - e.p99_ms!) };
    log(`added by Redis + PostgreSQL: p50 ${added.p50_ms} ms, p99 ${added.p99_ms} ms (target p99 ≤ 5 ms)`);

    // 2. Throughput of three gateway processes on the shared Redis and PostgreSQL.
    const shared = tmp();
    const store = await openStore({ dataDir: shared, storage: { url: pg.url } });
    // The admin key the processes' start-up waits for (the database already has one: save a new one here).
    writeFileSync(adminKeyPath(shared), (await store.createKey('bench-admin', { admin: true })).key + '\n', { mode: 0o600 });
    const { key } = await store.createKey('bench-3gw', { limits: LIMITS });
    await store.close();
    const file = { ...baseFile, state: { redisUrl: redis.url }, storage: { url: pg.url } };
    const gws = await Promise.all(['a', 'b', 'c'].map((n) => startVoxgateProcess({ role: 'gateway', name: `gw-${n}`, dataDir: shared, config: file, logLevel: 'warn' })));
    let admitted = 0;
    let failed = 0;
    const until = performance.now() + SECONDS * 1000;
    const t0 = performance.now();
    await Promise.all(
      gws.flatMap((g) =>
        Array.from({ length: 8 }, async () => {
          while (performance.now() < until) {
            try {
              await oneSession(g.wsUrl, key);
              admitted++;
            } catch {
              failed++;
            }
          }
        }),
      ),
    );
    const secs = (performance.now() - t0) / 1000;
    const perSecond = Math.round(admitted / secs);
    log(`three gateways: ${perSecond} sessions/s admitted (${admitted} in ${secs.toFixed(1)} s, ${failed} failed)`);
    await stopAllProcesses(3000);

    const result = {
      bench: 'admission',
      date: new Date().toISOString(),
      host: { cpus: os.cpus().length, loadavg_1m: r2(os.loadavg()[0]!), node: process.version },
      engine: 'fake (scripted, no decoder): front-door cost only',
      key_limits: LIMITS,
      live_admission_step: admissionStep,
      handshake_to_ready: variants,
      added_by_shared_state: added,
      target_p99_added_ms: 5,
      three_gateways: { clients: 24, seconds: r2(secs), sessions_admitted: admitted, failed, sessions_per_second: perSecond },
    };
    mkdirSync(path.dirname(OUT), { recursive: true });
    writeFileSync(OUT, JSON.stringify(result, null, 2) + '\n');
    log(`wrote ${OUT}`);
  } finally {
    await stopAllProcesses(1000);
    await redis.stop();
    await pg.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    log(`admission bench failed: ${err.stack ?? err.message}`);
    process.exit(1);
  },
);
