/**
 * Hardening benchmark (issue 14 items 6–7): `node dist/bench/hardening.js [--sessions 10] [--rounds 2]
 * [--idle-wait 25] [--out FILE]`.
 *
 * Runs the gateway as a child process (bin/voxgate.cjs serve, default config: minIdleDecoders 1,
 * maxDecoders 12) and, per round, starts a burst of `--sessions` Ogg/Opus STT sessions at once
 * (`local/pocketsphinx:en`, `encoding: ogg-opus`, so each needs an ffmpeg decoder and, beyond the
 * warm pool, a cold PocketSphinx decoder), streams a real clip at real-time pace to each, closes
 * them, then leaves the server idle. Measures:
 *
 *  1. `event_loop_lag_p99_ms` / `_max_ms` — the gateway's own event-loop delay during the burst,
 *     from its `/metrics` (`voxgate_nodejs_eventloop_lag_p99_seconds`, prom-client's
 *     monitorEventLoopDelay; the histogram restarts at every scrape, so one scrape just before the
 *     burst and one right after it bound the window). Target p99 ≤ 50 ms.
 *  2. `healthz_ms` — `/healthz` round trips polled every 25 ms during the burst (the outside view).
 *  3. `ready_ms` — connect + `init` → `ready` per session (ffmpeg started, decoder acquired; cold
 *     decoders when the burst exceeds the warm pool).
 *  4. `rss_mb` — fresh (before any session), peak during the burst, right after it, and idle
 *     (`--idle-wait` s later, after the pool's quiet-period shrink and heap trim). Target: idle
 *     after a burst ≤ fresh + 100 MB.
 *  5. `engine_children_of_gateway` — ffmpeg/flite/espeak-ng processes whose parent is the gateway
 *     itself during the burst (must be 0: engines run in the spawner helpers).
 *
 * Writes bench/results/hardening.json and prints a summary with PASS/FAIL; exits 0 either way (1 only
 * when the benchmark itself could not run).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot, sharedDataDir } from './lib/clips.js';
import { BenchSession } from './lib/session.js';
import { ProcSampler, ServerProcess } from './lib/server.js';
import { percentile, round, summarizeMs, type MsSummary } from './lib/stats.js';

const MODEL = 'local/pocketsphinx:en';
/** The clip streamed by every session (≈ 3 s of speech). */
const CLIP = 'asr_en/en_cmu_goforward.wav';
const LAG_P99_TARGET_MS = 50;
const IDLE_RSS_OVER_FRESH_TARGET_MB = 100;
const WATCHDOG_MS = 15 * 60 * 1000;

interface Args {
  sessions: number;
  rounds: number;
  idleWaitS: number;
  out: string | null;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { sessions: 10, rounds: 2, idleWaitS: 25, out: null };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    if (argv[i] === '--sessions') (a.sessions = Number(v)), i++;
    else if (argv[i] === '--rounds') (a.rounds = Number(v)), i++;
    else if (argv[i] === '--idle-wait') (a.idleWaitS = Number(v)), i++;
    else if (argv[i] === '--out') (a.out = v ?? null), i++;
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  return a;
}

/** One burst's measurements. */
interface RoundResult {
  sessions: number;
  errors: string[];
  ready_ms: MsSummary;
  event_loop_lag_p99_ms: number | null;
  event_loop_lag_max_ms: number | null;
  healthz_ms: MsSummary & { p99_ms: number | null };
  rss_mb: { before: number; peak: number; after_burst: number; idle: number };
  /** Seconds after the burst at which `rss_mb.idle` was read. */
  idle_after_s: number;
  engine_children_of_gateway: number;
  ffmpeg_in_helpers_max: number;
}

const mb = (bytes: number): number => round(bytes / 1024 / 1024, 0)!;

/** Parent pid and command name of every process. */
function procRows(): { pid: number; ppid: number; comm: string }[] {
  const out: { pid: number; ppid: number; comm: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const st = readFileSync(`/proc/${name}/stat`, 'utf8');
      out.push({ pid: Number(name), ppid: Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]), comm: st.slice(st.indexOf('(') + 1, st.lastIndexOf(')')) });
    } catch {
      /* gone */
    }
  }
  return out;
}

