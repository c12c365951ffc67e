/**
 * voxgate TTS benchmark: `npm run bench:tts` (also run by `npm run bench` after the STT phases), or
 * `node dist/bench/tts.js [--quick] [--out FILE]`. Issue #4 "Benchmark".
 *
 * The gateway runs as a child process (default catalogue) and is driven over the unified TTS
 * WebSocket (protocols.md §1.5) like a voice agent would:
 *
 *  1. `first_audio` — one `{"type":"text","text":<20-word sentence>,"flush":true}` message → first
 *     audio byte on the client, ms, p50/p95, per engine/format (30 turns per session after 3 warm-up
 *     turns; turns are sequential; `pacing: false` so a turn's `flushed` needs no real-time wait —
 *     the first audio is never paced). Target on the embedded engine (flite kal16): p50 ≤ 30 ms.
 *  2. `synthesis_rtf` — wall time from that message to `flushed` ÷ `audio_end.duration` for the
 *     10 sentences of engines.md §8 sent as one text, real-time pacing off (`config.pacing: false`)
 *     (lower is faster; 0.01 = 100× real time).
 *  3. `clear_to_cleared` — a long text is speaking (default real-time pacing, 3 s lead); `clear`
 *     sent right after an audio frame arrives → `cleared` on the client, ms, p50/p95 (target
 *     p95 ≤ 20 ms); audio frames after `cleared` are counted (must be 0).
 *  4. `concurrency` — N sessions (N = 1, 2, 4, 8, 16, 32, 48, 64, 96, 128; default pacing), each
 *     starting at a random time in the first 5 s and taking turns until 20 s: send the sentence +
 *     flush, receive the audio, then wait until it would have finished
 *     playing (real-time pace) and start the next turn. A level passes when first-audio p95 ≤ 100 ms,
 *     every utterance's audio arrived before its playback would end (synthesis kept up with real
 *     time) and nothing failed; the ramp stops at the first failing level.
 *
 * Writes `bench/results/tts-latest.json` (or `--out`), prints a summary with PASS/FAIL; exits 0
 * either way (1 only when the benchmark could not run).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { repoRoot } from './lib/clips.js';
import { cpuPercent, ServerProcess } from './lib/server.js';
import { round, summarizeMs, type MsSummary } from './lib/stats.js';

/** engines.md §5: the 20-word sentence used for first-audio measurements. */
const SENTENCE = 'Hello, this is a test of the real time speech gateway, and it should sound clear for everyone listening today.';
/** engines.md §8: the 10 round-trip sentences, as one text. */
const TEN = [
  'The quick brown fox jumps over the lazy dog.',
  'Please call me back when you get home tonight.',
  'The weather today will be sunny with a high of seventy degrees.',
  "I would like to book a table for two at seven o'clock.",
  'Turn left at the next intersection and drive for two miles.',
  'The meeting has been moved to thursday afternoon.',
  'Can you send me the report before the end of the week?',
  'My flight leaves from the airport at nine in the morning.',
  'The children played in the park until it started to rain.',
  'We need to buy milk, bread and eggs from the store.',
].join(' ');
const FIRST_AUDIO_TARGET_P50_MS = 30;
const CLEAR_TARGET_P95_MS = 20;
const CONCURRENT_TARGET_P95_MS = 100;
const LEVEL_SECONDS = 20;
/** Sessions start at random times within this many seconds (about one turn: 6 s of audio). */
const STAGGER_SECONDS = 5;
const WATCHDOG_MS = 15 * 60 * 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const progress = (s: string) => process.stderr.write(`[tts-bench] ${s}\n`);

/** One benchmark TTS session on the unified dialect. */
class Session {
  private listeners: ((bin: boolean, m: Record<string, unknown> | null, bytes: number) => void)[] = [];
  readonly errors: string[] = [];
  closed = false;
  constructor(readonly ws: WebSocket) {
    ws.on('message', (d: Buffer, bin: boolean) => {
      const m = bin ? null : (JSON.parse(d.toString()) as Record<string, unknown>);
      if (m?.type === 'error') this.errors.push(`${m.code}: ${m.message}`);
      for (const l of [...this.listeners]) l(bin || m?.type === 'audio_chunk', m, d.length);
    });
    ws.on('close', () => (this.closed = true));
    ws.on('error', (e) => this.errors.push(e.message));
  }

