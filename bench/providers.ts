/**
 * Provider-adapter benchmark (issue 11 "Benchmark"): `node dist/bench/providers.js [--sessions 12]
 * [--requests 60] [--pace 6] [--only smallest,soniox] [--out FILE]`; also a step of `npm run bench`.
 * Writes bench/results/providers.json.
 *
 * Every `test/fixtures/upstreams/<provider>/bench.json` present is benchmarked (format:
 * docs in /work/notes/provider_common.md — `{"stt": {"engine": {…instance settings except url…},
 * "fixture": "<file>.jsonl", "language"?: "en"}, "tts": {"engine": {…}, "fixture": "<file>.jsonl",
 * "voice": "<id>", "sampleRate"?: Hz, "text"?: "<request text>"}}`, either kind optional). Nothing here names a provider: a
 * descriptor added later is picked up without a code change.
 *
 * Setup — ONE clock: the fake provider (test/support/replay_fake.ts, `timeScale` 0: every reply is
 * sent as soon as the fixture's gating — the adapter's frames and `audio_s` — allows) and the client
 * run in THIS process; the gateway runs as a CHILD process (`voxgate serve`, bench/lib/server.ts), a
 * fresh one per provider (so a provider whose engine fails to start is reported and the others still
 * run, and its CPU is read alone from /proc/PID). Its config has one catalogue model per kind whose
 * backend is an instance `{…descriptor engine, url: <fake>}`. The fake records `performance.now()`
 * just before sending each provider message (`onSend`); the client reads `performance.now()` on
 * receipt. Sessions and requests run one at a time, so the provider message that caused a client
 * message is the fake's latest send before the client received it.
 *
 * Per provider:
 * - STT (`--sessions` sequential unified sessions, partials and word timestamps on): real speech
 *   (../shared/data/asr_en, looped) as 20 ms linear16 frames at `--pace` × real time, as much as the
 *   fixture gates on plus 0.3 s, then `finalize` (wait ≤ 1 s for its final), then `close` (wait ≤ 1.5 s). `stt.result_ms`: for every `partial_transcript` /
 *   `final_transcript`, client receipt − the fake's latest send before it; `stt.first_result_ms`: the
 *   same for each session's first result (what the issue calls first-result latency added by the
 *   adapter). Both include the two loopback hops (fake → gateway → client) and the gateway's whole
 *   pipeline (adapter, session, dialect): an upper bound of the adapter's share; `loopback_hop_ms` is
 *   one WebSocket hop measured the same way in this harness, for reference.
 *   Only results with text count (an empty final may be the gateway's own, e.g. a finalize answered
 *   by timeout). With `timeScale` 0 replies gated at the same point go out back to back; a client
 *   message is then measured from the latest of them (slightly optimistic).
 * - TTS (`--requests` sequential requests, each on a fresh unified session with `pacing: false`;
 *   text: the descriptor's `tts.text`, else the literal `text`/`transcript`/`input` of the fixture's
 *   first `in` line, else "Hello from the provider benchmark."): `text` + `flush`, wait for
 *   `flushed`. `tts.first_audio_ms` = the first audio frame of the segment at the client − the fake's
 *   first send of an audio-carrying line (`$pcm…`/`$binary` in the fixture) after the request (the
 *   provider's first audio message; fixtures without such markers: the latest send before).
 * - CPU: gateway utime+stime (/proc/PID/stat) over each phase, per session (`cpu_ms_per_session`),
 *   and as percent of one core per real-time stream (`cpu_percent_per_realtime_stream` = CPU seconds /
 *   audio seconds relayed × 100: what one live session costs); TTS per request.
 * A phase stops after 3 failed sessions/requests in a row (`stopped_early`): a fixture that does not
 * fit this client (e.g. one that replays once but whose adapter reuses the connection) is reported
 * with its `fixture_violations` instead of stalling the run.
 * `other_processes_cpu_percent` (everything on the box but the gateway and this process, % of one core)
 * says how disturbed a phase was: on a shared 2-core box the p99 tails are scheduling delays.
 * Targets (issue 11): result / first-audio p50 and p99 ≤ 1 ms. Exit code 0 even when missed; 1 when
 * nothing could run.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket, { WebSocketServer } from 'ws';
import { loadAsrEnClips, repoRoot } from './lib/clips.js';
import { externalCpuPercent, ServerProcess, type ProcSample } from './lib/server.js';
import { percentile, round } from './lib/stats.js';
import { loadFixture, ReplayFake, type Fixture } from '../test/support/replay_fake.js';

const log = (s: string) => process.stderr.write(`${s}\n`);
const vlog = (s: string) => (process.env.BENCH_VERBOSE ? log(s) : undefined);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** Target of issue 11 for the adapter's added latency (p50 and p99), ms. */
const TARGET_MS = 1;
/** 16 kHz linear16 mono. */
const BYTES_PER_MS = 32;
const FRAME_MS = 20;

