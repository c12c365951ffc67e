/**
 * Graceful-shutdown benchmark (issue #14 item 4, "time to drain 10 live sessions on SIGTERM").
 * Standalone: `node dist/bench/drain.js [--runs N] [--sessions N] [--out FILE]` (default 3 runs of
 * 10 sessions → bench/results/drain.json); also the last step of `npm run bench`.
 *
 * Per run: a fresh `voxgate serve` child (default config, `maxDecoders: 16`, default
 * `shutdown.drainTimeoutMs` 10 000 ms). N live sessions, dialects in turn — unified `/v1/stt/…`,
 * Deepgram `/v1/listen`, smallest.ai Pulse — each streams asr_en clips (1.5 s of silence after each)
 * at real-time pace in 20 ms chunks, as microphones would, and keeps streaming until the server closes
 * it. Once every session has had an interim result and the starts are 2 s apart from the signal, the
 * child gets SIGTERM at a random moment, so sessions are caught mid-utterance or in silence.
 *
 * Measured (ms from SIGTERM): each session's close (`close_ms` p50/max), the process exit
 * (`exit_ms`); per session whether it was mid-utterance (interim shown since its last final), whether
 * that utterance got its final after SIGTERM (`finals_lost` counts those that did not), whether the
 * dialect's closing message arrived (`Metadata` / `is_last`; unified has none) and the close code (1001).
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { loadAsrEnClips, repoRoot, type Clip } from './lib/clips.js';
import { ServerProcess } from './lib/server.js';
import { percentile } from './lib/stats.js';

const log = (s: string) => process.stderr.write(`${s}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const CHUNK_MS = 20;
const BYTES_PER_MS = 32; // 16 kHz linear16

type Msg = Record<string, unknown>;
interface Dialect {
  name: 'unified' | 'listen' | 'smallest';
  path: string;
  init?: unknown;
  interim(m: Msg): boolean;
  final(m: Msg): boolean;
  closing(m: Msg): boolean;
}
const DIALECTS: Dialect[] = [
  {
    name: 'unified',
    path: '/v1/stt/local/pocketsphinx:en',
    init: { type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16', enable_partials: true } },
    interim: (m) => m.type === 'partial_transcript' && Boolean(m.transcript),
    final: (m) => m.type === 'final_transcript' && Boolean(m.transcript),
    closing: () => false,
  },
  {
    name: 'listen',
    path: '/v1/listen?encoding=linear16&sample_rate=16000&interim_results=true',
    interim: (m) => m.type === 'Results' && m.is_final === false && Boolean((m.channel as { alternatives: { transcript: string }[] }).alternatives[0]?.transcript),
    final: (m) => m.type === 'Results' && m.is_final === true && Boolean((m.channel as { alternatives: { transcript: string }[] }).alternatives[0]?.transcript),
    closing: (m) => m.type === 'Metadata',
  },
  {
    name: 'smallest',
    path: '/waves/v1/pulse/get_text?encoding=linear16&sample_rate=16000&language=en',
    interim: (m) => m.is_final === false && Boolean(m.transcript),
    final: (m) => m.is_final === true && m.is_last !== true && Boolean(m.transcript),
    closing: (m) => m.is_last === true,
  },
];

/** One live session's record. */
interface SessionRecord {
  dialect: Dialect['name'];
  /** An interim result was shown after the last final when SIGTERM was sent. */
  mid_utterance: boolean;
  /** Finals received after SIGTERM. */
  finals_after_sigterm: number;
  closing_message: boolean;
  close_code: number;
  close_reason: string;
  /** ms from SIGTERM to the close. */
  close_ms: number;
}

/** A microphone-like session: streams clips at real time until the server closes it. */
class LiveSession {
  readonly messages: { at: number; m: Msg }[] = [];
  lastInterimAt = -1;
  lastFinalAt = -1;
  readonly closed: Promise<{ code: number; reason: string; at: number }>;
  private stopped = false;

  constructor(readonly ws: WebSocket, readonly d: Dialect, private readonly audio: Buffer) {
    ws.on('message', (data, binary) => {
      if (binary) return;
      const m = JSON.parse(data.toString()) as Msg;
      const at = performance.now();
      this.messages.push({ at, m });
      if (d.interim(m)) this.lastInterimAt = at;
      if (d.final(m)) this.lastFinalAt = at;
    });
    ws.on('error', () => {});
    this.closed = new Promise((r) => ws.on('close', (code, reason) => ((this.stopped = true), r({ code, reason: reason.toString(), at: performance.now() }))));
  }

  /** Stream `audio` in a loop at real-time pace (absolute schedule, no drift). */
  async stream(): Promise<void> {
    const t0 = performance.now();
    const chunk = CHUNK_MS * BYTES_PER_MS;
    for (let k = 0; !this.stopped; k++) {
      const due = t0 + (k + 1) * CHUNK_MS;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      if (this.ws.readyState !== WebSocket.OPEN) return;
      const off = (k * chunk) % this.audio.length;
      this.ws.send(this.audio.subarray(off, Math.min(off + chunk, this.audio.length)));
    }
  }
}

function open(url: string, key: string, d: Dialect): Promise<WebSocket> {
  const auth = d.name === 'listen' ? `Token ${key}` : `Bearer ${key}`;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url + d.path, { headers: { Authorization: auth } });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
}