/** The gateway's event-loop delay since the previous scrape, ms (p99, max), from /metrics. */
async function scrapeLag(server: ServerProcess): Promise<{ p99: number | null; max: number | null }> {
  try {
    const r = await fetch(`${server.httpUrl}/metrics`, { headers: { Authorization: `Bearer ${server.key}` }, signal: AbortSignal.timeout(5000) });
    const text = await r.text();
    const read = (name: string): number | null => {
      const m = new RegExp(`^${name} ([0-9.eE+-]+)`, 'm').exec(text);
      return m ? round(Number(m[1]) * 1000, 1) : null;
    };
    return { p99: read('voxgate_nodejs_eventloop_lag_p99_seconds'), max: read('voxgate_nodejs_eventloop_lag_max_seconds') };
  } catch {
    return { p99: null, max: null };
  }
}

/** Stream Ogg bytes at the real-time pace of `seconds` of audio, in 20 ms slices. */
async function streamOggRealtime(s: BenchSession, bytes: Buffer, seconds: number): Promise<void> {
  const slices = Math.max(1, Math.round(seconds / 0.02));
  const t0 = performance.now();
  for (let k = 0; k < slices; k++) {
    const due = t0 + (k + 1) * 20;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (!s.open) return;
    s.ws.send(bytes.subarray(Math.floor((k * bytes.length) / slices), Math.floor(((k + 1) * bytes.length) / slices)));
  }
}

