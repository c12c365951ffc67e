/**
 * Issue 14 items 5–6: no engine process outlives its owner, and engine processes (ffmpeg included)
 * are started by the spawner helpers, never forked from the gateway. Real gateways (in-process on
 * port 0, or `voxgate serve` as a child process), real engines (flite, ffmpeg), real /proc.
 *
 * Determinism: helpers are frozen with SIGSTOP before they are killed, so "a job in flight in the
 * helper" and "a helper that cannot clean up after itself" are states the test creates, not races
 * it hopes to win; only the kernel's parent-death signal (or the gateway's group kill) can then
 * remove their children.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FixtureDir } from '../audio_fixtures.js';
import { openSession, repoRoot, startTestServer, type TestServer } from '../helpers.js';
import { openTtsSession, type TtsRecorder } from '../tts_helpers.js';
import { alive, descendants, procTable, signalAll, spawners, waitFor, type ProcRow } from './proc.js';

const PCM = { voice: 'kal16', config: { sample_rate: 16000, encoding: 'linear16', language: 'en', pacing: false } };
/** Bounded wait for processes to disappear after a kill (the kernel acts at once; this is slack for a loaded box). */
const GONE_MS = 5000;

/** Audio bytes received after frame `from`. */
function audioAfter(c: TtsRecorder, from: number): number {
  return c.audio(from).length;
}