/** One run: start, N live sessions, SIGTERM, measure. */
async function runOnce(clips: Clip[], n: number, run: number): Promise<{ exit_ms: number; exit_code: number | null; loadavg_1m: number; sessions: SessionRecord[] }> {
  const server = await ServerProcess.start({ root: repoRoot(), config: { engines: { pocketsphinx: { minIdleDecoders: 2, maxDecoders: 16 } } } });
  try {
    const silence = Buffer.alloc(1500 * BYTES_PER_MS);
    const live: LiveSession[] = [];
    for (let i = 0; i < n; i++) {
      const d = DIALECTS[i % DIALECTS.length]!;
      const a = clips[(i + run) % clips.length]!;
      const b = clips[(i + run + 5) % clips.length]!;
      const ws = await open(server.wsUrl, server.key, d);
      const s = new LiveSession(ws, d, Buffer.concat([a.bytes, silence, b.bytes, silence]));
      if (d.init) ws.send(JSON.stringify(d.init));
      void s.stream();
      live.push(s);
      await sleep(150); // staggered starts, as real users
    }
    // Everyone is talking (an interim result seen), then SIGTERM at a random moment.
    const t0 = performance.now();
    while (live.some((s) => s.lastInterimAt < 0) && performance.now() - t0 < 30_000) await sleep(20);
    await sleep(500 + Math.random() * 1500);
    const exited = new Promise<{ code: number | null; at: number }>((r) => server.child.once('exit', (code) => r({ code, at: performance.now() })));
    const sigAt = performance.now();
    const mid = live.map((s) => s.lastInterimAt > s.lastFinalAt);
    const loadavg = os.loadavg()[0]!;
    server.child.kill('SIGTERM');
    const closes = await Promise.all(live.map((s) => s.closed));
    const ex = await Promise.race([exited, sleep(30_000).then(() => ({ code: null, at: NaN }))]);
    const sessions = live.map((s, i): SessionRecord => {
      const after = s.messages.filter((x) => x.at >= sigAt);
      return {
        dialect: s.d.name,
        mid_utterance: mid[i]!,
        finals_after_sigterm: after.filter((x) => s.d.final(x.m)).length,
        closing_message: s.d.name === 'unified' ? true : s.d.closing(s.messages.at(-1)?.m ?? {}),
        close_code: closes[i]!.code,
        close_reason: closes[i]!.reason,
        close_ms: Math.round(closes[i]!.at - sigAt),
      };
    });
    return { exit_ms: Math.round(ex.at - sigAt), exit_code: ex.code, loadavg_1m: Math.round(loadavg * 100) / 100, sessions };
  } finally {
    await server.stop(1000);
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const arg = (name: string, dflt: string) => {
    const i = argv.indexOf(name);
    return i >= 0 && argv[i + 1] ? argv[i + 1]! : dflt;
  };
  const runs = Number(arg('--runs', '3'));
  const n = Number(arg('--sessions', '10'));
  const out = arg('--out', path.join(repoRoot(), 'bench', 'results', 'drain.json'));
  const clips = (await loadAsrEnClips()).filter((c) => c.seconds >= 2.5 && c.seconds <= 12);
  const results = [];
  for (let r = 0; r < runs; r++) {
    const res = await runOnce(clips, n, r);
    const closeMs = res.sessions.map((s) => s.close_ms);
    const summary = {
      run: r + 1,
      sessions: n,
      mid_utterance: res.sessions.filter((s) => s.mid_utterance).length,
      finals_lost: res.sessions.filter((s) => s.mid_utterance && s.finals_after_sigterm === 0).length,
      closing_messages_missing: res.sessions.filter((s) => !s.closing_message).length,
      closes_not_1001: res.sessions.filter((s) => s.close_code !== 1001).length,
      close_p50_ms: percentile(closeMs, 50),
      close_max_ms: Math.max(...closeMs),
      exit_ms: res.exit_ms,
      exit_code: res.exit_code,
      /** 1-minute load average of the machine at SIGTERM (2 cores: above 2 the engine falls behind real time). */
      loadavg_1m: res.loadavg_1m,
      per_session: res.sessions,
    };
    log(`run ${r + 1}: ${n} sessions (${summary.mid_utterance} mid-utterance) drained; last close ${summary.close_max_ms} ms, exit ${summary.exit_ms} ms (code ${summary.exit_code}, load ${summary.loadavg_1m}); finals lost ${summary.finals_lost}, closing messages missing ${summary.closing_messages_missing}, closes ≠ 1001 ${summary.closes_not_1001}`);
    results.push(summary);
  }
  const doc = {
    metric: 'time to drain live sessions on SIGTERM',
    units: 'ms from SIGTERM',
    drain_timeout_ms: 10000,
    date: new Date().toISOString(),
    cpus: os.cpus().length,
    sessions_per_run: n,
    exit_ms_p50: percentile(results.map((r) => r.exit_ms), 50),
    exit_ms_max: Math.max(...results.map((r) => r.exit_ms)),
    close_max_ms_p50: percentile(results.map((r) => r.close_max_ms), 50),
    finals_lost_total: results.reduce((a, r) => a + r.finals_lost, 0),
    closing_messages_missing_total: results.reduce((a, r) => a + r.closing_messages_missing, 0),
    runs: results,
  };
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(doc, null, 2) + '\n');
  log(`drain: exit p50 ${doc.exit_ms_p50} ms, max ${doc.exit_ms_max} ms; finals lost ${doc.finals_lost_total}; closing messages missing ${doc.closing_messages_missing_total} → ${out}`);
}

main().catch((err: Error) => {
  log(`bench drain failed: ${err.stack ?? err.message}`);
  process.exit(1);
});