async function burst(server: ServerProcess, ogg: Buffer, seconds: number, n: number, idleWaitS: number): Promise<RoundResult> {
  const errors: string[] = [];
  const before = server.sample().rssBytes;
  await scrapeLag(server); // restarts the gateway's lag histogram
  const sampler = new ProcSampler(server, 100).start();
  const health: number[] = [];
  let polling = true;
  const poller = (async () => {
    while (polling) {
      const t = performance.now();
      try {
        await fetch(`${server.httpUrl}/healthz`, { signal: AbortSignal.timeout(5000) }).then((r) => r.arrayBuffer());
        health.push(performance.now() - t);
      } catch (err) {
        errors.push(`healthz: ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  let engineChildren = 0;
  let ffmpegMax = 0;
  const watch = setInterval(() => {
    const rows = procRows();
    const helpers = new Set(rows.filter((r) => r.ppid === server.pid && r.comm === 'node').map((r) => r.pid));
    engineChildren = Math.max(engineChildren, rows.filter((r) => r.ppid === server.pid && r.comm !== 'node' && r.comm !== 'setpriv').length);
    ffmpegMax = Math.max(ffmpegMax, rows.filter((r) => r.comm === 'ffmpeg' && helpers.has(r.ppid)).length);
  }, 100);
  const ready: number[] = [];
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const t = performance.now();
      let s: BenchSession;
      try {
        s = await BenchSession.open({ wsUrl: server.wsUrl, model: MODEL, key: server.key, init: { encoding: 'ogg-opus', sample_rate: 48000, language: 'en' }, timeoutMs: 30_000 });
      } catch (err) {
        errors.push(`session ${i}: ${(err as Error).message}`);
        return;
      }
      ready.push(performance.now() - t);
      await streamOggRealtime(s, ogg, seconds);
      const c = await s.closeAndWait(30_000);
      if (c.code !== 1000) errors.push(`session ${i}: closed ${c.code} ${c.reason}`);
      for (const e of s.errors()) errors.push(`session ${i}: ${e.code} ${e.message}`);
    }),
  );
  const lag = await scrapeLag(server);
  polling = false;
  await poller;
  clearInterval(watch);
  const samples = sampler.stop();
  const afterBurst = server.sample().rssBytes;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, idleWaitS * 1000));
  const idle = server.sample().rssBytes;
  return {
    sessions: n,
    errors,
    ready_ms: summarizeMs(ready),
    event_loop_lag_p99_ms: lag.p99,
    event_loop_lag_max_ms: lag.max,
    healthz_ms: { ...summarizeMs(health), p99_ms: round(percentile(health, 99)) },
    rss_mb: { before: mb(before), peak: mb(Math.max(...samples.map((x) => x.rssBytes))), after_burst: mb(afterBurst), idle: mb(idle) },
    idle_after_s: round((performance.now() - t0) / 1000, 1)!,
    engine_children_of_gateway: engineChildren,
    ffmpeg_in_helpers_max: ffmpegMax,
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const root = repoRoot();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'voxgate-hardening-'));
  const oggFile = path.join(tmp, 'clip.opus');
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-i', path.join(sharedDataDir(), CLIP), '-c:a', 'libopus', '-b:a', '24k', '-page_duration', '20000', '-f', 'ogg', oggFile]);
  const ogg = readFileSync(oggFile);
  const seconds = Number(execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', oggFile], { encoding: 'utf8' }).trim());
  rmSync(tmp, { recursive: true, force: true });

  const server = await ServerProcess.start({ root, config: {} });
  const rounds: RoundResult[] = [];
  let fresh: number;
  try {
    await new Promise((r) => setTimeout(r, 3000));
    fresh = server.sample().rssBytes;
    for (let i = 0; i < args.rounds; i++) {
      process.stderr.write(`hardening: round ${i + 1}/${args.rounds}: burst of ${args.sessions} ogg-opus sessions, then ${args.idleWaitS} s idle\n`);
      rounds.push(await burst(server, ogg, seconds, args.sessions, args.idleWaitS));
    }
  } finally {
    await server.stop();
  }
  const worstLag = Math.max(...rounds.map((r) => r.event_loop_lag_p99_ms ?? Infinity));
  const worstIdle = Math.max(...rounds.map((r) => r.rss_mb.idle));
  const results = {
    date: new Date().toISOString(),
    host: { cpus: os.cpus().length, node: process.version, loadavg: os.loadavg().map((x) => round(x, 2)) },
    clip: { file: CLIP, seconds: round(seconds, 2), ogg_bytes: ogg.length },
    rss_fresh_mb: mb(fresh),
    rounds,
    targets: {
      event_loop_lag_p99_ms: { target: LAG_P99_TARGET_MS, worst: worstLag, pass: worstLag <= LAG_P99_TARGET_MS },
      idle_rss_after_burst_mb: { target: mb(fresh) + IDLE_RSS_OVER_FRESH_TARGET_MB, worst: worstIdle, pass: worstIdle <= mb(fresh) + IDLE_RSS_OVER_FRESH_TARGET_MB },
      engine_children_of_gateway: { target: 0, worst: Math.max(...rounds.map((r) => r.engine_children_of_gateway)), pass: rounds.every((r) => r.engine_children_of_gateway === 0) },
    },
  };
  const outFile = args.out ? path.resolve(args.out) : path.join(root, 'bench/results/hardening.json');
  mkdirSync(path.dirname(outFile), { recursive: true });
  writeFileSync(outFile, JSON.stringify(results, null, 2) + '\n');
  const pf = (b: boolean) => (b ? 'PASS' : 'FAIL');
  process.stdout.write(`\nhardening bench (${args.sessions} ogg-opus session starts per burst, ${args.rounds} rounds) → ${outFile}\n`);
  process.stdout.write(`  fresh RSS ${mb(fresh)} MB\n`);
  rounds.forEach((r, i) => {
    process.stdout.write(
      `  round ${i + 1}: lag p99 ${r.event_loop_lag_p99_ms} ms (max ${r.event_loop_lag_max_ms}); healthz p99 ${r.healthz_ms.p99_ms} ms; ready p50/max ${r.ready_ms.p50_ms}/${r.ready_ms.max_ms} ms; ` +
        `RSS ${r.rss_mb.before} → peak ${r.rss_mb.peak} → ${r.rss_mb.after_burst} → idle ${r.rss_mb.idle} MB (+${r.idle_after_s} s); engine children of gateway ${r.engine_children_of_gateway}; errors ${r.errors.length}\n`,
    );
    for (const e of r.errors.slice(0, 5)) process.stdout.write(`    ${e}\n`);
  });
  for (const [k, t] of Object.entries(results.targets)) process.stdout.write(`  ${pf(t.pass)}  ${k}: ${t.worst} (target ${k === 'engine_children_of_gateway' ? '=' : '≤'} ${t.target})\n`);
}

const watchdog = setTimeout(() => {
  process.stderr.write('hardening bench: watchdog expired\n');
  process.exit(1);
}, WATCHDOG_MS);
watchdog.unref();
main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`hardening bench failed: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