  static async open(server: ServerProcess, model: string, init: Record<string, unknown>): Promise<Session> {
    const ws = new WebSocket(`${server.wsUrl}/v1/tts/${model}`, { headers: { Authorization: `Bearer ${server.key}` } });
    await new Promise<void>((res, rej) => {
      ws.once('open', () => res());
      ws.once('error', rej);
    });
    const s = new Session(ws);
    const ready = s.until((_b, m) => m?.type === 'ready');
    ws.send(JSON.stringify({ type: 'init', ...init }));
    await ready;
    return s;
  }

  /** Resolve with performance.now() when a frame satisfies `pred`. */
  until(pred: (bin: boolean, m: Record<string, unknown> | null) => boolean, timeoutMs = 30000): Promise<number> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.listeners = this.listeners.filter((x) => x !== l);
        reject(new Error(`timeout; errors: ${this.errors.join('; ')}`));
      }, timeoutMs);
      const l = (bin: boolean, m: Record<string, unknown> | null) => {
        if (!pred(bin, m)) return;
        clearTimeout(t);
        this.listeners = this.listeners.filter((x) => x !== l);
        resolve(performance.now());
      };
      this.listeners.push(l);
    });
  }

  /** Send one utterance (text + flush); resolve with first-audio and flushed times and the audio duration. */
  async turn(text: string): Promise<{ sentAt: number; firstAt: number; flushedAt: number; duration: number; frames: number }> {
    let duration = 0;
    let frames = 0;
    const onEnd = (_b: boolean, m: Record<string, unknown> | null) => {
      if (m?.type === 'audio_end') duration = m.duration as number;
    };
    this.listeners.push(onEnd);
    const count = (b: boolean) => {
      if (b) frames++;
    };
    this.listeners.push(count);
    const first = this.until((b) => b);
    const flushed = this.until((_b, m) => m?.type === 'flushed');
    const sentAt = performance.now();
    this.ws.send(JSON.stringify({ type: 'text', text, flush: true }));
    const [firstAt, flushedAt] = await Promise.all([first, flushed]);
    this.listeners = this.listeners.filter((x) => x !== onEnd && x !== count);
    return { sentAt, firstAt, flushedAt, duration, frames };
  }

  close(): void {
    if (!this.closed) this.ws.close();
  }
}

interface FirstAudioResult {
  label: string;
  model: string;
  init: Record<string, unknown>;
  first_audio: MsSummary;
  to_flushed: MsSummary;
  /** (flushed − sent) / audio seconds, per turn; mean. */
  turn_rtf_mean: number | null;
}

async function measureFirstAudio(server: ServerProcess, label: string, model: string, init: Record<string, unknown>, reps: number): Promise<FirstAudioResult> {
  const s = await Session.open(server, model, init);
  const first: number[] = [];
  const flushed: number[] = [];
  const rtf: number[] = [];
  for (let i = 0; i < reps + 3; i++) {
    const r = await s.turn(SENTENCE);
    if (i >= 3) {
      first.push(r.firstAt - r.sentAt);
      flushed.push(r.flushedAt - r.sentAt);
      rtf.push((r.flushedAt - r.sentAt) / 1000 / r.duration);
    }
    await sleep(40);
  }
  s.close();
  if (s.errors.length) throw new Error(`${label}: ${s.errors.join('; ')}`);
  return { label, model, init, first_audio: summarizeMs(first), to_flushed: summarizeMs(flushed), turn_rtf_mean: round(rtf.reduce((a, b) => a + b, 0) / rtf.length, 4) };
}

