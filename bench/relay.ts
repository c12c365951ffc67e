/**
 * Relay-overhead benchmark (issue 10 "Benchmark"): `node dist/bench/relay.js [--levels 100,500,1000]
 * [--seconds 10] [--chunk-ms 100] [--kills 20] [--no-baseline] [--no-failover] [--baseline-only] [--out FILE]`; also a
 * step of `npm run bench`. Writes bench/results/relay.json.
 *
 * Setup — ONE clock: a scripted upstream speaking the SLNG unified protocol
 * (bench/lib/scripted_upstream.ts) and all benchmark clients run in THIS process; the gateway runs as
 * a child process (`voxgate serve`, bench/lib/server.ts) with an `slng` engine instance pointing at
 * the scripted upstream. The upstream stamps each result with `performance.now()` just before
 * sending; the client reads `performance.now()` on receipt, so the latency needs no clock sync.
 *
 * Per level N (100, 500, 1000 concurrent sessions; a fresh gateway child per level):
 * - every session sends real-time linear16 16 kHz mono audio (real speech from ../shared/data/asr_en,
 *   looped; `--chunk-ms` chunks, default 100 ms, at absolute times t0 + phase + k·chunk, phases spread
 *   over the chunk — 100 ms rather than the 20 ms of the other benchmarks because 1000 × 50 frames/s
 *   in and out does not fit next to the clients on 2 cores; `--chunk-ms 20` measures that case);
 *   the upstream answers one result per 250 ms of audio (a final every 1 s);
 * - `latency_ms` = client receive − upstream send over every stamped result in the measurement
 *   window (after a 2 s warm-up), p50/p90/p99/max; `baseline_ms` is the same measurement with the
 *   clients connected straight to the upstream (no gateway) at the same N — the harness's own share
 *   (both ends share this process's event loop); `added_p50/p99_ms` = gateway − baseline percentiles;
 * - gateway CPU (utime+stime from /proc/PID/stat over the window, percent of one core) and RSS per
 *   session = (VmRSS at the end of the window − VmRSS idle before any session) / N, KiB.
 *
 * Where a gap's time goes is recorded too (`reconnect_ms`, `first_audio_at_next_ms`: the next
 * upstream's accept and first replayed audio frame, same clock). The rest is the failover policy
 * (src/engines/stt/failover.ts): the audio since the last final is replayed at ≤ 1.25× real time,
 * partials of the replacement backend are suppressed until the replay has caught up with live audio,
 * so the first result the client sees is the new backend's first final (here after 1 s of its audio,
 * ≈ 0.8 s at 1.25×) or a partial after catch-up (4× the backlog at 1.25×).
 *
 * Failover gap: a model with two `slng` backends in one region, each scripted upstream behind a
 * fault proxy (test/support/fault_proxy.ts). Rounds of one real-time session: once it has results
 * and the other backend is out of its cool-down from the previous kill (gateway /v1/status), the
 * backend holding it is killed (all its connections destroyed, new ones refused until the round
 * ends); gap = that moment → the first result stamped by the other upstream at the client. Until
 * ≥ `--kills` gaps are measured. Run twice: with the `slng` default `replayPace` (1.25×, results key
 * `failover`) and with `replayPace: null`, the setting for voxgate workers (`failover_unpaced`). Results every 100 ms of audio in this phase (so the upstream's own
 * cadence adds ≤ 100 ms to a gap).
 *
 * The box has 2 cores: the gateway, the upstream and up to 1000 clients share them, so the numbers
 * are an upper bound of the gateway's own overhead; `bench.cpu_percent` and `bench.loop_delay_p99_ms`
 * say how busy the harness itself was. Exit code 0 even when targets are missed; 1 when it cannot run.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import WebSocket from 'ws';
import { loadAsrEnClips, repoRoot } from './lib/clips.js';
import { ScriptedUpstream, parseStamp } from './lib/scripted_upstream.js';
import { cpuPercent, externalCpuPercent, ServerProcess, type ProcSample } from './lib/server.js';
import { percentile, round } from './lib/stats.js';
import { FaultProxy } from '../test/support/fault_proxy.js';

const log = (s: string) => process.stderr.write(`${s}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Targets of issue 10. */
const TARGET_P99_MS_AT_1000 = 1;
const TARGET_RSS_PER_SESSION_KIB = 64;
const TARGET_FAILOVER_P95_MS = 500;
/** Model codes served by the gateway under test. */
const RELAY_MODEL = 'bench/relay:en';
const FAILOVER_MODEL = 'bench/failover:en';
/** Warm-up after all sessions are ready, before measuring, ms. */
const WARMUP_MS = 2000;
/** Timer period of the event-loop delay monitors (ours and prom-client's default), ms; their readings include it. */
const LOOP_RESOLUTION_MS = 10;
/** 16 kHz linear16 mono. */
const BYTES_PER_MS = 32;

