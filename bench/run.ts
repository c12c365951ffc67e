/**
 * voxgate benchmark: `npm run bench` (or `node dist/bench/run.js [--quick] [--levels 1,2,4] [--out FILE]`).
 *
 * Runs the gateway as a child process (temp data dir, temp config with maxDecoders 16) and streams
 * the `asr_en` clips of ../shared/data to `local/pocketsphinx:en`, measuring:
 *
 *  1. `rtf` — wall time / audio seconds per stream, sending a whole clip as fast as the socket drains
 *     (then `close`, waiting for the 1000 close).
 *  2. `first_partial` — speech onset (`words[0].start`) → first non-empty partial, ms, real-time pace.
 *  3. `eos_to_final` — end of the last word → the `speech_final` final, ms, default endpointing (300 ms).
 *  4. `finalize_to_final` — `finalize` sent right after the last speech sample (endpointing off) →
 *     the `from_finalize` final, ms.
 *  5. `max_realtime_streams` — ramp 1…16 concurrent real-time streams; the largest N whose
 *     eos→final p95 ≤ 1000 ms with no errors (server RSS and CPU per level).
 *  6. RSS — idle (pool warm, before any session) and per active stream.
 *  7. WER over every asr_en clip (reported, not gated).
 *  8. Pre-recorded HTTP and compressed audio (bench/http.ts, its own server processes): throughput
 *     on the longest clips, peak RSS on a 10-minute file, opus/mp3 decoder latency; under `http`.
 *
 * Real-time pace = microphone emulation: 20 ms chunks, chunk k sent at t0 + (k+1)·20 ms against
 * absolute time; each clip is followed by 1.5 s of digital silence. Writes bench/results/latest.json
 * and prints a summary with PASS/FAIL next to the targets; exits 0 either way (1 only when the
 * benchmark itself could not run).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { mergeLatencies, utteranceLatencies, type UtteranceLatencies } from './lib/analyze.js';
import { loadAsrEnClips, pick, repoRoot, sharedDataDir, silence, trimTrailingSilence, type Clip } from './lib/clips.js';
import { BenchSession } from './lib/session.js';
import { cpuPercent, externalCpuPercent, ProcSampler, ServerProcess, type ProcSample } from './lib/server.js';
import { mean, normalizeWords, round, summarizeMs, wordErrors, type MsSummary } from './lib/stats.js';
import { runHttpBench, type HttpBenchResults } from './http.js';

/** Model under test. */
const MODEL = 'local/pocketsphinx:en';
/** Default endpointing used for eos→final, ms. */
const ENDPOINTING_MS = 300;
/** Real-time chunk length, ms. */
const CHUNK_MS = 20;
/** Digital silence after each clip, ms. */
const TRAILING_SILENCE_MS = 1500;
/** A ramp level passes when its eos→final p95 is at most this, ms (and it had no errors). */
const REALTIME_P95_LIMIT_MS = 1000;
/** Other processes' CPU (percent of one core) above which a phase counts as disturbed. */
const DISTURBED_CPU_PERCENT = 25;
/** Hard bound on the whole benchmark, ms. */
const WATCHDOG_MS = 30 * 60 * 1000;

/** Server config file used for the run. */
const SERVER_CONFIG = { engines: { pocketsphinx: { minIdleDecoders: 1, maxDecoders: 16 } } };

/** What a run does (full or `--quick`). */
interface Plan {
  quick: boolean;
  rtfClips: string[];
  latencyClips: string[];
  finalizeClips: string[];
  finalizeReps: number;
  levels: number[];
  /** Audio per stream at each ramp level (clips + silences, back to back), seconds. */
  rampSecondsPerStream: number;
  /** `null` = every asr_en clip. */
  werMax: number | null;
  /** Results file (default bench/results/latest.json). */
  out: string | null;
}

const RTF_CLIPS = ['en_ls_1272-128104-0000', 'en_ls_2412-153948-0000', 'en_jfk_inaugural_excerpt', 'en_cmu_goforward', 'en_librivox_sense_and_sensibility_0870', 'en_mfa_acoustic_corpus'];
const LATENCY_CLIPS = [
  'en_ls_1272-128104-0000',
  'en_cmu_goforward',
  'en_ls_61-70968-0000',
  'en_librivox_sense_and_sensibility_0880',
  'en_ls_260-123286-0001',
  'en_voices_sp0307_farfield',
  'en_librivox_sense_and_sensibility_0920',
  'en_cmu_forever',
  'en_commonvoice_22058264',
  'en_mfa_mfa_words',
  'en_jfk_inaugural_excerpt',
  'en_mfa_falsetto',
];
const FINALIZE_CLIPS = ['en_ls_1272-128104-0000', 'en_cmu_goforward', 'en_librivox_sense_and_sensibility_0880', 'en_ls_61-70968-0000'];

function parseArgs(argv: string[]): Plan {
  const quick = argv.includes('--quick');
  const li = argv.indexOf('--levels');
  const levels = li >= 0 && argv[li + 1] ? argv[li + 1]!.split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0) : null;
  return {
    quick,
    rtfClips: quick ? RTF_CLIPS.slice(0, 2) : RTF_CLIPS,
    latencyClips: quick ? LATENCY_CLIPS.slice(0, 4) : LATENCY_CLIPS,
    finalizeClips: quick ? FINALIZE_CLIPS.slice(0, 2) : FINALIZE_CLIPS,
    finalizeReps: quick ? 2 : 3,
    levels: levels ?? (quick ? [1, 2, 4, 6] : [1, 2, 4, 6, 8, 10, 12, 14, 16]),
    rampSecondsPerStream: quick ? 8 : 15,
    werMax: quick ? 8 : null,
    out: argv.indexOf('--out') >= 0 ? (argv[argv.indexOf('--out') + 1] ?? null) : null,
  };
}