interface Args {
  sessions: number;
  requests: number;
  pace: number;
  only: string[] | null;
  out: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { sessions: 12, requests: 60, pace: 6, only: null, out: path.join(repoRoot(), 'bench/results/providers.json') };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${k} needs a value`);
      return x;
    };
    if (k === '--sessions') a.sessions = Number(v());
    else if (k === '--requests') a.requests = Number(v());
    else if (k === '--pace') a.pace = Number(v());
    else if (k === '--only') a.only = v().split(',');
    else if (k === '--out') a.out = path.resolve(v());
    else throw new Error(`unknown argument ${k}`);
  }
  if (!(a.sessions >= 1 && a.requests >= 1 && a.pace > 0)) throw new Error('--sessions/--requests ≥ 1, --pace > 0');
  return a;
}

/** A provider's bench.json. */
interface Descriptor {
  stt?: { engine: Record<string, unknown>; fixture: string; language?: string };
  tts?: { engine: Record<string, unknown>; fixture: string; voice: string; sampleRate?: number; text?: string };
}

/** Text of every benchmark TTS request unless the descriptor's `tts.text` sets one. */
const DEFAULT_TTS_TEXT = 'Hello from the provider benchmark.';
/** A phase stops after this many failed sessions/requests in a row (a fixture that does not fit the bench's client must not stall it). */
const MAX_CONSECUTIVE_ERRORS = 3;

/** Every descriptor under test/fixtures/upstreams/, by provider folder name. */
function descriptors(only: string[] | null): { provider: string; dir: string; d: Descriptor }[] {
  const root = path.join(repoRoot(), 'test', 'fixtures', 'upstreams');
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(path.join(root, e.name, 'bench.json')))
    .filter((e) => !only || only.includes(e.name))
    .map((e) => ({ provider: e.name, dir: path.join(root, e.name), d: JSON.parse(readFileSync(path.join(root, e.name, 'bench.json'), 'utf8')) as Descriptor }))
    .sort((a, b) => a.provider.localeCompare(b.provider));
}

/**
 * The request text a TTS fixture expects: the first literal (not `$…`) string under `text`,
 * `transcript` or `input` in its `in` lines, trimmed; null when there is none.
 */
function fixtureText(f: Fixture): string | null {
  for (const l of f.lines) {
    if (l.dir !== 'in' || typeof l.data !== 'object' || l.data === null) continue;
    for (const k of ['text', 'transcript', 'input']) {
      const v = (l.data as Record<string, unknown>)[k];
      if (typeof v === 'string' && v.trim() && !v.startsWith('$')) return v.trim();
    }
  }
  return null;
}

/** Latest audio second any line of the fixture waits for (0 when none). */
function gatedSeconds(f: Fixture): number {
  return f.lines.reduce((m, l) => Math.max(m, l.audio_s ?? 0), 0);
}

/** p50/p99/max/n of `ms`, rounded to µs. */
function dist(ms: number[]): { n: number; p50_ms: number | null; p99_ms: number | null; max_ms: number | null } {
  return { n: ms.length, p50_ms: round(percentile(ms, 50), 3), p99_ms: round(percentile(ms, 99), 3), max_ms: ms.length ? round(Math.max(...ms), 3) : null };
}

/** Send log of one fake: `performance.now()` of every provider message, in order. */
class SendLog {
  readonly at: number[] = [];
  /** Sends of lines that carry audio (`$pcm…`/`$binary` in the fixture line). */
  readonly audioAt: number[] = [];
  /** The first audio send after `t`, or null. */
  firstAudioAfter(t: number): number | null {
    for (const x of this.audioAt) if (x >= t) return x;
    return null;
  }
  /** The latest send at or before `t`, or null. */
  latestBefore(t: number): number | null {
    for (let i = this.at.length - 1; i >= 0; i--) if (this.at[i]! <= t) return this.at[i]!;
    return null;
  }
}

/** One WebSocket hop in this harness: server sends a stamp, client reads it; p50/p99 over `n`. */
async function loopbackHop(n: number): Promise<ReturnType<typeof dist>> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const port = (wss.address() as { port: number }).port;
  const samples: number[] = [];
  try {
    const server = new Promise<WebSocket>((r) => wss.once('connection', (s) => r(s)));
    const c = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
    await new Promise((r) => c.once('open', r));
    const s = await server;
    for (let i = 0; i < n; i++) {
      const got = new Promise<number>((r) => c.once('message', () => r(performance.now())));
      const t0 = performance.now();
      s.send(JSON.stringify({ i, t0 }));
      samples.push((await got) - t0);
      await sleep(2);
    }
    c.close();
  } finally {
    wss.close();
  }
  return dist(samples);
}

function cpuSeconds(a: ProcSample, b: ProcSample): number {
  return b.cpuSeconds - a.cpuSeconds;
}

/** A unified client socket with JSON frames recorded (receipt time) and binary frames timed. */
function open(url: string, key: string): Promise<{ ws: WebSocket; msgs: { m: Record<string, unknown>; at: number }[]; bins: number[]; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${key}` }, perMessageDeflate: false });
    const msgs: { m: Record<string, unknown>; at: number }[] = [];
    const bins: number[] = [];
    ws.on('message', (d, isBinary) => {
      const at = performance.now();
      if (isBinary) bins.push(at);
      else msgs.push({ m: JSON.parse(String(d)) as Record<string, unknown>, at });
    });
    const closed = new Promise<void>((r) => ws.once('close', () => r()));
    ws.once('open', () => resolve({ ws, msgs, bins, closed }));
    ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