async function measureRtf(server: ServerProcess, model: string, init: Record<string, unknown>, reps: number): Promise<{ model: string; init: Record<string, unknown>; rtf_mean: number | null; rtf_min: number | null; audio_seconds: number | null }> {
  const s = await Session.open(server, model, init);
  const values: number[] = [];
  let audio = 0;
  for (let i = 0; i < reps + 1; i++) {
    const r = await s.turn(TEN);
    if (i > 0) values.push((r.flushedAt - r.sentAt) / 1000 / r.duration);
    audio = r.duration;
    await sleep(50);
  }
  s.close();
  return { model, init, rtf_mean: round(values.reduce((a, b) => a + b, 0) / values.length, 4), rtf_min: round(Math.min(...values), 4), audio_seconds: round(audio, 2) };
}

async function measureClear(server: ServerProcess, reps: number): Promise<{ clear_to_cleared: MsSummary; audio_frames_after_cleared: number }> {
  const s = await Session.open(server, 'local/flite:en', { config: { sample_rate: 24000 } });
  const lat: number[] = [];
  let violations = 0;
  const long = `${TEN} ${TEN} ${TEN}`;
  for (let i = 0; i < reps + 2; i++) {
    const first = s.until((b) => b);
    s.ws.send(JSON.stringify({ type: 'text', text: long, flush: true }));
    await first;
    const cleared = s.until((_b, m) => m?.type === 'cleared');
    const sent = performance.now();
    s.ws.send(JSON.stringify({ type: 'clear' }));
    const at = await cleared;
    let after = 0;
    const count = s.until((b) => (b ? (after++, false) : false), 150).catch(() => 0);
    await count;
    violations += after;
    if (i >= 2) lat.push(at - sent);
    await sleep(30);
  }
  s.close();
  return { clear_to_cleared: summarizeMs(lat), audio_frames_after_cleared: violations };
}

interface LevelResult {
  sessions: number;
  turns: number;
  first_audio: MsSummary;
  /** Turns whose audio finished arriving after its real-time playback would have ended. */
  late_turns: number;
  errors: number;
  passed: boolean;
  /** Gateway process CPU, percent of one core. */
  server_cpu_percent: number | null;
  /** CPU of the spawner and the engine processes (flite/espeak-ng/ffmpeg) it ran, percent of one core. */
  engine_children_cpu_percent: number | null;
  /** All CPUs of the machine (gateway, engines, this benchmark's clients, anything else), percent of one core. */
  machine_cpu_percent: number | null;
  server_rss_mb: number | null;
}

/**
 * CPU seconds of the gateway's child processes — the spawner and, through its cutime/cstime, every
 * engine/encoder process it ran that has exited (USER_HZ = 100 on Linux).
 */