/** View little-endian 16-bit PCM bytes as samples (no copy). */
const pcmOf = (b: Buffer) => new Int16Array(b.buffer, b.byteOffset, b.length >> 1);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const mb = (bytes: number) => round(bytes / 1e6, 1);
const anomalies: string[] = [];
function anomaly(s: string): void {
  if (anomalies.length < 200) anomalies.push(s);
  process.stderr.write(`  ! ${s}\n`);
}
function progress(s: string): void {
  process.stderr.write(`${s}\n`);
}

function initConfig(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { language: 'en', sample_rate: 16000, encoding: 'linear16', enable_partials: true, enable_word_timestamps: true, endpointing: ENDPOINTING_MS, ...over };
}

/** Wait until the server has no sessions (bounded, 10 s). */
async function settle(server: ServerProcess): Promise<void> {
  const deadline = performance.now() + 10000;
  while (performance.now() < deadline) {
    const st = await server.status();
    if (st && st.sessions === 0) return;
    await sleep(100);
  }
  anomaly('server still reports open sessions 10 s after every client closed');
}

function assertAlive(server: ServerProcess): void {
  if (server.unexpectedExit) throw new Error(`server process exited unexpectedly (code ${server.unexpectedExit.code}, signal ${server.unexpectedExit.signal})`);
}

/** CPU use during a phase, percent of one core (200 = both cores of a 2-CPU machine). */
interface LoadStats {
  server_cpu_percent: number | null;
  bench_client_cpu_percent: number | null;
  /** Everything else on the machine (other users' builds/tests): disturbs the measurement. */
  other_processes_cpu_percent: number | null;
}

function loadStats(samples: ProcSample[]): LoadStats {
  const a = samples[0];
  const b = samples.at(-1);
  if (!a || !b || a === b) return { server_cpu_percent: null, bench_client_cpu_percent: null, other_processes_cpu_percent: null };
  const wall = (b.atMs - a.atMs) / 1000;
  return {
    server_cpu_percent: round(cpuPercent(a, b)),
    bench_client_cpu_percent: round(((b.selfCpuSeconds - a.selfCpuSeconds) / wall) * 100),
    other_processes_cpu_percent: round(externalCpuPercent(a, b)),
  };
}

/** Run `fn` while sampling the machine; warn when other processes used more than 25 % of a core meanwhile. */
async function withLoad<T>(server: ServerProcess, what: string, fn: () => Promise<T>): Promise<{ value: T; load: LoadStats }> {
  const sp = new ProcSampler(server, 1000).start();
  let value: T;
  try {
    value = await fn();
  } finally {
    sp.stop();
  }
  const load = loadStats(sp.samples);
  if ((load.other_processes_cpu_percent ?? 0) > DISTURBED_CPU_PERCENT) anomaly(`${what}: other processes on the machine used ${load.other_processes_cpu_percent}% of a core meanwhile; latencies may be inflated`);
  return { value, load };
}

/** Clip-level failures (session refused, socket error, …) per phase; such clips are skipped. */
const failures: Record<string, number> = {};

/** Run one clip's measurement; a failure becomes an anomaly and the clip is skipped (unless the server died). */
async function attempt(server: ServerProcess, phase: string, what: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    assertAlive(server);
    failures[phase] = (failures[phase] ?? 0) + 1;
    anomaly(`${what}: ${(err as Error).message}`);
  }
}

function checkSession(s: BenchSession, what: string, closeCode: number): number {
  let errs = 0;
  for (const e of s.errors()) {
    anomaly(`${what}: error frame ${e.code}: ${e.message}`);
    errs++;
  }
  if (closeCode !== 1000) {
    anomaly(`${what}: closed with ${closeCode} ${s.closeInfo?.reason ?? ''}`);
    errs++;
  }
  for (const t of s.transportErrors) anomaly(`${what}: transport error ${t}`);
  return errs + s.transportErrors.length;
}

// ---------------------------------------------------------------------------------------------
// 1. RTF

interface RtfClip {
  file: string;
  audio_s: number;
  wall_ms: number;
  rtf: number;
  close_code: number;
}