interface Args {
  levels: number[];
  seconds: number;
  chunkMs: number;
  kills: number;
  baseline: boolean;
  /** Only the no-gateway baseline (harness capacity); no gateway is started. */
  baselineOnly: boolean;
  failover: boolean;
  out: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { levels: [100, 500, 1000], seconds: 10, chunkMs: 100, kills: 20, baseline: true, baselineOnly: false, failover: true, out: path.join(repoRoot(), 'bench/results/relay.json') };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${k} needs a value`);
      return x;
    };
    if (k === '--levels') a.levels = v().split(',').map(Number);
    else if (k === '--seconds') a.seconds = Number(v());
    else if (k === '--chunk-ms') a.chunkMs = Number(v());
    else if (k === '--kills') a.kills = Number(v());
    else if (k === '--no-baseline') a.baseline = false;
    else if (k === '--no-failover') a.failover = false;
    else if (k === '--baseline-only') {
      a.baselineOnly = true;
      a.failover = false;
    }
    else if (k === '--out') a.out = path.resolve(v());
    else throw new Error(`unknown argument ${k}`);
  }
  if (a.levels.some((n) => !Number.isInteger(n) || n < 1)) throw new Error('--levels: positive integers');
  return a;
}

/**
 * Gateway config: one relay model on one `slng` backend, one failover model on two.
 * @param replayPace the instances' `replayPace` setting; undefined = the `slng` default (`null`, no limit).
 */
function gatewayConfig(upA: string, upB: string, replayPace?: number | null): Record<string, unknown> {
  const common = { type: 'slng', region: 'us-east-1', model: 'bench/scripted:en', languages: ['en'], connectTimeoutMs: 2000, stallTimeoutMs: 3000, ...(replayPace !== undefined ? { replayPace } : {}) };
  return {
    engines: { 'up-a': { ...common, url: upA }, 'up-b': { ...common, url: upB } },
    stt: {
      models: [
        { code: RELAY_MODEL, engine: 'up-a', backends: ['up-a'], dialect: 'unified' },
        { code: FAILOVER_MODEL, engine: 'up-a', backends: ['up-a', 'up-b'], dialect: 'unified' },
      ],
    },
    http: { maxConnectionsPerIp: 0 },
    limits: { idleTimeoutSeconds: 60 },
  };
}

/** Latencies recorded while {@link Recorder.on} (ms). */
class Recorder {
  on = false;
  all: number[] = [];
  finals: number[] = [];
  /** Receive time (performance.now(), ms) of each entry of {@link all}. */
  at: number[] = [];
  record(ms: number, final: boolean, now: number): void {
    if (!this.on) return;
    this.all.push(ms);
    this.at.push(now);
    if (final) this.finals.push(ms);
  }
  /** p50/p99/max per second of the window (to tell steady overhead from stalls). */
  bySecond(t0: number): { second: number; count: number; p50: number | null; p99: number | null; max: number | null }[] {
    const buckets: number[][] = [];
    this.at.forEach((t, i) => {
      const k = Math.max(0, Math.floor((t - t0) / 1000));
      (buckets[k] ??= []).push(this.all[i]!);
    });
    return [...buckets].map((b, k) => ({ second: k, ...summary(b ?? []) }));
  }
}

/** One benchmark client session (unified dialect). */
class RelayClient {
  ws!: WebSocket;
  nextDue = 0;
  offset: number;
  errors: string[] = [];
  closedCode: number | null = null;
  /** Receipts of stamped results: upstream name and receive time (ms). */
  lastUpstream: string | null = null;
  onStamped: ((upstream: string, atMs: number) => void) | null = null;
  results = 0;
  private closing = false;

  constructor(
    private readonly audio: Buffer,
    offset: number,
    private readonly chunkBytes: number,
    private readonly rec: Recorder,
  ) {
    this.offset = offset - (offset % 2);
  }

  /** Open, send init, resolve on `ready`. @throws Error on failure or after 20 s. */
  open(url: string, key: string | null): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers: key ? { Authorization: `Bearer ${key}` } : {}, perMessageDeflate: false });
      this.ws = ws;
      let ready = false;
      const t = setTimeout(() => fail(new Error('no ready within 20 s')), 20000);
      const fail = (e: Error) => {
        clearTimeout(t);
        if (!ready) {
          ws.terminate();
          reject(e);
        }
      };
      ws.on('error', (e) => {
        this.errors.push(`ws error: ${e.message}`);
        fail(e);
      });
      ws.on('unexpected-response', (_q, r) => fail(new Error(`upgrade refused: HTTP ${r.statusCode}`)));
      ws.on('close', (code) => {
        this.closedCode = code;
        if (!this.closing) this.errors.push(`closed ${code}`);
        fail(new Error(`closed ${code} before ready${this.errors.length ? ` (${this.errors.join('; ')})` : ''}`));
      });
      ws.on('open', () => ws.send(JSON.stringify({ type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16', enable_partials: true } })));
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        const now = performance.now();
        if (isBinary) return;
        const m = JSON.parse(data.toString()) as { type: string; transcript?: string; code?: string; message?: string };
        if (m.type === 'ready') {
          ready = true;
          clearTimeout(t);
          resolve();
          return;
        }
        if (m.type === 'error') {
          this.errors.push(`${m.code}: ${m.message}`);
          return;
        }
        if ((m.type === 'partial_transcript' || m.type === 'final_transcript') && m.transcript) {
          const s = parseStamp(m.transcript);
          if (!s) return;
          this.results++;
          this.rec.record(now - s.sentUs / 1000, m.type === 'final_transcript', now);
          this.lastUpstream = s.upstream;
          this.onStamped?.(s.upstream, now);
        }
      });
    });
  }

  /** Send the next real-time chunk (looping over the audio). */
  sendChunk(): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    if (this.offset + this.chunkBytes > this.audio.length) this.offset = 0;
    this.ws.send(this.audio.subarray(this.offset, this.offset + this.chunkBytes));
    this.offset += this.chunkBytes;
  }

  /** Send `close`, wait for the server's close (≤ 5 s), else terminate. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.ws.readyState === WebSocket.OPEN) {
      const done = new Promise<void>((r) => this.ws.once('close', () => r()));
      this.ws.send(JSON.stringify({ type: 'close' }));
      await Promise.race([done, sleep(5000)]);
    }
    this.ws.terminate();
  }
}

/** Sends every client's chunks at absolute real-time instants; records how late it ran. */
class Pacer {
  framesSent = 0;
  maxLagMs = 0;
  private timer: NodeJS.Timeout | null = null;
  private clients: RelayClient[] = [];

  constructor(private readonly chunkMs: number) {}

  /** Start pacing `c`, with its first chunk due one chunk after now plus a phase in [0, chunk). */
  add(c: RelayClient, phase: number): void {
    c.nextDue = performance.now() + this.chunkMs + phase;
    this.clients.push(c);
    if (!this.timer) this.tick();
  }

  remove(c: RelayClient): void {
    this.clients = this.clients.filter((x) => x !== c);
  }

  resetStats(): void {
    this.framesSent = 0;
    this.maxLagMs = 0;
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.clients = [];
  }

  private tick = (): void => {
    const now = performance.now();
    for (const c of this.clients) {
      while (c.nextDue <= now) {
        this.maxLagMs = Math.max(this.maxLagMs, now - c.nextDue);
        c.sendChunk();
        this.framesSent++;
        c.nextDue += this.chunkMs;
      }
    }
    this.timer = setTimeout(this.tick, 1);
  };
}

/**
 * Open `n` sessions to `url` in batches of 50; resolves with those that got `ready` (the others'
 * reasons are appended to `failures`).
 */
async function openSessions(n: number, url: string, key: string | null, audio: Buffer, chunkMs: number, rec: Recorder, pacer: Pacer, failures: string[]): Promise<RelayClient[]> {
  const clients: RelayClient[] = [];
  const BATCH = 50;
  for (let i = 0; i < n; i += BATCH) {
    const batch: RelayClient[] = [];
    for (let j = i; j < Math.min(n, i + BATCH); j++) {
      const c = new RelayClient(audio, Math.floor((audio.length * j) / n), chunkMs * BYTES_PER_MS, rec);
      batch.push(c);
    }
    const settled = await Promise.allSettled(batch.map((c) => c.open(url, key)));
    settled.forEach((r, k) => {
      if (r.status === 'rejected') {
        failures.push(String((r.reason as Error).message));
        return;
      }
      const c = batch[k]!;
      pacer.add(c, (((i + k) % n) / n) * chunkMs);
      clients.push(c);
    });
  }
  return clients;
}

function summary(v: number[]): { count: number; p50: number | null; p90: number | null; p99: number | null; max: number | null } {
  return { count: v.length, p50: round(percentile(v, 50), 3), p90: round(percentile(v, 90), 3), p99: round(percentile(v, 99), 3), max: round(v.length ? Math.max(...v) : null, 3) };
}

/** Self CPU seconds (utime+stime) of this process. */
function selfCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

interface RunResult {
  /** Sessions that got `ready` and streamed. */
  sessions: number;
  sessions_failed_to_open: number;
  open_failure_samples: string[];
  latency_ms: ReturnType<typeof summary>;
  latency_by_second: ReturnType<Recorder['bySecond']>;
  finals_latency_ms: ReturnType<typeof summary>;
  errors: number;
  error_samples: string[];
  frames_sent: number;
  frames_expected: number;
  pacer_max_lag_ms: number;
  bench_cpu_percent: number;
  bench_loop_delay_p99_ms: number;
  measure_seconds: number;
  open_seconds: number;
}

/** Run N sessions against `url` for `seconds`, measuring in-process things; `onWindow` samples the gateway. */
async function runLevel(n: number, url: string, key: string | null, audio: Buffer, a: Args, onWindow?: (phase: 'start' | 'end') => void | Promise<void>): Promise<RunResult> {
  const rec = new Recorder();
  const pacer = new Pacer(a.chunkMs);
  const t0 = performance.now();
  let clients: RelayClient[] = [];
  const openFailures: string[] = [];
  try {
    clients = await openSessions(n, url, key, audio, a.chunkMs, rec, pacer, openFailures);
    const openSeconds = (performance.now() - t0) / 1000;
    await sleep(WARMUP_MS);
    const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    loop.enable();
    pacer.resetStats();
    const cpu0 = selfCpuSeconds();
    const w0 = performance.now();
    await onWindow?.('start');
    rec.on = true;
    await sleep(a.seconds * 1000);
    rec.on = false;
    await onWindow?.('end');
    const wall = (performance.now() - w0) / 1000;
    const cpu = ((selfCpuSeconds() - cpu0) / wall) * 100;
    loop.disable();
    const errors = clients.flatMap((c) => c.errors);
    return {
      sessions: clients.length,
      sessions_failed_to_open: openFailures.length,
      open_failure_samples: [...new Set(openFailures)].slice(0, 5),
      latency_ms: summary(rec.all),
      latency_by_second: rec.bySecond(w0),
      finals_latency_ms: summary(rec.finals),
      errors: errors.length,
      error_samples: [...new Set(errors)].slice(0, 5),
      frames_sent: pacer.framesSent,
      frames_expected: Math.round((n * wall * 1000) / a.chunkMs),
      pacer_max_lag_ms: round(pacer.maxLagMs, 1)!,
      bench_cpu_percent: round(cpu, 0)!,
      bench_loop_delay_p99_ms: round(Math.max(0, loop.percentile(99) / 1e6 - LOOP_RESOLUTION_MS), 2)!,
      measure_seconds: round(wall, 1)!,
      open_seconds: round(openSeconds, 1)!,
    };
  } finally {
    pacer.stop();
    await Promise.all(clients.map((c) => c.close()));
  }
}

/**
 * The gateway's event-loop lag since the previous scrape (prom-client's monitorEventLoopDelay via
 * `/metrics`), ms beyond the monitor's 10 ms timer period.
 */
async function scrapeLag(gw: ServerProcess): Promise<{ p99: number | null; max: number | null }> {
  try {
    const r = await fetch(`${gw.httpUrl}/metrics`, { headers: { Authorization: `Bearer ${gw.key}` }, signal: AbortSignal.timeout(5000) });
    const text = await r.text();
    const read = (name: string): number | null => {
      const m = new RegExp(`^${name} ([0-9.eE+-]+)`, 'm').exec(text);
      // prom-client's monitor (default precision 10 ms) reports the whole timer period: subtract it.
      return m ? round(Math.max(0, Number(m[1]) * 1000 - LOOP_RESOLUTION_MS), 1) : null;
    };
    return { p99: read('voxgate_nodejs_eventloop_lag_p99_seconds'), max: read('voxgate_nodejs_eventloop_lag_max_seconds') };
  } catch {
    return { p99: null, max: null };
  }
}

/** Wait until the gateway reports `want` live sessions (≤ `ms`). */
async function waitSessions(gw: ServerProcess, want: number, ms = 15000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const s = await gw.status();
    if (s && s.sessions === want) return;
    await sleep(200);
  }
}

interface LevelResult extends RunResult {
  baseline_ms: ReturnType<typeof summary> | null;
  baseline_bench_cpu_percent: number | null;
  added_p50_ms: number | null;
  added_p99_ms: number | null;
  /** CPU used by everything else on the machine during the window (not the gateway, not this process), percent of one core. */
  other_cpu_percent: number;
  /** Gateway: CPU over the window, RSS, and its own event-loop lag over the window (`/metrics`). */
  gateway: { cpu_percent: number; cpu_ms_per_session_second: number; rss_idle_mb: number; rss_mb: number; rss_per_session_kib: number; threads: number; loop_lag_p99_ms: number | null; loop_lag_max_ms: number | null };
}

async function relayLevels(a: Args, audio: Buffer, baselines: RunResult[]): Promise<LevelResult[]> {
  const out: LevelResult[] = [];
  for (const n of a.levels) {
    const upA = await ScriptedUpstream.start({ name: 'a' });
    const upB = await ScriptedUpstream.start({ name: 'b' });
    let base: RunResult | null = null;
    if (a.baseline) {
      log(`relay: N=${n} baseline (clients → upstream directly)…`);
      base = await runLevel(n, `${upA.wsUrl}/v1/stt/bench/scripted:en`, null, audio, a);
      log(`  baseline p50 ${base.latency_ms.p50} ms, p99 ${base.latency_ms.p99} ms, bench CPU ${base.bench_cpu_percent}%`);
      baselines.push(base);
      await sleep(500);
    }
    if (a.baselineOnly) {
      await upA.close();
      await upB.close();
      continue;
    }
    const gw = await ServerProcess.start({ root: repoRoot(), config: gatewayConfig(upA.wsUrl, upB.wsUrl) });
    try {
      await sleep(1000);
      const idle = gw.sample();
      log(`relay: N=${n} through the gateway (pid ${gw.pid}, idle RSS ${(idle.rssBytes / 1e6).toFixed(0)} MB)…`);
      let s0: ProcSample | null = null;
      let s1: ProcSample | null = null;
      let lag: { p99: number | null; max: number | null } = { p99: null, max: null };
      const r = await runLevel(n, `${gw.wsUrl}/v1/stt/${RELAY_MODEL}`, gw.key, audio, a, async (phase) => {
        if (phase === 'start') {
          await scrapeLag(gw); // prom-client's histogram restarts at every scrape: this one opens the window
          s0 = gw.sample();
        } else {
          s1 = gw.sample();
          lag = await scrapeLag(gw);
        }
      });
      const g0 = s0! as ProcSample;
      const g1 = s1! as ProcSample;
      const cpu = cpuPercent(g0, g1);
      const level: LevelResult = {
        ...r,
        baseline_ms: base?.latency_ms ?? null,
        baseline_bench_cpu_percent: base?.bench_cpu_percent ?? null,
        added_p50_ms: base && r.latency_ms.p50 !== null && base.latency_ms.p50 !== null ? round(r.latency_ms.p50 - base.latency_ms.p50, 3) : null,
        added_p99_ms: base && r.latency_ms.p99 !== null && base.latency_ms.p99 !== null ? round(r.latency_ms.p99 - base.latency_ms.p99, 3) : null,
        other_cpu_percent: round(externalCpuPercent(g0, g1), 0)!,
        gateway: {
          cpu_percent: round(cpu, 0)!,
          cpu_ms_per_session_second: round((cpu * 10) / Math.max(1, r.sessions), 3)!,
          rss_idle_mb: round(idle.rssBytes / 1e6, 1)!,
          rss_mb: round(g1.rssBytes / 1e6, 1)!,
          rss_per_session_kib: round((g1.rssBytes - idle.rssBytes) / Math.max(1, r.sessions) / 1024, 1)!,
          threads: g1.threads,
          loop_lag_p99_ms: lag.p99,
          loop_lag_max_ms: lag.max,
        },
      };
      log(`  gateway p50 ${r.latency_ms.p50} ms, p99 ${r.latency_ms.p99} ms (added p99 ${level.added_p99_ms}), errors ${r.errors}, failed opens ${r.sessions_failed_to_open} ${r.open_failure_samples.join(" / ")}, gateway CPU ${level.gateway.cpu_percent}%, gateway loop lag p99/max ${level.gateway.loop_lag_p99_ms}/${level.gateway.loop_lag_max_ms} ms, other CPU ${level.other_cpu_percent}%, RSS/session ${level.gateway.rss_per_session_kib} KiB, bench CPU ${r.bench_cpu_percent}%`);
      out.push(level);
      if (gw.unexpectedExit) throw new Error(`gateway exited: ${JSON.stringify(gw.unexpectedExit)}; logs: ${gw.logs.slice(-5).map((l) => l.text).join('\n')}`);
      await waitSessions(gw, 0);
    } finally {
      await gw.stop();
      await upA.close();
      await upB.close();
    }
  }
  return out;
}

interface FailoverResult {
  /** The backends' replay pace (× real time; null = unpaced, as for voxgate workers). */
  replay_pace: number | null;
  kills: number;
  gaps_ms: number[];
  /** Kill → first result from the other upstream at the client (the target's metric). */
  gap_ms: ReturnType<typeof summary> & { p95: number | null };
  /** Kill → the other upstream accepted the gateway's new connection. */
  reconnect_ms: ReturnType<typeof summary> & { p95: number | null };
  /** Kill → the other upstream received its first (replayed) audio frame. */
  first_audio_at_next_ms: ReturnType<typeof summary> & { p95: number | null };
  no_failover: number;
  errors: string[];
}

/** Measure failover gaps with the backends' `replayPace` setting (undefined = the slng default, no limit). */
async function failoverGaps(a: Args, audio: Buffer, replayPace?: number | null): Promise<FailoverResult> {
  log(`failover: replayPace ${replayPace === undefined ? 'default (null)' : String(replayPace)}`);
  const ups = { a: await ScriptedUpstream.start({ name: 'a', partialEveryMs: 100 }), b: await ScriptedUpstream.start({ name: 'b', partialEveryMs: 100 }) };
  const proxies = { a: await FaultProxy.start(ups.a.wsUrl), b: await FaultProxy.start(ups.b.wsUrl) };
  const gw = await ServerProcess.start({ root: repoRoot(), config: gatewayConfig(proxies.a.wsUrl, proxies.b.wsUrl, replayPace) });
  const gaps: number[] = [];
  const errors: string[] = [];
  let noFailover = 0;
  let kills = 0;
  const connects: number[] = [];
  const firstAudio: number[] = [];
  /**
   * One session per kill: a killed backend cools down (5 s) and then gets ONE probe trial at a time
   * (src/engines/health.ts), so a second kill before that, or several sessions failing over onto a
   * probing backend at once, would measure the cool-down policy, not the failover path.
   */
  const PER_ROUND = 1;
  /** Backend states from the gateway's /v1/status. */
  const states = async (): Promise<Record<string, string>> => {
    const st = (await gw.status()) as unknown as { backends?: Record<string, { state: string }> } | null;
    return Object.fromEntries(Object.entries(st?.backends ?? {}).map(([k, v]) => [k, v.state]));
  };
  try {
    for (let round = 0; gaps.length < a.kills && round < a.kills * 2; round++) {
      const rec = new Recorder();
      const pacer = new Pacer(a.chunkMs);
      const openFailures: string[] = [];
      const clients = await openSessions(PER_ROUND, `${gw.wsUrl}/v1/stt/${FAILOVER_MODEL}`, gw.key, audio, a.chunkMs, rec, pacer, openFailures);
      errors.push(...openFailures);
      try {
        const until = Date.now() + 5000;
        while (clients.some((c) => c.lastUpstream === null) && Date.now() < until) await sleep(20);
        await sleep(Math.random() * 300); // kill at a random point of the result cadence
        const on = (u: 'a' | 'b') => clients.filter((c) => c.lastUpstream === u);
        const victim: 'a' | 'b' = on('a').length >= on('b').length ? 'a' : 'b';
        const affected = on(victim);
        // The other backend must be able to take the session: wait out its cool-down from the last kill.
        const other = victim === 'a' ? 'up-b' : 'up-a';
        const waitUntil = Date.now() + 20000;
        while ((await states())[other] === 'cooling' && Date.now() < waitUntil) await sleep(100);
        let killAt = Infinity;
        const waits = affected.map(
          (c) =>
            new Promise<number | null>((resolve) => {
              const t = setTimeout(() => resolve(null), 5000);
              c.onStamped = (u, at) => {
                if (u !== victim && at >= killAt) {
                  clearTimeout(t);
                  resolve(at - killAt);
                }
              };
            }),
        );
        proxies[victim].refuse();
        killAt = performance.now();
        proxies[victim].killAll();
        kills++;
        for (const g of await Promise.all(waits)) {
          if (g === null) noFailover++;
          else gaps.push(g);
        }
        // Where the time went: the replacement connection's accept and first audio, same clock.
        const next = ups[victim === 'a' ? 'b' : 'a'].connections.find((t) => t.acceptedAt >= killAt);
        if (next) {
          connects.push(next.acceptedAt - killAt);
          if (next.firstAudioAt !== null) firstAudio.push(next.firstAudioAt - killAt);
        }
        errors.push(...clients.flatMap((c) => c.errors));
        proxies[victim].pass();
      } finally {
        pacer.stop();
        await Promise.all(clients.map((c) => c.close()));
      }
      log(`failover: round ${round + 1}, ${gaps.length} gaps, ${noFailover} sessions without a result from the other backend`);
      if (round >= 5 && gaps.length === 0) {
        log('failover: no session failed over in 6 rounds; giving up (see failover.errors)');
        break;
      }
    }
  } finally {
    await gw.stop();
    for (const p of Object.values(proxies)) await p.close();
    for (const u of Object.values(ups)) await u.close();
  }
  return {
    replay_pace: replayPace === undefined ? null : replayPace,
    kills,
    gaps_ms: gaps.map((g) => round(g, 1)!),
    gap_ms: { ...summary(gaps), p95: round(percentile(gaps, 95), 1) },
    reconnect_ms: { ...summary(connects), p95: round(percentile(connects, 95), 1) },
    first_audio_at_next_ms: { ...summary(firstAudio), p95: round(percentile(firstAudio, 95), 1) },
    no_failover: noFailover,
    errors: [...new Set(errors)].slice(0, 10),
  };
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const clips = await loadAsrEnClips();
  const audio = Buffer.concat(clips.slice(0, 20).map((c) => c.bytes));
  let fdLimit: string | null = null;
  try {
    const lim = (await import('node:fs')).readFileSync('/proc/self/limits', 'utf8');
    fdLimit = /Max open files\s+(\d+)/.exec(lim)?.[1] ?? null;
  } catch {
    /* not Linux */
  }
  const need = Math.max(...a.levels) * 2 + 100;
  if (fdLimit && Number(fdLimit) < need) log(`relay: warning: open-file limit ${fdLimit} < ${need} needed; run under \`ulimit -n ${need * 2}\``);
  log(`relay: ${os.cpus().length} CPUs, fd limit ${fdLimit}, levels ${a.levels.join(',')}, ${a.seconds} s each, ${a.chunkMs} ms chunks`);
  const baselines: RunResult[] = [];
  const levels = await relayLevels(a, audio, baselines);
  // The `slng` default (`replayPace: null`, voxgate workers), then Deepgram's 1.25× cap for comparison.
  const failover = a.failover ? await failoverGaps(a, audio) : null;
  const failoverPaced = a.failover ? await failoverGaps(a, audio, 1.25) : null;
  const at1000 = levels.find((l) => l.sessions === 1000);
  const maxRss = Math.max(...levels.map((l) => l.gateway.rss_per_session_kib));
  /** RSS added per extra session between consecutive levels (separate gateway processes, so approximate), KiB. */
  const rssMarginal = levels.slice(1).map((l, i) => {
    const prev = levels[i]!;
    return { from: prev.sessions, to: l.sessions, kib_per_session: round(((l.gateway.rss_mb - prev.gateway.rss_mb) * 1e6) / 1024 / Math.max(1, l.sessions - prev.sessions), 1) };
  });
  const result = {
    metric: 'relay overhead through the gateway (slng engine → scripted loopback upstream)',
    date: new Date().toISOString(),
    cpus: os.cpus().length,
    loadavg_1m: round(os.loadavg()[0]!, 2),
    node: process.version,
    fd_limit: fdLimit,
    setup: {
      gateway: 'child process (voxgate serve, log level warn)',
      upstream_and_clients: 'this process (one clock: performance.now())',
      chunk_ms: a.chunkMs,
      audio: '16 kHz linear16 mono, asr_en clips looped, real-time pace',
      results_per_session: 'one per 250 ms of audio (final every 1 s)',
      measure_seconds: a.seconds,
      warmup_ms: WARMUP_MS,
    },
    targets: { p99_ms_at_1000: TARGET_P99_MS_AT_1000, rss_per_session_kib: TARGET_RSS_PER_SESSION_KIB, failover_gap_p95_ms: TARGET_FAILOVER_P95_MS },
    pass: {
      p99_at_1000: at1000 ? (at1000.latency_ms.p99 ?? Infinity) <= TARGET_P99_MS_AT_1000 : null,
      rss_per_session: levels.length ? maxRss <= TARGET_RSS_PER_SESSION_KIB : null,
      failover_gap_p95: failover ? (failover.gap_ms.p95 ?? Infinity) <= TARGET_FAILOVER_P95_MS : null,
      failover_gap_p95_paced_1_25: failoverPaced ? (failoverPaced.gap_ms.p95 ?? Infinity) <= TARGET_FAILOVER_P95_MS : null,
    },
    levels,
    rss_marginal: rssMarginal,
    /** The same load with the clients connected straight to the upstream (no gateway). */
    baselines,
    /** slng backends with the default replay pace (`null`: as fast as the backend takes it; voxgate workers). */
    failover,
    /** slng backends with `replayPace: 1.25` (Deepgram's cap), for comparison. */
    failover_paced_1_25: failoverPaced,
  };
  mkdirSync(path.dirname(a.out), { recursive: true });
  writeFileSync(a.out, JSON.stringify(result, null, 2) + '\n');
  log(`\nrelay results → ${path.relative(process.cwd(), a.out)}`);
  for (const l of levels) {
    log(
      `  N=${String(l.sessions).padStart(4)}: latency p50 ${l.latency_ms.p50} ms p99 ${l.latency_ms.p99} ms (baseline p99 ${l.baseline_ms?.p99 ?? '-'}; added p99 ${l.added_p99_ms ?? '-'}), gateway CPU ${l.gateway.cpu_percent}%, RSS/session ${l.gateway.rss_per_session_kib} KiB, errors ${l.errors}`,
    );
  }
  if (at1000) log(`  p99 at 1000 streams ${at1000.latency_ms.p99} ms — target ≤ ${TARGET_P99_MS_AT_1000} ms: ${result.pass.p99_at_1000 ? 'PASS' : 'FAIL'}`);
  for (const m of rssMarginal) log(`  RSS added per session from ${m.from} to ${m.to} sessions: ${m.kib_per_session} KiB`);
  log(`  RSS per relayed session (max over levels) ${maxRss} KiB — target ≤ ${TARGET_RSS_PER_SESSION_KIB} KiB: ${result.pass.rss_per_session ? 'PASS' : 'FAIL'}`);
  for (const f of [failover, failoverPaced]) {
    if (!f) continue;
    const pass = (f.gap_ms.p95 ?? Infinity) <= TARGET_FAILOVER_P95_MS;
    log(`  failover (replayPace ${f.replay_pace}): kill → reconnect p95 ${f.reconnect_ms.p95} ms, → first replayed audio at the next upstream p95 ${f.first_audio_at_next_ms.p95} ms`);
    log(`  failover (replayPace ${f.replay_pace}) gap p95 ${f.gap_ms.p95} ms over ${f.gap_ms.count} gaps (${f.kills} kills, ${f.no_failover} without failover) — target ≤ ${TARGET_FAILOVER_P95_MS} ms: ${pass ? 'PASS' : 'FAIL'}`);
  }
}

const watchdog = setTimeout(() => {
  log('relay: watchdog (20 min) — aborting');
  process.exit(1);
}, 20 * 60 * 1000);
watchdog.unref();
main().then(
  () => process.exit(0),
  (e: Error) => {
    log(`relay: ${e.stack ?? e.message}`);
    process.exit(1);
  },
);