describe('hardening: engine processes die with their owner', () => {
  let s: TestServer;
  let fx: FixtureDir;
  before(async () => {
    s = await startTestServer();
    fx = new FixtureDir();
  });
  after(async () => {
    await s.cleanup();
    fx.cleanup();
  });

  it('kill -9 of a spawner helper mid-segment: no orphan survives, that segment gets provider_error, the session goes on', async () => {
    const c = await openTtsSession(s, 'local/flite:en', PCM);
    c.send({ type: 'text', text: 'The first sentence is spoken normally.', flush: true });
    await c.waitType('flushed');
    // Warm flite children are now waiting for their next text on a FIFO.
    assert.ok(await waitFor(() => descendants(process.pid).some((r) => r.comm === 'flite'), 10_000), 'warm flite children exist');
    await new Promise((r) => setTimeout(r, 500)); // let them reach their FIFO open
    const helpers = spawners(descendants(process.pid));
    assert.ok(helpers.length > 0, 'spawner helpers run');
    const victims: ProcRow[] = helpers.flatMap((h) => descendants(h.pid));
    assert.ok(victims.some((v) => v.comm === 'flite'), `helpers run flite: ${victims.map((v) => v.comm).join(', ')}`);

    // Freeze the helpers, start a segment, and kill them while its job is theirs.
    signalAll(helpers, 'SIGSTOP');
    const from = c.frames.length;
    try {
      c.send({ type: 'text', text: 'This segment is lost with its helper.', flush: true });
      await c.waitType('segment_start', 10_000, from);
      // flite took the text from its FIFO and finished (a zombie nobody reaps), or the job waits in the frozen helper.
      await waitFor(() => procTable().some((r) => r.comm === 'flite' && r.state === 'Z' && helpers.some((h) => h.pid === r.ppid)), 2000);
    } finally {
      signalAll(helpers, 'SIGKILL');
    }

    const errIdx = await c.waitIndex((f) => f.kind === 'json' && f.m.type === 'error', 15_000, from);
    assert.equal(c.json(errIdx).code, 'provider_error', JSON.stringify(c.json(errIdx)));
    await c.waitType('flushed', 15_000, from);

    const orphansGone = await waitFor(() => !victims.some(alive), GONE_MS);
    const left = victims.filter(alive);
    signalAll(left, 'SIGKILL'); // do not leave them behind for the next test
    assert.ok(orphansGone, `orphans still alive ${GONE_MS} ms after their helper died: ${left.map((v) => `${v.pid} ${v.comm}`).join(', ')}`);

    // The next segment is spoken (by a restarted helper) in the same session.
    const next = c.frames.length;
    c.send({ type: 'text', text: 'The session still speaks after the helper was replaced.', flush: true });
    const fl = await c.waitType('flushed', 15_000, next);
    assert.ok(audioAfter(c, next) > 16000, `audio after the restart: ${audioAfter(c, next)} bytes`);
    assert.ok(!c.frames.slice(next, fl).some((f) => f.kind === 'json' && f.m.type === 'error'), 'no error for the next segment');
    assert.equal(c.closeInfo, null, 'the session is still open');
    c.send({ type: 'close' });
    assert.equal((await c.closed).code, 1000);
  });

  it('kill -9 of the helpers mid-utterance of an mp3 session: an in-dialect error, then the next utterance is spoken', async () => {
    const c = await openTtsSession(s, 'local/flite:en', { voice: 'kal16', config: { sample_rate: 16000, encoding: 'mp3', language: 'en', pacing: false } });
    c.send({ type: 'text', text: 'Warm up the encoder and the engine.', flush: true });
    await c.waitType('flushed');
    const helpers = spawners(descendants(process.pid));
    const victims = helpers.flatMap((h) => descendants(h.pid));
    signalAll(helpers, 'SIGSTOP');
    const from = c.frames.length;
    try {
      c.send({ type: 'text', text: 'This utterance loses its encoder.', flush: true });
      await c.waitType('segment_start', 10_000, from);
    } finally {
      signalAll(helpers, 'SIGKILL');
    }
    const errIdx = await c.waitIndex((f) => f.kind === 'json' && f.m.type === 'error', 15_000, from);
    assert.equal(c.json(errIdx).code, 'provider_error', JSON.stringify(c.json(errIdx)));
    await c.waitType('flushed', 15_000, from);
    assert.ok(await waitFor(() => !victims.some(alive), GONE_MS), 'no orphan');

    const next = c.frames.length;
    c.send({ type: 'text', text: 'The next utterance is encoded by a new helper.', flush: true });
    const fl = await c.waitType('flushed', 15_000, next);
    const mp3 = c.audio(next, fl);
    assert.ok(mp3.length > 2000 && (mp3[0] === 0xff || mp3.subarray(0, 3).toString() === 'ID3'), `mp3 audio after the restart: ${mp3.length} bytes`);
    assert.equal(c.closeInfo, null, 'the session is still open');
    c.send({ type: 'close' });
    assert.equal((await c.closed).code, 1000);
  });

  it('an STT stream whose ffmpeg decoder is lost (helper killed, or ffmpeg killed) gets an engine error, not invalid_audio', async () => {
    const bytes = fx.read(fx.encode(['asr_en/en_cmu_goforward.wav'], 'ogg-opus'));
    for (const victim of ['helper', 'ffmpeg'] as const) {
      const before = new Set(descendants(process.pid).filter((r) => r.comm === 'ffmpeg').map((r) => r.pid));
      const c = await openSession(s, 'local/pocketsphinx:en', { encoding: 'ogg-opus', sample_rate: 48000 });
      await c.sendBinary(bytes.subarray(0, 4000));
      let ff: ProcRow | undefined;
      assert.ok(await waitFor(() => (ff = descendants(process.pid).find((r) => r.comm === 'ffmpeg' && !before.has(r.pid))) !== undefined, 10_000), 'its ffmpeg runs');
      const table = procTable();
      const helper = spawners(table.filter((r) => r.pid === ff!.ppid))[0];
      assert.ok(helper, `ffmpeg ${ff!.pid} runs in a spawner helper`);
      process.kill(victim === 'helper' ? helper.pid : ff!.pid, 'SIGKILL');
      const err = await c.waitFor((m) => m.type === 'error', 15_000);
      // An engine fault, never the client's: on the unified dialect internal_error is reported as
      // the SLNG code provider_error (issue 9 §3), with the detail in `message`.
      assert.equal(err.code, 'provider_error', `${victim} killed: ${JSON.stringify(err)}`);
      assert.match(String(err.message), /ffmpeg|decoder/, `${victim} killed: ${JSON.stringify(err)}`);
      await c.closed;
    }
  });

  it('the STT ffmpeg decoder is a child of a spawner helper, not of the gateway', async () => {
    const c = await openSession(s, 'local/pocketsphinx:en', { encoding: 'ogg-opus', sample_rate: 48000 });
    c.sendBinary(fx.read(fx.encode(['asr_en/en_cmu_goforward.wav'], 'ogg-opus')).subarray(0, 4000)).catch(() => {});
    let ff: ProcRow[] = [];
    assert.ok(await waitFor(() => (ff = descendants(process.pid).filter((r) => r.comm === 'ffmpeg')).length > 0, 10_000), 'an ffmpeg decoder runs');
    const table = procTable();
    for (const f of ff) {
      assert.notEqual(f.ppid, process.pid, `ffmpeg ${f.pid} was forked by the gateway`);
      const parent = table.find((r) => r.pid === f.ppid);
      assert.ok(parent && spawners([parent]).length === 1, `ffmpeg ${f.pid}'s parent is a spawner helper: ${parent?.cmdline}`);
    }
    c.ws.close();
  });
});