function childrenCpuSeconds(pid: number): number {
  const stat = (p: string): number[] => {
    const s = readFileSync(`/proc/${p}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ').map(Number);
  };
  try {
    let total = 0;
    for (const child of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) {
      const f = stat(child);
      total += f[11]! + f[12]! + f[13]! + f[14]!; // utime, stime, cutime, cstime
    }
    return total / 100;
  } catch {
    return 0;
  }
}

async function runLevel(server: ServerProcess, n: number): Promise<LevelResult> {
  const sessions = await Promise.all(Array.from({ length: n }, () => Session.open(server, 'local/flite:en', { config: { sample_rate: 24000 } })));
  const first: number[] = [];
  let turns = 0;
  let late = 0;
  let errors = 0;
  const before = server.sample();
  const childBefore = childrenCpuSeconds(server.pid);
  const t0 = performance.now();
  const end = t0 + LEVEL_SECONDS * 1000;
  await Promise.all(
    sessions.map(async (s) => {
      await sleep(Math.random() * STAGGER_SECONDS * 1000); // staggered starts, as calls arrive
      while (performance.now() < end) {
        try {
          const r = await s.turn(SENTENCE);
          turns++;
          first.push(r.firstAt - r.sentAt);
          const playbackEnd = r.firstAt + r.duration * 1000;
          if (r.flushedAt > playbackEnd) late++;
          const wait = playbackEnd - performance.now();
          if (wait > 0) await sleep(wait); // the agent plays the answer before its next turn
        } catch {
          errors++;
          break;
        }
      }
    }),
  );
  const after = server.sample();
  const childCpu = childrenCpuSeconds(server.pid) - childBefore;
  const wall = (after.atMs - before.atMs) / 1000;
  for (const s of sessions) {
    errors += s.errors.length;
    s.close();
  }
  const fa = summarizeMs(first);
  return {
    sessions: n,
    turns,
    first_audio: fa,
    late_turns: late,
    errors,
    passed: errors === 0 && late === 0 && (fa.p95_ms ?? Infinity) <= CONCURRENT_TARGET_P95_MS,
    server_cpu_percent: round(cpuPercent(before, after), 0),
    engine_children_cpu_percent: round((100 * childCpu) / wall, 0),
    machine_cpu_percent: round((100 * (after.systemBusySeconds - before.systemBusySeconds)) / wall, 0),
    server_rss_mb: round(after.rssBytes / 1e6, 0),
  };
}

function machineInfo(root: string): Record<string, unknown> {
  let commit: string | null = null;
  try {
    commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8', timeout: 5000 }).trim();
  } catch {
    /* not a git checkout */
  }
  return { os: `${os.type()} ${os.release()}`, cpu_model: os.cpus()[0]?.model, cpus: os.cpus().length, node_version: process.version, date: new Date().toISOString(), git_commit: commit };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const outIdx = args.indexOf('--out');
  const root = repoRoot();
  const out = outIdx >= 0 ? args[outIdx + 1]! : path.join(root, 'bench/results/tts-latest.json');
  const reps = quick ? 10 : 30;
  const watchdog = setTimeout(() => {
    process.stderr.write('tts-bench: watchdog expired, aborting\n');
    process.exit(1);
  }, WATCHDOG_MS);
  watchdog.unref();
  const loadStart = os.loadavg().map((v) => round(v, 2));
  const server = await ServerProcess.start({ root, config: {} });
  progress(`server pid ${server.pid} on ${server.httpUrl}`);
  try {
    await sleep(500);
    progress('first audio after text+flush (20-word sentence)');
    const first: FirstAudioResult[] = [];
    for (const [label, model, init] of [
      // pacing off only so that each turn's `flushed` comes at once; first audio is not paced anyway.
      ['flite kal16, linear16 24 kHz (default)', 'local/flite:en', { config: { sample_rate: 24000, encoding: 'linear16', pacing: false } }],
      ['flite kal16, linear16 16 kHz (native)', 'local/flite:en', { config: { sample_rate: 16000, pacing: false } }],
      ['flite kal16, mulaw 8 kHz', 'local/flite:en', { config: { sample_rate: 8000, encoding: 'mulaw', pacing: false } }],
      ['flite kal16, mp3 24 kHz', 'local/flite:en', { config: { sample_rate: 24000, encoding: 'mp3', pacing: false } }],
      ['flite slt (clustergen), linear16 24 kHz', 'local/flite:en', { voice: 'slt', config: { sample_rate: 24000, pacing: false } }],
      ['espeak-ng en-us, linear16 24 kHz', 'local/espeak-ng:multi', { config: { sample_rate: 24000, pacing: false } }],
      ['flite kal16, linear16 24 kHz, base64 audio_chunk framing', 'local/flite:en-base64', { config: { sample_rate: 24000, pacing: false } }],
    ] as const) {
      const r = await measureFirstAudio(server, label, model, init, reps);
      progress(`  ${label}: p50 ${r.first_audio.p50_ms} ms, p95 ${r.first_audio.p95_ms} ms`);
      first.push(r);
    }
    progress('synthesis RTF (10 sentences as one text)');
    // Real-time pacing would make this measure the clock: turn it off for the RTF phase.
    const rtf = [
      await measureRtf(server, 'local/flite:en', { config: { sample_rate: 24000, pacing: false } }, quick ? 2 : 5),
      await measureRtf(server, 'local/flite:en', { voice: 'slt', config: { sample_rate: 24000, pacing: false } }, quick ? 2 : 5),
      await measureRtf(server, 'local/espeak-ng:multi', { config: { sample_rate: 24000, pacing: false } }, quick ? 2 : 5),
    ];
    for (const r of rtf) progress(`  ${r.model} ${JSON.stringify(r.init)}: RTF ${r.rtf_mean}`);
    progress('clear → cleared');
    const clear = await measureClear(server, reps);
    progress(`  p50 ${clear.clear_to_cleared.p50_ms} ms, p95 ${clear.clear_to_cleared.p95_ms} ms, audio after cleared: ${clear.audio_frames_after_cleared}`);
    progress(`concurrent sessions at real time (${LEVEL_SECONDS} s per level, starts spread over ${STAGGER_SECONDS} s)`);
    const levels: LevelResult[] = [];
    for (const n of quick ? [1, 8, 32] : [1, 2, 4, 8, 16, 32, 48, 64, 96, 128]) {
      const r = await runLevel(server, n);
      levels.push(r);
      progress(`  N=${n}: ${r.turns} turns, first audio p50 ${r.first_audio.p50_ms} / p95 ${r.first_audio.p95_ms} ms, late ${r.late_turns}, errors ${r.errors}, CPU gateway ${r.server_cpu_percent} % + engines ${r.engine_children_cpu_percent} %, machine ${r.machine_cpu_percent} %, ${r.passed ? 'PASS' : 'FAIL'}`);
      if (!r.passed) break;
      await sleep(500);
    }
    const maxN = Math.max(0, ...levels.filter((l) => l.passed).map((l) => l.sessions));
    const headline = first[0]!;
    const result = {
      machine: machineInfo(root),
      load_average_start: loadStart,
      load_average_end: os.loadavg().map((v) => round(v, 2)),
      sentence: SENTENCE,
      first_audio: first,
      synthesis_rtf: rtf,
      clear,
      concurrency: { level_seconds: LEVEL_SECONDS, stagger_seconds: STAGGER_SECONDS, max_realtime_sessions: maxN, levels },
      targets: {
        first_audio_p50_ms: { target: FIRST_AUDIO_TARGET_P50_MS, value: headline.first_audio.p50_ms, pass: (headline.first_audio.p50_ms ?? Infinity) <= FIRST_AUDIO_TARGET_P50_MS },
        clear_to_cleared_p95_ms: { target: CLEAR_TARGET_P95_MS, value: clear.clear_to_cleared.p95_ms, pass: (clear.clear_to_cleared.p95_ms ?? Infinity) <= CLEAR_TARGET_P95_MS && clear.audio_frames_after_cleared === 0 },
        concurrent_first_audio_p95_ms: { target: CONCURRENT_TARGET_P95_MS, max_sessions: maxN },
      },
    };
    mkdirSync(path.dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
    const t = result.targets;
    process.stdout.write(
      [
        '',
        `TTS benchmark (${out})`,
        `  first audio, flite kal16 24 kHz: p50 ${headline.first_audio.p50_ms} ms, p95 ${headline.first_audio.p95_ms} ms  (target p50 ≤ ${FIRST_AUDIO_TARGET_P50_MS} ms: ${t.first_audio_p50_ms.pass ? 'PASS' : 'FAIL'})`,
        `  synthesis RTF: ${rtf.map((r) => `${r.model}${r.init.voice ? `/${r.init.voice as string}` : ''} ${r.rtf_mean}`).join(', ')}`,
        `  clear → cleared: p50 ${clear.clear_to_cleared.p50_ms} ms, p95 ${clear.clear_to_cleared.p95_ms} ms, audio after cleared ${clear.audio_frames_after_cleared}  (target p95 ≤ ${CLEAR_TARGET_P95_MS} ms: ${t.clear_to_cleared_p95_ms.pass ? 'PASS' : 'FAIL'})`,
        `  concurrent real-time sessions with first-audio p95 ≤ ${CONCURRENT_TARGET_P95_MS} ms: ${maxN}${levels.at(-1)?.passed ? ' (highest level tried)' : ''}`,
        '',
      ].join('\n'),
    );
  } finally {
    await server.stop();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`tts-bench: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