async function waitFor(pred: () => boolean, ms: number): Promise<boolean> {
  const t0 = performance.now();
  while (!pred()) {
    if (performance.now() - t0 > ms) return false;
    await sleep(2);
  }
  return true;
}

/** Results of one provider. */
interface ProviderResult {
  stt?: Record<string, unknown>;
  tts?: Record<string, unknown>;
  error?: string;
}

async function benchProvider(provider: string, dir: string, d: Descriptor, a: Args, speech: Buffer): Promise<ProviderResult> {
  const out: ProviderResult = {};
  const sttLog = new SendLog();
  const ttsLog = new SendLog();
  const sttFx = d.stt ? loadFixture(path.join(dir, d.stt.fixture)) : null;
  const ttsFx = d.tts ? loadFixture(path.join(dir, d.tts.fixture)) : null;
  const sttFake = sttFx ? new ReplayFake({ fixtures: [sttFx], onSend: (e) => sttLog.at.push(e.at) }) : null;
  const ttsFake = ttsFx
    ? new ReplayFake({
        fixtures: [ttsFx],
        onSend: (e) => {
          ttsLog.at.push(e.at);
          if (/"\$(pcm|binary)/.test(JSON.stringify(e.line.data))) ttsLog.audioAt.push(e.at);
        },
      })
    : null;
  const engines: Record<string, unknown> = {};
  const cfg: Record<string, unknown> = { engines, http: { maxConnectionsPerIp: 0 }, limits: { idleTimeoutSeconds: 60 } };
  for (const e of [d.stt?.engine, d.tts?.engine]) {
    const env = e?.apiKeyEnv;
    if (typeof env === 'string' && !process.env[env]) process.env[env] = `bench-${provider}-key`; // the child inherits it; the fakes accept any key
  }
  if (sttFake) {
    engines[`bench-${provider}-stt`] = { ...d.stt!.engine, url: (await sttFake.start()).ws };
    cfg.stt = { models: [{ code: `bench/${provider}:stt`, engine: `bench-${provider}-stt`, dialect: 'unified' }] };
  }
  if (ttsFake) {
    engines[`bench-${provider}-tts`] = { ...d.tts!.engine, url: (await ttsFake.start()).ws };
    cfg.tts = { models: [{ code: `bench/${provider}:tts`, engine: `bench-${provider}-tts`, dialect: 'unified', audio: 'binary' }] };
  }
  let server: ServerProcess | null = null;
  try {
    vlog('  starting gateway');
    server = await ServerProcess.start({ root: repoRoot(), config: cfg, timeoutMs: 30000 });
    vlog('  gateway up');
    if (sttFake && sttFx) out.stt = await benchStt(server, provider, d.stt!, sttFx, sttFake, sttLog, a, speech);
    if (ttsFake && ttsFx) out.tts = await benchTts(server, provider, d.tts!, ttsFx, ttsFake, ttsLog, a);
  } catch (err) {
    out.error = err instanceof Error ? err.message.slice(0, 2000) : String(err);
  } finally {
    await server?.stop();
    await sttFake?.close();
    await ttsFake?.close();
  }
  return out;
}

async function benchStt(server: ServerProcess, provider: string, d: NonNullable<Descriptor['stt']>, fx: Fixture, fake: ReplayFake, sends: SendLog, a: Args, speech: Buffer): Promise<Record<string, unknown>> {
  const seconds = gatedSeconds(fx) + 0.3;
  const bytes = Math.round(seconds * 1000) * BYTES_PER_MS;
  const audio = Buffer.alloc(bytes);
  for (let o = 0; o < bytes; o += speech.length) speech.copy(audio, o, 0, Math.min(speech.length, bytes - o));
  const language = d.language ?? (Array.isArray(d.engine.languages) ? String(d.engine.languages[0]) : 'en');
  const all: number[] = [];
  const first: number[] = [];
  let errors = 0;
  const errorSamples: string[] = [];
  let audioSeconds = 0;
  let inARow = 0;
  let stoppedEarly = false;
  let done = 0;
  const c0 = server.sample();
  for (let i = 0; i < a.sessions; i++) {
    vlog(`  stt session ${i}`);
    const c = await open(`${server.wsUrl}/v1/stt/bench/${provider}:stt`, server.key);
    c.ws.send(JSON.stringify({ type: 'init', config: { language, sample_rate: 16000, encoding: 'linear16', enable_partial_transcripts: true, enable_word_timestamps: true } }));
    done++;
    if (!(await waitFor(() => c.msgs.some((m) => m.m.type === 'ready' || m.m.type === 'error'), 10000)) || !c.msgs.some((m) => m.m.type === 'ready')) {
      errors++;
      errorSamples.push(JSON.stringify(c.msgs.map((m) => m.m)).slice(0, 300));
      c.ws.terminate();
      if (++inARow >= MAX_CONSECUTIVE_ERRORS) {
        stoppedEarly = true;
        break;
      }
      continue;
    }
    const t0 = performance.now();
    const frame = FRAME_MS * BYTES_PER_MS;
    for (let k = 0, o = 0; o < audio.length; k++, o += frame) {
      c.ws.send(audio.subarray(o, Math.min(audio.length, o + frame)));
      const due = t0 + ((k + 1) * FRAME_MS) / a.pace;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
    }
    audioSeconds += seconds;
    // Let the last gated replies arrive; then finalize (a voice agent's end of turn), wait ≤ 1 s for
    // its final, close, and wait ≤ 1.5 s for the session to end.
    const settle = sends.at.length;
    await waitFor(() => sends.at.length > settle, 150);
    c.ws.send(JSON.stringify({ type: 'finalize' }));
    await waitFor(() => c.msgs.some((m) => m.m.type === 'final_transcript' && m.m.from_finalize === true), 1000);
    c.ws.send(JSON.stringify({ type: 'close' }));
    await Promise.race([c.closed, sleep(1500)]);
    c.ws.terminate();
    let firstDone = false;
    let failed = false;
    for (const m of c.msgs) {
      if (m.m.type === 'error') {
        failed = true;
        errorSamples.push(JSON.stringify(m.m).slice(0, 300));
      }
      // Results with text only: an empty final can be the gateway's own (a finalize answered by timeout), not caused by a provider message.
      if ((m.m.type !== 'partial_transcript' && m.m.type !== 'final_transcript') || !m.m.transcript) continue;
      const s = sends.latestBefore(m.at);
      if (s === null) continue;
      all.push(m.at - s);
      if (!firstDone) {
        first.push(m.at - s);
        firstDone = true;
      }
    }
    if (failed || !firstDone) {
      errors++;
      if (!firstDone && !failed) errorSamples.push('no result');
      if (++inARow >= MAX_CONSECUTIVE_ERRORS) {
        stoppedEarly = true;
        break;
      }
    } else inARow = 0;
  }
  const c1 = server.sample();
  const cpu = cpuSeconds(c0, c1);
  return {
    sessions: done,
    ...(stoppedEarly ? { stopped_early: `${MAX_CONSECUTIVE_ERRORS} failed sessions in a row` } : {}),
    pace_x_realtime: a.pace,
    audio_seconds_per_session: round(seconds, 2),
    first_result_ms: dist(first),
    result_ms: dist(all),
    errors,
    ...(errorSamples.length ? { error_samples: errorSamples.slice(0, 3) } : {}),
    fixture_violations: fake.violations().slice(0, 5),
    cpu_ms_per_session: round((cpu * 1000) / Math.max(1, done), 2),
    cpu_percent_per_realtime_stream: round((cpu / audioSeconds) * 100, 3),
    other_processes_cpu_percent: round(externalCpuPercent(c0, c1), 0),
  };
}

async function benchTts(server: ServerProcess, provider: string, d: NonNullable<Descriptor['tts']>, fx: Fixture, fake: ReplayFake, sends: SendLog, a: Args): Promise<Record<string, unknown>> {
  const text = d.text ?? fixtureText(fx) ?? DEFAULT_TTS_TEXT;
  const firstAudio: number[] = [];
  let errors = 0;
  let inARow = 0;
  let stoppedEarly = false;
  let done = 0;
  const errorSamples: string[] = [];
  const c0 = server.sample();
  for (let i = 0; i < a.requests; i++) {
    vlog(`  tts request ${i}`);
    done++;
    // A fresh client session per request: an engine that keeps one upstream socket per session
    // then gets a fresh fixture replay for each request.
    const c = await open(`${server.wsUrl}/v1/tts/bench/${provider}:tts`, server.key);
    let failure: string | null = null;
    c.ws.send(JSON.stringify({ type: 'init', voice: d.voice, config: { encoding: 'linear16', pacing: false, ...(d.sampleRate ? { sample_rate: d.sampleRate } : {}) } }));
    if (!(await waitFor(() => c.msgs.some((m) => m.m.type === 'ready' || m.m.type === 'error'), 10000)) || !c.msgs.some((m) => m.m.type === 'ready')) {
      failure = `no ready: ${JSON.stringify(c.msgs.map((m) => m.m)).slice(0, 300)}`;
    } else {
      const binsBefore = c.bins.length;
      const msgsBefore = c.msgs.length;
      const sentAt = performance.now();
      c.ws.send(JSON.stringify({ type: 'text', text, flush: true }));
      const ok = await waitFor(() => c.msgs.slice(msgsBefore).some((m) => m.m.type === 'flushed' || m.m.type === 'error'), 8000);
      const err = c.msgs.slice(msgsBefore).find((m) => m.m.type === 'error');
      if (!ok || err) failure = err ? JSON.stringify(err.m).slice(0, 300) : 'no flushed within 8 s';
      else {
        const at = c.bins[binsBefore];
        // The provider's first audio message of this request; fixtures without audio markers: the latest send before.
        const s = at === undefined ? null : sends.audioAt.length > 0 ? sends.firstAudioAfter(sentAt) : sends.latestBefore(at);
        if (s !== null && at !== undefined) firstAudio.push(at - s);
        else failure = 'no audio';
      }
    }
    c.ws.close();
    await Promise.race([c.closed, sleep(1500)]);
    c.ws.terminate();
    if (failure) {
      errors++;
      errorSamples.push(failure);
      if (++inARow >= MAX_CONSECUTIVE_ERRORS) {
        stoppedEarly = true;
        break;
      }
    } else inARow = 0;
  }
  const c1 = server.sample();
  return {
    requests: done,
    ...(stoppedEarly ? { stopped_early: `${MAX_CONSECUTIVE_ERRORS} failed requests in a row` } : {}),
    text,
    first_audio_ms: dist(firstAudio),
    errors,
    ...(errorSamples.length ? { error_samples: errorSamples.slice(0, 3) } : {}),
    fixture_violations: fake.violations().slice(0, 5),
    cpu_ms_per_request: round((cpuSeconds(c0, c1) * 1000) / Math.max(1, done), 2),
    other_processes_cpu_percent: round(externalCpuPercent(c0, c1), 0),
  };
}

async function main(): Promise<number> {
  const a = parseArgs(process.argv.slice(2));
  const list = descriptors(a.only);
  if (list.length === 0) {
    log('providers bench: no test/fixtures/upstreams/*/bench.json found');
    return 1;
  }
  const clips = await loadAsrEnClips();
  const speech = Buffer.concat(clips.slice(0, 3).map((c) => c.bytes));
  const t0 = performance.now();
  const hop = await loopbackHop(200);
  const providers: Record<string, ProviderResult> = {};
  for (const { provider, dir, d } of list) {
    log(`providers bench: ${provider}…`);
    providers[provider] = await benchProvider(provider, dir, d, a, speech);
    const p = providers[provider]!;
    if (p.error) log(`  error: ${p.error.split('\n')[0]}`);
  }
  const verdict = (x: unknown): boolean | null => {
    const v = x as { p50_ms: number | null; p99_ms: number | null } | undefined;
    return v && v.p50_ms !== null && v.p99_ms !== null ? v.p50_ms <= TARGET_MS && v.p99_ms <= TARGET_MS : null;
  };
  const targets = Object.fromEntries(
    Object.entries(providers).map(([k, p]) => [k, { stt_first_result_le_1ms: verdict(p.stt?.first_result_ms), stt_result_le_1ms: verdict(p.stt?.result_ms), tts_first_audio_le_1ms: verdict(p.tts?.first_audio_ms) }]),
  );
  const result = {
    generated_at: new Date().toISOString(),
    box: { cpus: os.cpus().length, node: process.version },
    setup: {
      gateway: 'child process (voxgate serve), one per provider; fake provider and client in the bench process (one clock)',
      fake: 'test/support/replay_fake.ts, timeScale 0 (replies gated on the adapter frames and audio_s only)',
      measured: 'client receipt − the fake\'s latest send before it (includes two loopback hops and the whole gateway pipeline)',
    },
    loopback_hop_ms: hop,
    providers,
    targets: { p50_p99_ms: TARGET_MS, met: targets },
    wall_seconds: round((performance.now() - t0) / 1000, 1),
  };
  mkdirSync(path.dirname(a.out), { recursive: true });
  writeFileSync(a.out, JSON.stringify(result, null, 2) + '\n');
  log(`\nprovider   | STT first result p50/p99 ms | STT all results p50/p99 ms | TTS first audio p50/p99 ms | CPU ms/STT session | CPU %/RT stream | CPU ms/TTS req`);
  for (const [k, p] of Object.entries(providers)) {
    const s = p.stt as { first_result_ms?: { p50_ms: number; p99_ms: number }; result_ms?: { p50_ms: number; p99_ms: number }; cpu_ms_per_session?: number; cpu_percent_per_realtime_stream?: number } | undefined;
    const t = p.tts as { first_audio_ms?: { p50_ms: number; p99_ms: number }; cpu_ms_per_request?: number } | undefined;
    const pp = (x?: { p50_ms: number; p99_ms: number }) => (x ? `${x.p50_ms} / ${x.p99_ms}` : '—');
    log(`${k.padEnd(10)} | ${pp(s?.first_result_ms).padEnd(27)} | ${pp(s?.result_ms).padEnd(26)} | ${pp(t?.first_audio_ms).padEnd(26)} | ${String(s?.cpu_ms_per_session ?? '—').padEnd(18)} | ${String(s?.cpu_percent_per_realtime_stream ?? '—').padEnd(15)} | ${t?.cpu_ms_per_request ?? '—'}${p.error ? `  (error)` : ''}`);
  }
  log(`loopback hop p50/p99 ms: ${hop.p50_ms} / ${hop.p99_ms}; wall ${result.wall_seconds} s → ${a.out}`);
  return Object.values(providers).every((p) => p.error) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    log(`providers bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