describe('hardening: kill -9 of the gateway', () => {
  it('no helper or engine process survives the gateway, even frozen ones', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'voxgate-kill-'));
    const fx = new FixtureDir();
    const gw = spawn(process.execPath, [path.join(repoRoot(), 'bin', 'voxgate.cjs'), 'serve', '--port', '0', '--data-dir', dataDir, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let victims: ProcRow[] = [];
    try {
      let out = '';
      const port = await new Promise<number>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no listening line: ${out}`)), 60_000);
        gw.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
          if (m) {
            clearTimeout(t);
            resolve(Number(m[1]));
          }
        });
        gw.once('exit', (code) => reject(new Error(`serve exited ${code}: ${out}`)));
      });
      const key = /(vgk_[0-9a-f]{12}_[A-Za-z0-9_-]{43})/.exec(out)?.[1];
      assert.ok(key, 'admin key printed');
      const target = { wsUrl: `ws://127.0.0.1:${port}`, key } as TestServer;
      // Engine processes of both kinds: warm flite children (TTS) and an ffmpeg decoder (STT).
      const tts = await openTtsSession(target, 'local/flite:en', PCM);
      tts.send({ type: 'text', text: 'Warm up the engine.', flush: true });
      await tts.waitType('flushed');
      const stt = await openSession(target, 'local/pocketsphinx:en', { encoding: 'ogg-opus', sample_rate: 48000 });
      await stt.sendBinary(fx.read(fx.encode(['asr_en/en_cmu_goforward.wav'], 'ogg-opus')).subarray(0, 4000));
      assert.ok(
        await waitFor(() => {
          const d = descendants(gw.pid!);
          return d.some((r) => r.comm === 'flite') && d.some((r) => r.comm === 'ffmpeg');
        }, 15_000),
        'flite and ffmpeg run under the gateway',
      );
      victims = descendants(gw.pid!);
      // Frozen processes cannot run their own clean-up (IPC disconnect handlers, EOF on stdin).
      signalAll(victims, 'SIGSTOP');
      gw.kill('SIGKILL');
      await new Promise((r) => gw.once('exit', r));
      const gone = await waitFor(() => !victims.some(alive), GONE_MS);
      const left = victims.filter(alive);
      assert.ok(gone, `survived the gateway by ${GONE_MS} ms: ${left.map((v) => `${v.pid} ${v.comm} ${v.cmdline.slice(0, 60)}`).join('; ')}`);
      tts.ws.terminate();
      stt.ws.terminate();
    } finally {
      gw.kill('SIGKILL');
      signalAll(victims, 'SIGKILL');
      fx.cleanup();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
