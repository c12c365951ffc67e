/**
 * Issue #14 item 4: SIGTERM loses nothing. The real CLI server (`node bin/voxgate.cjs serve --port 0`)
 * runs as a child process; three live STT sessions on three dialects — unified (`/v1/stt/…`),
 * Deepgram `/v1/listen`, smallest.ai Pulse — stream real speech from ../shared/data, and SIGTERM
 * arrives mid-utterance.
 *
 * Deterministic by construction, no timing luck: each session streams the first part of its clip and
 * the test waits until the server has *decoded* some of it (a non-empty interim result: the
 * utterance is in progress server-side); then SIGTERM; then the test waits until the server reports
 * `draining` on /healthz before streaming the rest of the utterance plus trailing silence. Every
 * session must get a final carrying the utterance's words, its dialect's closing messages, and
 * close 1001; a new upgrade during the drain gets 503 in the route's dialect; the process exits 0.
 * A second SIGTERM during a drain exits at once (143).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadClip, openSocket, repoRoot, silence, type RecordingClient } from '../helpers.js';

const CLI = () => path.join(repoRoot(), 'bin', 'voxgate.cjs');

/** A `voxgate serve` child process on 127.0.0.1:0. */
interface ServeProcess {
  child: ChildProcessWithoutNullStreams;
  port: number;
  /** The admin key printed on first start. */
  key: string;
  /** Resolves with the exit code (null when killed by a signal) and the signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
  cleanup(): void;
}

/** Start `voxgate serve --port 0` in a fresh data directory (extra `env`, e.g. VOXGATE_DRAIN_TIMEOUT_MS); the port and key come from its stdout. */
async function serve(env: Record<string, string> = {}): Promise<ServeProcess> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'voxgate-sigterm-'));
  const child = spawn(process.execPath, [CLI(), 'serve', '--port', '0', '--data-dir', dataDir, '--log-level', 'warn'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no listening line: ${out}`)), 60_000);
    const check = () => {
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    };
    child.stdout.on('data', check);
    void exited.then(({ code }) => reject(new Error(`serve exited ${code}: ${out}`)));
  });
  const key = /(vgk_[0-9a-f]{12}_[A-Za-z0-9_-]{43})/.exec(out)?.[1];
  assert.ok(key, `no admin key printed: ${out}`);
  return {
    child,
    port,
    key,
    exited,
    output: () => out,
    cleanup() {
      child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** `GET /healthz` status and body. */
async function health(port: number): Promise<{ status: number; body: unknown }> {
  const r = await fetch(`http://127.0.0.1:${port}/healthz`);
  return { status: r.status, body: await r.json() };
}

/** Poll /healthz until it answers 503 (the server has begun draining). */
async function untilDraining(port: number): Promise<unknown> {
  for (let i = 0; i < 500; i++) {
    const h = await health(port);
    if (h.status === 503) return h.body;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('/healthz never answered 503 after SIGTERM');
}

/** One dialect under test: where it connects, how it starts, how its messages read. */
interface DialectCase {
  name: string;
  clip: string;
  /** Words of the clip's reference transcript that PocketSphinx recognises. */
  words: string[];
  /** Fraction of the clip streamed before SIGTERM (inside the utterance). */
  cut: number;
  path: string;
  headers(key: string): Record<string, string>;
  init?: unknown;
  isInterim(m: Record<string, unknown>): boolean;
  finalText(m: Record<string, unknown>): string | null;
  /** Assert the dialect's closing messages at the end of `messages`. */
  assertClosing(messages: Record<string, unknown>[]): void;
}

const CASES: DialectCase[] = [
  {
    name: 'unified /v1/stt',
    clip: 'asr_en/en_cmu_goforward.wav',
    words: ['forward', 'meters'],
    cut: 0.45,
    path: '/v1/stt/local/pocketsphinx:en',
    headers: (key) => ({ Authorization: `Bearer ${key}` }),
    init: { type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16', enable_partials: true } },
    isInterim: (m) => m.type === 'partial_transcript' && Boolean(m.transcript),
    finalText: (m) => (m.type === 'final_transcript' ? (m.transcript as string) : null),
    // The unified dialect has no closing message: the session close (1001) is its end (§1.3).
    assertClosing: (ms) => assert.ok(!ms.some((m) => m.type === 'error'), `no error frame expected: ${JSON.stringify(ms)}`),
  },
  {
    name: 'Deepgram /v1/listen',
    clip: 'asr_en/en_cmu_forever.wav',
    words: ['days', 'forever'],
    cut: 0.5,
    path: '/v1/listen?encoding=linear16&sample_rate=16000&interim_results=true',
    headers: (key) => ({ Authorization: `Token ${key}` }),
    isInterim: (m) => m.type === 'Results' && m.is_final === false && Boolean((m.channel as { alternatives: { transcript: string }[] }).alternatives[0]?.transcript),
    finalText: (m) => (m.type === 'Results' && m.is_final ? (m.channel as { alternatives: { transcript: string }[] }).alternatives[0]!.transcript : null),
    assertClosing: (ms) => {
      const last = ms.at(-1)!;
      assert.equal(last.type, 'Metadata', `the last message is the closing Metadata: ${JSON.stringify(ms.slice(-3))}`);
      assert.ok((last.duration as number) > 2, `Metadata.duration covers the audio received: ${JSON.stringify(last)}`);
      assert.match(last.sha256 as string, /^[0-9a-f]{64}$/);
    },
  },
  {
    name: 'smallest.ai pulse',
    clip: 'asr_en/en_cmu_goforward.wav',
    words: ['forward', 'meters'],
    cut: 0.45,
    path: '/waves/v1/pulse/get_text?encoding=linear16&sample_rate=16000&language=en',
    headers: (key) => ({ Authorization: `Bearer ${key}` }),
    isInterim: (m) => m.is_final === false && Boolean(m.transcript),
    finalText: (m) => (m.is_final === true && m.is_last !== true ? (m.transcript as string) : null),
    assertClosing: (ms) => {
      const last = ms.at(-1)!;
      assert.equal(last.is_last, true, `the last message carries is_last: ${JSON.stringify(ms.slice(-3))}`);
    },
  },
];

/** A session of one dialect streaming its clip. */
interface Live {
  c: DialectCase;
  rc: RecordingClient;
  rest: Buffer;
}

describe('SIGTERM drains live sessions (issue #14 item 4)', { timeout: 180_000 }, () => {
  it('mid-utterance: every session gets its final, closing messages and 1001; new upgrades 503; exit 0', async () => {
    const s = await serve({ VOXGATE_DRAIN_TIMEOUT_MS: '30000' });
    try {
      const live: Live[] = [];
      for (const c of CASES) {
        const clip = await loadClip(c.clip);
        assert.equal(clip.sampleRate, 16000);
        const at = Math.round((clip.bytes.length * c.cut) / 2) * 2;
        const rc = await openSocket(`ws://127.0.0.1:${s.port}${c.path}`, c.headers(s.key));
        if (c.init) rc.sendJson(c.init);
        await rc.sendBinary(clip.bytes.subarray(0, at));
        live.push({ c, rc, rest: Buffer.concat([clip.bytes.subarray(at), silence(1500)]) });
      }
      // The server has decoded part of each utterance: it is in progress on the server.
      await Promise.all(live.map(({ c, rc }) => rc.waitFor(c.isInterim, 30_000)));
      for (const { c, rc } of live) assert.equal(rc.messages.filter((m) => c.finalText(m) !== null).length, 0, `${c.name}: no final before SIGTERM`);

      s.child.kill('SIGTERM');
      assert.deepEqual(await untilDraining(s.port), { status: 'draining' });

      // New upgrades are refused with 503 in the route's dialect while the sessions drain.
      const refusedUnified = await openSocket(`ws://127.0.0.1:${s.port}/v1/stt/local/pocketsphinx:en`, { Authorization: `Bearer ${s.key}` }).then(
        () => assert.fail('upgrade accepted during the drain'),
        (e: { statusCode?: number; body?: string }) => e,
      );
      assert.equal(refusedUnified.statusCode, 503);
      assert.equal((JSON.parse(refusedUnified.body!) as { error: string }).error, 'backpressure');
      const refusedListen = await openSocket(`ws://127.0.0.1:${s.port}/v1/listen?encoding=linear16&sample_rate=16000`, { Authorization: `Token ${s.key}` }).then(
        () => assert.fail('upgrade accepted during the drain'),
        (e: { statusCode?: number; body?: string; headers?: Record<string, string> }) => e,
      );
      assert.equal(refusedListen.statusCode, 503);
      assert.equal((JSON.parse(refusedListen.body!) as { err_code: string }).err_code, 'SERVICE_UNAVAILABLE');
      assert.ok(refusedListen.headers?.['dg-error'], 'Deepgram refusals carry dg-error');

      // The users finish their sentences.
      for (const { rc, rest } of live) await rc.sendBinary(rest);
      const closes = await Promise.all(live.map(({ rc }) => rc.closed));
      for (const [i, { c, rc }] of live.entries()) {
        const text = rc.messages.map(c.finalText).filter((t) => t !== null).join(' ').toLowerCase();
        for (const w of c.words) assert.ok(text.includes(w), `${c.name}: "${w}" missing from the finals "${text}" (${JSON.stringify(rc.messages)})`);
        c.assertClosing(rc.messages);
        assert.equal(closes[i]!.code, 1001, `${c.name}: close ${closes[i]!.code} ${closes[i]!.reason}`);
        assert.match(closes[i]!.reason, /server shutting down/);
      }
      assert.deepEqual(await s.exited, { code: 0, signal: null }, s.output());
    } finally {
      s.cleanup();
    }
  });

  it('a second SIGTERM during the drain exits at once (143)', async () => {
    // A long deadline: without the second signal the drain would wait for the utterance to end.
    const s = await serve({ VOXGATE_DRAIN_TIMEOUT_MS: '120000' });
    try {
      const c = CASES[0]!;
      const clip = await loadClip(c.clip);
      const rc = await openSocket(`ws://127.0.0.1:${s.port}${c.path}`, c.headers(s.key));
      rc.sendJson(c.init);
      await rc.sendBinary(clip.bytes.subarray(0, Math.round((clip.bytes.length * c.cut) / 2) * 2));
      await rc.waitFor(c.isInterim, 30_000);
      s.child.kill('SIGTERM');
      await untilDraining(s.port);
      assert.equal(rc.ws.readyState, rc.ws.OPEN, 'the session is still draining (utterance in progress)');
      s.child.kill('SIGTERM');
      assert.deepEqual(await s.exited, { code: 143, signal: null }, s.output());
    } finally {
      s.cleanup();
    }
  });
});