async function measureRtf(server: ServerProcess, clips: Clip[]): Promise<RtfClip[]> {
  const out: RtfClip[] = [];
  for (const c of clips) await attempt(server, 'rtf', `rtf ${c.name}`, async () => {
    const s = await BenchSession.open({ wsUrl: server.wsUrl, model: MODEL, key: server.key, init: initConfig({ enable_partials: false }) });
    const t = performance.now();
    await s.streamFast(c.bytes);
    const close = await s.closeAndWait(Math.max(30000, c.seconds * 5000));
    const wall = close.atMs - t;
    checkSession(s, `rtf ${c.name}`, close.code);
    out.push({ file: c.file, audio_s: round(c.seconds, 3)!, wall_ms: round(wall)!, rtf: round(wall / 1000 / c.seconds, 4)!, close_code: close.code });
    progress(`  rtf ${c.name}: ${(wall / 1000 / c.seconds).toFixed(3)} (${c.seconds.toFixed(1)} s audio)`);
    assertAlive(server);
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// 2+3. Single-stream real-time latencies

interface RealtimeClipResult {
  file: string;
  first_partial_ms: number[];
  eos_to_final_ms: number[];
  transcript: string;
  send_late_max_ms: number;
  close_code: number;
}

/** Play `audio` on one new session at real-time pace, then close. */
async function playRealtime(server: ServerProcess, audio: Buffer, what: string): Promise<{ lat: UtteranceLatencies; s: BenchSession; lateMaxMs: number; closeCode: number; errors: number }> {
  const s = await BenchSession.open({ wsUrl: server.wsUrl, model: MODEL, key: server.key, init: initConfig() });
  const rt = await s.streamRealtime(audio, { chunkMs: CHUNK_MS });
  const close = await s.closeAndWait(30000);
  const errors = checkSession(s, what, close.code);
  return { lat: utteranceLatencies(s.received, rt.t0, pcmOf(audio)), s, lateMaxMs: rt.lateMaxMs, closeCode: close.code, errors };
}

async function measureRealtimeLatency(server: ServerProcess, clips: Clip[]): Promise<{ perClip: RealtimeClipResult[]; lat: UtteranceLatencies }> {
  const perClip: RealtimeClipResult[] = [];
  const all: UtteranceLatencies[] = [];
  for (const c of clips) await attempt(server, 'realtime_latency', `latency ${c.name}`, async () => {
    const r = await playRealtime(server, Buffer.concat([c.bytes, silence(TRAILING_SILENCE_MS)]), `latency ${c.name}`);
    all.push(r.lat);
    if (r.lat.speechFinals === 0) anomaly(`latency ${c.name}: no speech_final final although the clip is followed by ${TRAILING_SILENCE_MS} ms of silence`);
    if (r.lat.finalsWithoutWords > 0) anomaly(`latency ${c.name}: ${r.lat.finalsWithoutWords} non-empty finals without words although enable_word_timestamps was set`);
    if (r.lat.wordTimingOutsideSpan > 0) anomaly(`latency ${c.name}: ${r.lat.wordTimingOutsideSpan} finals with word times outside their own span, e.g. ${r.lat.examples[0]}`);
    for (const v of r.lat.firstPartialMs) if (v < 0) anomaly(`latency ${c.name}: first partial ${v.toFixed(0)} ms before the first word's start (word timing later than audio?)`);
    for (const v of r.lat.eosToFinalMs) if (v < 0) anomaly(`latency ${c.name}: speech_final final ${(-v).toFixed(0)} ms before its last word's end`);
    if (r.lateMaxMs > 50) anomaly(`latency ${c.name}: client sent a chunk ${r.lateMaxMs.toFixed(0)} ms late (client event loop stalled)`);
    perClip.push({
      file: c.file,
      first_partial_ms: r.lat.firstPartialMs.map((v) => round(v)!),
      eos_to_final_ms: r.lat.eosToFinalMs.map((v) => round(v)!),
      transcript: r.s.text(),
      send_late_max_ms: round(r.lateMaxMs)!,
      close_code: r.closeCode,
    });
    progress(`  ${c.name}: first partial ${r.lat.firstPartialMs.map((v) => v.toFixed(0)).join(',') || '-'} ms; eos→final ${r.lat.eosToFinalMs.map((v) => v.toFixed(0)).join(',') || '-'} ms`);
    assertAlive(server);
  });
  return { perClip, lat: mergeLatencies(all) };
}

// ---------------------------------------------------------------------------------------------
// 4. finalize → final

interface FinalizeSample {
  file: string;
  rep: number;
  /** Audio sent before finalize, s. */
  audio_s: number;
  latency_ms: number | null;
  transcript: string;
  finals_before_finalize: number;
}

async function measureFinalize(server: ServerProcess, clips: Clip[], reps: number): Promise<FinalizeSample[]> {
  const out: FinalizeSample[] = [];
  for (let rep = 0; rep < reps; rep++) {
    for (const c of clips) await attempt(server, 'finalize', `finalize ${c.name}#${rep}`, async () => {
      const audio = trimTrailingSilence(c.bytes);
      const s = await BenchSession.open({ wsUrl: server.wsUrl, model: MODEL, key: server.key, init: initConfig({ endpointing: false }) });
      await s.streamRealtime(audio, { chunkMs: CHUNK_MS });
      const before = s.finals().length;
      const sentAt = s.sendJson({ type: 'finalize' });
      const f = sentAt === null ? null : await s.waitFor((r) => r.msg.type === 'final_transcript' && (r.msg as { from_finalize?: boolean }).from_finalize === true, 10000);
      const latency = f && sentAt !== null ? f.atMs - sentAt : null;
      const close = await s.closeAndWait(30000);
      checkSession(s, `finalize ${c.name}#${rep}`, close.code);
      if (latency === null) anomaly(`finalize ${c.name}#${rep}: no from_finalize final within 10 s`);
      if (before > 0) anomaly(`finalize ${c.name}#${rep}: ${before} final(s) arrived before finalize although endpointing was false`);
      const text = f ? String((f.msg as { transcript?: string }).transcript ?? '') : '';
      if (f && !text.trim()) anomaly(`finalize ${c.name}#${rep}: the from_finalize final is empty (${(audio.length / 32000).toFixed(2)} s of speech pending)`);
      out.push({ file: c.file, rep, audio_s: round(audio.length / 32000, 3)!, latency_ms: latency === null ? null : round(latency)!, transcript: text, finals_before_finalize: before });
      progress(`  finalize ${c.name}#${rep}: ${latency === null ? 'TIMEOUT' : latency.toFixed(1) + ' ms'}`);
      assertAlive(server);
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// 5+6. Concurrency ramp

interface LevelResult {
  streams: number;
  /** The server process died during the level. */
  server_crashed?: boolean;
  /** A first attempt that failed while other processes loaded the machine (the level was then run again). */
  disturbed_attempt?: { eos_to_final: MsSummary; errors: number; other_processes_cpu_percent: number };
  eos_to_final: MsSummary;
  first_partial: MsSummary;
  endpoint_wait: MsSummary;
  span_end_to_arrival: MsSummary;
  speech_finals: number;
  word_timing_outside_span: number;
  timing_corrected: number;
  timing_fallbacks: number;
  errors: number;
  error_details: string[];
  pass: boolean;
  rss_start_bytes: number | null;
  rss_peak_bytes: number | null;
  rss_mean_bytes: number | null;
  cpu_percent_of_one_core: number | null;
  /** Most OS threads the server had during the level (4 libuv workers + ~7 node threads when UV_THREADPOOL_SIZE is not in effect). */
  server_threads_max: number | null;
  load: LoadStats;
  duration_ms: number;
  status_mid_level: unknown;
  client_send_late_max_ms: number;
  client_event_loop_delay_p99_ms: number;
  client_event_loop_delay_max_ms: number;
}

/** Clips back to back (each followed by trailing silence) from `pool`, starting at `first`, until ≥ `seconds`. */
function playlist(pool: Clip[], first: number, seconds: number): { audio: Buffer; files: string[] } {
  const parts: Buffer[] = [];
  const files: string[] = [];
  let total = 0;
  for (let i = first; total < seconds; i++) {
    const c = pool[i % pool.length]!;
    parts.push(c.bytes, silence(TRAILING_SILENCE_MS));
    files.push(c.name);
    total += c.seconds + TRAILING_SILENCE_MS / 1000;
  }
  return { audio: Buffer.concat(parts), files };
}

/**
 * One ramp level: `n` concurrent real-time sessions, started `min(250, 1000/n)` ms apart; stream i
 * plays the same playlist at every level (clips from index 3·i on), so levels differ only in load.
 */
async function runLevel(server: ServerProcess, n: number, pool: Clip[], seconds: number): Promise<LevelResult> {
  const sampler = new ProcSampler(server, 250).start();
  const eld = monitorEventLoopDelay({ resolution: 5 });
  eld.enable();
  const staggerMs = Math.min(250, 1000 / n);
  const t0 = performance.now();
  const errorDetails: string[] = [];
  let errors = 0;
  let lateMax = 0;
  let statusMid: unknown = null;
  const statusTimer = setTimeout(() => {
    void server.status().then((st) => (statusMid = st));
  }, n * staggerMs + (seconds * 1000) / 2);
  const lats = await Promise.all(
    Array.from({ length: n }, async (_, i): Promise<UtteranceLatencies | null> => {
      await sleep(i * staggerMs);
      const { audio } = playlist(pool, i * 3, seconds);
      let s: BenchSession;
      try {
        s = await BenchSession.open({ wsUrl: server.wsUrl, model: MODEL, key: server.key, init: initConfig() });
      } catch (err) {
        errors++;
        errorDetails.push(`stream ${i}: ${(err as Error).message}`);
        return null;
      }
      const rt = await s.streamRealtime(audio, { chunkMs: CHUNK_MS });
      lateMax = Math.max(lateMax, rt.lateMaxMs);
      const close = await s.closeAndWait(30000);
      for (const e of s.errors()) errorDetails.push(`stream ${i}: error frame ${e.code}: ${e.message}`);
      if (close.code !== 1000) errorDetails.push(`stream ${i}: close ${close.code} ${close.reason}`);
      for (const t of s.transportErrors) errorDetails.push(`stream ${i}: transport ${t}`);
      errors += s.errors().length + (close.code !== 1000 ? 1 : 0) + s.transportErrors.length;
      return utteranceLatencies(s.received, rt.t0, pcmOf(audio));
    }),
  );
  clearTimeout(statusTimer);
  const samples = sampler.stop();
  eld.disable();
  const lat = mergeLatencies(lats.filter((l): l is UtteranceLatencies => !!l));
  const eos = summarizeMs(lat.eosToFinalMs);
  if (lat.eosToFinalMs.length === 0) {
    errors++;
    errorDetails.push('no speech_final final at all');
  }
  const rss = samples.map((x) => x.rssBytes).filter(Number.isFinite);
  const first = samples[0] as ProcSample | undefined;
  const last = samples.at(-1);
  return {
    streams: n,
    eos_to_final: eos,
    first_partial: summarizeMs(lat.firstPartialMs),
    endpoint_wait: summarizeMs(lat.endpointWaitMs),
    span_end_to_arrival: summarizeMs(lat.spanEndToArrivalMs),
    speech_finals: lat.speechFinals,
    word_timing_outside_span: lat.wordTimingOutsideSpan,
    timing_corrected: lat.timingCorrected,
    timing_fallbacks: lat.timingFallbacks,
    errors,
    error_details: errorDetails.slice(0, 20),
    pass: errors === 0 && eos.p95_ms !== null && eos.p95_ms <= REALTIME_P95_LIMIT_MS,
    rss_start_bytes: first?.rssBytes ?? null,
    rss_peak_bytes: rss.length ? Math.max(...rss) : null,
    rss_mean_bytes: rss.length ? Math.round(mean(rss)!) : null,
    cpu_percent_of_one_core: first && last ? round(cpuPercent(first, last)) : null,
    server_threads_max: samples.length ? Math.max(...samples.map((x) => x.threads)) : null,
    load: loadStats(samples),
    duration_ms: round(performance.now() - t0)!,
    status_mid_level: statusMid,
    client_send_late_max_ms: round(lateMax)!,
    client_event_loop_delay_p99_ms: round(eld.percentile(99) / 1e6)!,
    client_event_loop_delay_max_ms: round(eld.max / 1e6)!,
  };
}

// ---------------------------------------------------------------------------------------------
// 7. WER

interface WerClip {
  file: string;
  reference: string;
  hypothesis: string;
  ref_words: number;
  substitutions: number;
  deletions: number;
  insertions: number;
  wer: number | null;
  wall_ms: number;
  close_code: number;
}

async function measureWer(server: ServerProcess, clips: Clip[]): Promise<WerClip[]> {
  const out: WerClip[] = [];
  for (const c of clips) await attempt(server, 'wer', `wer ${c.name}`, async () => {
    const s = await BenchSession.open({ wsUrl: server.wsUrl, model: MODEL, key: server.key, init: initConfig({ enable_partials: false, enable_word_timestamps: false }) });
    const t = performance.now();
    await s.streamFast(Buffer.concat([c.bytes, silence(TRAILING_SILENCE_MS)]));
    const close = await s.closeAndWait(Math.max(30000, c.seconds * 5000));
    checkSession(s, `wer ${c.name}`, close.code);
    const hyp = s.text();
    const e = wordErrors(normalizeWords(c.reference), normalizeWords(hyp));
    const errs = e.substitutions + e.deletions + e.insertions;
    out.push({
      file: c.file,
      reference: c.reference,
      hypothesis: hyp,
      ref_words: e.refWords,
      substitutions: e.substitutions,
      deletions: e.deletions,
      insertions: e.insertions,
      wer: e.refWords ? round(errs / e.refWords, 4) : null,
      wall_ms: round(close.atMs - t)!,
      close_code: close.code,
    });
    progress(`  ${c.name}: WER ${e.refWords ? ((100 * errs) / e.refWords).toFixed(1) : '-'}%  "${hyp.slice(0, 70)}"`);
    assertAlive(server);
  });
  return out;
}

// ---------------------------------------------------------------------------------------------

function machineInfo(root: string): Record<string, unknown> {
  let commit: string | null = null;
  let dirty: boolean | null = null;
  try {
    commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8', timeout: 5000 }).trim();
    dirty = execFileSync('git', ['status', '--porcelain'], { cwd: root, encoding: 'utf8', timeout: 5000 }).trim().length > 0;
  } catch {
    /* not a git checkout */
  }
  const cpus = os.cpus();
  return {
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    cpu_model: cpus[0]?.model ?? 'unknown',
    cpus: cpus.length,
    total_memory_bytes: os.totalmem(),
    node_version: process.version,
    date: new Date().toISOString(),
    git_commit: commit,
    git_dirty: dirty,
  };
}

function fmt(v: number | null | undefined, unit = ' ms', d = 0): string {
  return v === null || v === undefined ? 'n/a' : `${v.toFixed(d)}${unit}`;
}

/** Modification times of the native addon files (a rebuild under a running server can crash it). */
function addonMtimes(root: string): string {
  const dir = path.join(root, 'native/build/Release');
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.node'))
      .map((f) => `${f}@${statSync(path.join(dir, f)).mtimeMs}`)
      .join(',');
  } catch {
    return '';
  }
}

/** What the phases measured so far (a phase that could not run leaves its field unset). */
interface Collected {
  idle?: ProcSample;
  idleStatus?: unknown;
  rtf?: { perClip: RtfClip[]; load: LoadStats };
  rt?: { perClip: RealtimeClipResult[]; lat: UtteranceLatencies; load: LoadStats };
  fin?: { samples: FinalizeSample[]; load: LoadStats };
  levels?: LevelResult[];
  wer?: { perClip: WerClip[]; load: LoadStats };
  /** Server crashes (the server is restarted after one and the run goes on). */
  crashes: { phase: string; at: string; code: number | null; signal: string | null; addon_replaced_while_running: boolean; last_output: string[] }[];
  servers: { pid: number; startup_ms: number | null }[];
}

async function main(): Promise<void> {
  const plan = parseArgs(process.argv.slice(2));
  const root = repoRoot();
  const tStart = performance.now();
  const loadAvgStart = os.loadavg().map((v) => round(v, 2));
  const watchdog = setTimeout(() => {
    process.stderr.write(`bench: watchdog: still running after ${WATCHDOG_MS / 60000} min, aborting\n`);
    process.exit(1); // the exit hook kills the server
  }, WATCHDOG_MS);
  watchdog.unref();

  progress(`voxgate bench${plan.quick ? ' (--quick)' : ''}: loading clips from ${sharedDataDir()}`);
  const clips = await loadAsrEnClips();
  const c: Collected = { crashes: [], servers: [] };
  let addonAtStart = addonMtimes(root);
  const startServer = async (): Promise<ServerProcess> => {
    addonAtStart = addonMtimes(root);
    const sv = await ServerProcess.start({ root, config: SERVER_CONFIG });
    c.servers.push({ pid: sv.pid, startup_ms: round(sv.startupMs) });
    progress(`server pid ${sv.pid} on ${sv.httpUrl} (started in ${sv.startupMs.toFixed(0)} ms)`);
    return sv;
  };
  let server = await startServer();
  const serverLogs: string[] = [];
  /** After a crash: record it, start a fresh server. */
  const recordCrashAndRestart = async (phase: string): Promise<void> => {
    const ex = server.unexpectedExit!;
    const tail = server.logs.slice(-10).map((l) => l.text);
    const replaced = addonMtimes(root) !== addonAtStart;
    c.crashes.push({ phase, at: new Date().toISOString(), code: ex.code, signal: ex.signal, addon_replaced_while_running: replaced, last_output: tail });
    anomaly(
      `server CRASHED during ${phase} (exit code ${ex.code}, signal ${ex.signal})` +
        (replaced ? ' — the native addon under native/build was rebuilt while the server ran, which alone can crash it' : '') +
        '; restarting it for the remaining phases',
    );
    serverLogs.push(...server.logs.map((l) => l.text));
    await server.stop();
    server = await startServer();
  };
  const phaseMs: Record<string, number> = {};
  const runPhase = async (name: string, label: string, fn: () => Promise<void>): Promise<void> => {
    const t = performance.now();
    progress(label);
    try {
      await fn();
    } catch (err) {
      if (!server.unexpectedExit) throw err;
      await recordCrashAndRestart(name);
    }
    phaseMs[name] = performance.now() - t;
    if (server.unexpectedExit) await recordCrashAndRestart(name);
    await settle(server);
  };

  let exitError: Error | null = null;
  try {
    // 6a. Idle RSS: pool warm, before any session.
    const warmDeadline = performance.now() + 15000;
    let st = await server.status();
    while ((!st || (st.engines.pocketsphinx?.idleDecoders ?? 0) < SERVER_CONFIG.engines.pocketsphinx.minIdleDecoders) && performance.now() < warmDeadline) {
      await sleep(100);
      st = await server.status();
    }
    if (!st) throw new Error('GET /v1/status does not answer');
    await sleep(1000);
    c.idle = server.sample();
    c.idleStatus = st;
    progress(`idle RSS ${mb(c.idle.rssBytes)} MB (status: ${JSON.stringify(st.engines)})`);

    await runPhase('rtf', '1. rtf (fast mode)', async () => {
      const r = await withLoad(server, 'rtf', () => measureRtf(server, pick(clips, plan.rtfClips)));
      c.rtf = { perClip: r.value, load: r.load };
    });
    await runPhase('realtime_latency', `2+3. first partial / eos→final at real-time pace, endpointing ${ENDPOINTING_MS} ms`, async () => {
      const r = await withLoad(server, 'single-stream latency', () => measureRealtimeLatency(server, pick(clips, plan.latencyClips)));
      c.rt = { ...r.value, load: r.load };
    });
    await runPhase('finalize', '4. finalize→final (endpointing false)', async () => {
      const r = await withLoad(server, 'finalize', () => measureFinalize(server, pick(clips, plan.finalizeClips), plan.finalizeReps));
      c.fin = { samples: r.value, load: r.load };
    });
    await runPhase('ramp', `5. concurrency ramp ${plan.levels.join(', ')} (≈${plan.rampSecondsPerStream} s of audio per stream)`, async () => {
      const pool = clips.filter((x) => x.seconds <= 12);
      c.levels = [];
      for (const n of plan.levels) {
        let lv = await runLevel(server, n, pool, plan.rampSecondsPerStream);
        const other = lv.load.other_processes_cpu_percent ?? 0;
        if (!lv.pass && !server.unexpectedExit && other > DISTURBED_CPU_PERCENT) {
          anomaly(`ramp N=${n}: failed (eos→final p95 ${lv.eos_to_final.p95_ms} ms, ${lv.errors} errors) while other processes used ${other}% of a core; running the level again`);
          await settle(server);
          const first = lv;
          lv = await runLevel(server, n, pool, plan.rampSecondsPerStream);
          lv.disturbed_attempt = { eos_to_final: first.eos_to_final, errors: first.errors, other_processes_cpu_percent: other };
        }
        if (server.unexpectedExit) {
          lv.pass = false;
          lv.server_crashed = true;
          lv.errors++;
          lv.error_details.unshift(`server crashed (signal ${server.unexpectedExit.signal}, code ${server.unexpectedExit.code})`);
        }
        c.levels.push(lv);
        progress(
          `  N=${n}: eos→final p50 ${fmt(lv.eos_to_final.p50_ms)} p95 ${fmt(lv.eos_to_final.p95_ms)} (n=${lv.eos_to_final.n}), errors ${lv.errors}, ` +
            `RSS peak ${fmt(lv.rss_peak_bytes === null ? null : mb(lv.rss_peak_bytes), ' MB')}, CPU ${fmt(lv.cpu_percent_of_one_core, '%')} → ${lv.pass ? 'ok' : 'FAIL'}`,
        );
        for (const d of lv.error_details) anomaly(`ramp N=${n}: ${d}`);
        if ((lv.load.other_processes_cpu_percent ?? 0) > DISTURBED_CPU_PERCENT) anomaly(`ramp N=${n}: other processes used ${lv.load.other_processes_cpu_percent}% of a core during the level; latencies may be inflated`);
        if (lv.word_timing_outside_span > 0) anomaly(`ramp N=${n}: ${lv.word_timing_outside_span} of ${lv.speech_finals} finals have word times outside their own [start, start+duration] span (${lv.timing_corrected} re-timed by shifting back the earlier finals' audio, ${lv.timing_fallbacks} timed from the sent audio)`);
        if (!lv.pass) break;
        await settle(server);
      }
    });
    await runPhase('wer', '7. WER (fast mode, every asr_en clip)', async () => {
      const r = await withLoad(server, 'wer', () => measureWer(server, plan.werMax === null ? clips : clips.slice(0, plan.werMax)));
      c.wer = { perClip: r.value, load: r.load };
    });
  } catch (err) {
    exitError = err as Error;
  }
  const finalSample = server.alive ? server.sample() : null;
  serverLogs.push(...server.logs.map((l) => l.text));
  await server.stop();

  // 8. Pre-recorded HTTP and compressed audio (issue #3; bench/http.ts starts its own servers).
  let http: HttpBenchResults | { error: string } | null = null;
  if (!exitError) {
    progress('8. pre-recorded HTTP throughput, 10-minute file RSS, opus/mp3 decoder latency (bench/http.ts)');
    const t = performance.now();
    try {
      http = await runHttpBench({ quick: plan.quick });
    } catch (err) {
      anomaly(`http bench failed: ${(err as Error).message}`);
      http = { error: (err as Error).message };
    }
    phaseMs.http = performance.now() - t;
  }
  clearTimeout(watchdog);

  const results = assemble(c, plan, root, { loadAvgStart, phaseMs, tStart, finalSample, serverLogs, exitError });
  results.http = http;
  const outFile = plan.out ? path.resolve(plan.out) : path.join(root, 'bench/results/latest.json');
  mkdirSync(path.dirname(outFile), { recursive: true });
  writeFileSync(outFile, JSON.stringify(results, null, 2) + '\n');
  progress(`results written to ${path.relative(process.cwd(), outFile) || outFile}`);
  if (exitError) {
    process.stderr.write(`bench failed: ${exitError.stack ?? exitError.message}\n`);
    process.exitCode = 1;
  }
}

/** Build the results document and print the human summary. */
function assemble(
  c: Collected,
  plan: Plan,
  root: string,
  x: { loadAvgStart: (number | null)[]; phaseMs: Record<string, number>; tStart: number; finalSample: ProcSample | null; serverLogs: string[]; exitError: Error | null },
): Record<string, unknown> {
  const rtf = c.rtf?.perClip ?? [];
  const rtfMean = mean(rtf.map((r) => r.rtf));
  const rtfMax = rtf.length ? Math.max(...rtf.map((r) => r.rtf)) : null;
  const fp = c.rt ? summarizeMs(c.rt.lat.firstPartialMs) : null;
  const eos = c.rt ? summarizeMs(c.rt.lat.eosToFinalMs) : null;
  const fin = c.fin?.samples ?? [];
  const finLat = c.fin ? summarizeMs(fin.map((f) => f.latency_ms).filter((v): v is number => v !== null)) : null;
  const levels = c.levels ?? [];
  let maxStreams = 0;
  for (const lv of levels) {
    if (!lv.pass) break;
    maxStreams = lv.streams;
  }
  const rssLevel = levels.find((l) => l.streams === 6 && !l.server_crashed) ?? levels.filter((l) => l.pass).at(-1) ?? levels.filter((l) => !l.server_crashed).at(-1);
  const idleRss = c.idle?.rssBytes ?? null;
  const perStreamRss = rssLevel && rssLevel.rss_peak_bytes !== null && idleRss !== null ? (rssLevel.rss_peak_bytes - idleRss) / rssLevel.streams : null;
  const wer = c.wer?.perClip ?? [];
  const werTotals = wer.reduce((a, w) => ({ n: a.n + w.ref_words, e: a.e + w.substitutions + w.deletions + w.insertions, s: a.s + w.substitutions, d: a.d + w.deletions, i: a.i + w.insertions }), { n: 0, e: 0, s: 0, d: 0, i: 0 });

  // Latency outliers in the single-stream phases.
  if (c.rt && eos) for (const pc of c.rt.perClip) for (const v of pc.eos_to_final_ms) if (eos.p50_ms !== null && v > Math.max(3 * eos.p50_ms, ENDPOINTING_MS + 500)) anomaly(`eos→final outlier ${v} ms on ${pc.file} (p50 ${eos.p50_ms} ms)`);
  if (finLat) for (const f of fin) if (f.latency_ms !== null && finLat.p50_ms !== null && f.latency_ms > Math.max(3 * finLat.p50_ms, 100)) anomaly(`finalize→final outlier ${f.latency_ms} ms on ${f.file}#${f.rep} (p50 ${finLat.p50_ms} ms, ${f.audio_s} s utterance)`);
  if (c.rt && c.rt.lat.finalsWithoutPartial > 0) anomaly(`${c.rt.lat.finalsWithoutPartial} of ${c.rt.lat.nonEmptyFinals} non-empty finals had no partial before them (partials enabled)`);

  const targets = [
    { name: 'finalize_to_final_p95_ms', value: finLat?.p95_ms ?? null, op: '<=', limit: 100, pass: !!finLat && finLat.p95_ms !== null && finLat.p95_ms <= 100 && finLat.n === fin.length && !failures.finalize },
    { name: 'eos_to_final_p50_ms', value: eos?.p50_ms ?? null, op: '<=', limit: ENDPOINTING_MS + 100, pass: !!eos && eos.p50_ms !== null && eos.p50_ms <= ENDPOINTING_MS + 100 },
    { name: 'max_realtime_streams', value: maxStreams, op: '>=', limit: 6, pass: maxStreams >= 6 },
    { name: 'idle_rss_mb', value: idleRss === null ? null : mb(idleRss), op: '<=', limit: 250, pass: idleRss !== null && idleRss / 1e6 <= 250 },
  ];
  const warnings = x.serverLogs;
  const results: Record<string, unknown> = {
    machine: { ...machineInfo(root), load_average_at_start: x.loadAvgStart, load_average_at_end: os.loadavg().map((v) => round(v, 2)) },
    config: {
      quick: plan.quick,
      model: MODEL,
      server_config: SERVER_CONFIG,
      server_log_level: 'warn',
      uv_threadpool_size: process.env.UV_THREADPOOL_SIZE ?? '16 (set by the CLI)',
      chunk_ms: CHUNK_MS,
      trailing_silence_ms: TRAILING_SILENCE_MS,
      endpointing_ms: ENDPOINTING_MS,
      realtime_p95_limit_ms: REALTIME_P95_LIMIT_MS,
      ramp_levels: plan.levels,
      ramp_audio_per_stream_s: plan.rampSecondsPerStream,
      finalize_reps: plan.finalizeReps,
      data_dir: sharedDataDir(),
      definitions: {
        first_partial: 'arrival of the first non-empty partial_transcript of an utterance − (t0 + words[0].start·1000) of its final',
        eos_to_final: 'arrival of a speech_final final − (t0 + words[last].end·1000); t0 = wall time of stream sample 0',
        word_timing_fallback:
          "finals whose words lie outside their own [start, start+duration] are re-timed by subtracting the summed durations of the session's earlier finals when that puts them inside the span (timing_corrected, ±0.1 s), else timed from the sent audio (timing_fallbacks: 20 ms frames within 25 dB of the span peak, ±0.3 s)",
        finalize_to_final: 'arrival of the from_finalize final − time the finalize frame was sent (right after the last chunk of the clip, trailing silence trimmed)',
        rtf: 'wall time from the first audio frame to the 1000 close / clip seconds, one stream, fast mode',
        cpu_percent: 'percent of one core (200 = both cores of a 2-CPU machine)',
        percentiles: 'linear interpolation between closest ranks',
        mb: '10^6 bytes',
      },
    },
    server: {
      processes: c.servers,
      idle_status: c.idleStatus ?? null,
      rss_at_end_bytes: x.finalSample?.rssBytes ?? null,
      rss_at_end_mb: x.finalSample ? mb(x.finalSample.rssBytes) : null,
      crashes: c.crashes,
    },
    rtf: c.rtf ? { mean: round(rtfMean, 4), max: round(rtfMax, 4), load: c.rtf.load, per_clip: rtf } : null,
    first_partial: c.rt && fp ? { ...fp, finals_without_partial: c.rt.lat.finalsWithoutPartial, load: c.rt.load } : null,
    eos_to_final:
      c.rt && eos
        ? {
            endpointing_ms: ENDPOINTING_MS,
            ...eos,
            speech_finals: c.rt.lat.speechFinals,
            word_timing_outside_span: c.rt.lat.wordTimingOutsideSpan,
            timing_corrected: c.rt.lat.timingCorrected,
            timing_fallbacks: c.rt.lat.timingFallbacks,
            breakdown: {
              endpoint_wait: summarizeMs(c.rt.lat.endpointWaitMs),
              span_end_to_arrival: summarizeMs(c.rt.lat.spanEndToArrivalMs),
              note: 'endpoint_wait = (final.start + final.duration) − end of last word; span_end_to_arrival = arrival − (t0 + final.start + final.duration)',
            },
            load: c.rt.load,
            per_clip: c.rt.perClip,
          }
        : null,
    finalize_to_final: c.fin && finLat ? { ...finLat, timeouts: fin.filter((f) => f.latency_ms === null).length, load: c.fin.load, samples: fin } : null,
    concurrency: c.levels ? { max_realtime_streams: maxStreams, p95_limit_ms: REALTIME_P95_LIMIT_MS, levels } : null,
    rss: {
      idle_bytes: idleRss,
      idle_mb: idleRss === null ? null : mb(idleRss),
      per_stream_bytes: perStreamRss === null ? null : Math.round(perStreamRss),
      per_stream_mb: perStreamRss === null ? null : mb(perStreamRss),
      per_stream_basis: rssLevel ? `(peak RSS at N=${rssLevel.streams} − idle) / ${rssLevel.streams}` : null,
    },
    wer: c.wer
      ? {
          overall: werTotals.n ? round(werTotals.e / werTotals.n, 4) : null,
          ref_words: werTotals.n,
          errors: werTotals.e,
          substitutions: werTotals.s,
          deletions: werTotals.d,
          insertions: werTotals.i,
          clips: wer.length,
          normalisation: 'lower case; mr→mister, mrs→missus; punctuation → space except apostrophes inside words; spaces collapsed',
          load: c.wer.load,
          per_clip: wer,
        }
      : null,
    targets,
    server_warnings: warnings.slice(0, 50),
    server_warning_count: warnings.length,
    clip_failures: failures,
    anomalies,
    phase_durations_ms: Object.fromEntries(Object.entries(x.phaseMs).map(([k, v]) => [k, round(v)])),
    total_runtime_ms: round(performance.now() - x.tStart),
    error: x.exitError?.message ?? null,
  };

  const pf = (b: boolean) => (b ? 'PASS' : 'FAIL');
  const lines = [
    '',
    `voxgate bench — ${MODEL}, ${os.cpus().length} CPUs, node ${process.version}${plan.quick ? ', QUICK' : ''}`,
    `  rtf (1 stream, fast)            mean ${fmt(rtfMean, '', 3)}  max ${fmt(rtfMax, '', 3)}  (${rtf.length} clips)`,
    `  first partial after onset       p50 ${fmt(fp?.p50_ms)}  p95 ${fmt(fp?.p95_ms)}  (n=${fp?.n ?? 0})`,
    `  eos → final (endpointing ${ENDPOINTING_MS})   p50 ${fmt(eos?.p50_ms)}  p95 ${fmt(eos?.p95_ms)}  (n=${eos?.n ?? 0})   target p50 ≤ ${ENDPOINTING_MS + 100} ms: ${pf(targets[1]!.pass)}`,
    `      breakdown: endpointer wait (span end − last word end) p50 ${fmt(c.rt ? summarizeMs(c.rt.lat.endpointWaitMs).p50_ms : null)} p95 ${fmt(c.rt ? summarizeMs(c.rt.lat.endpointWaitMs).p95_ms : null)}; endpoint → final arrival p50 ${fmt(c.rt ? summarizeMs(c.rt.lat.spanEndToArrivalMs).p50_ms : null)} p95 ${fmt(c.rt ? summarizeMs(c.rt.lat.spanEndToArrivalMs).p95_ms : null)}`,
    `  finalize → final                p50 ${fmt(finLat?.p50_ms, ' ms', 1)}  p95 ${fmt(finLat?.p95_ms, ' ms', 1)}  (n=${finLat?.n ?? 0}/${fin.length + (failures.finalize ?? 0)})   target p95 ≤ 100 ms: ${pf(targets[0]!.pass)}`,
    `  max real-time streams           ${maxStreams}   target ≥ 6: ${pf(targets[2]!.pass)}`,
    ...levels.map(
      (l) =>
        `      N=${String(l.streams).padStart(2)}  eos→final p50 ${fmt(l.eos_to_final.p50_ms).padStart(8)} p95 ${fmt(l.eos_to_final.p95_ms).padStart(8)}  errors ${l.errors}  RSS ${fmt(l.rss_peak_bytes === null ? null : mb(l.rss_peak_bytes), ' MB')}  CPU ${fmt(l.cpu_percent_of_one_core, '%')} (others ${fmt(l.load.other_processes_cpu_percent, '%')})  threads ${l.server_threads_max ?? 'n/a'}  ${l.server_crashed ? 'SERVER CRASHED' : l.pass ? 'ok' : 'FAIL'}${l.disturbed_attempt ? ' (2nd try)' : ''}`,
    ),
    `  RSS idle                        ${fmt(idleRss === null ? null : mb(idleRss), ' MB', 1)}   target ≤ 250 MB: ${pf(targets[3]!.pass)}`,
    `  RSS per active stream           ${fmt(perStreamRss === null ? null : mb(perStreamRss), ' MB', 1)}  (${rssLevel ? `N=${rssLevel.streams}` : 'n/a'})`,
    `  WER (${wer.length} clips, ${werTotals.n} words)     ${werTotals.n ? ((100 * werTotals.e) / werTotals.n).toFixed(1) + '%' : 'n/a'}  (S ${werTotals.s}, D ${werTotals.d}, I ${werTotals.i})  [reported, not gated]`,
    `  CPU of other processes (% of one core): latency ${fmt(c.rt?.load.other_processes_cpu_percent, '%')}, finalize ${fmt(c.fin?.load.other_processes_cpu_percent, '%')}; load average ${x.loadAvgStart.join(' ')} → ${os
      .loadavg()
      .map((v) => v.toFixed(2))
      .join(' ')}`,
    `  server crashes: ${c.crashes.length}, anomalies: ${anomalies.length}, server warnings: ${warnings.length}, runtime ${((performance.now() - x.tStart) / 1000).toFixed(0)} s`,
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');
  return results;
}

await main().catch((err: Error) => {
  process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
