/**
 * The `voxgate` CLI run as a subprocess: `transcribe` against a running server (with the key it
 * finds in the data directory), and `keys create|list|revoke`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import path from 'node:path';
import { repoRoot, sharedData, startTestServer, type TestServer } from './helpers.js';

const run = promisify(execFile);
const CLI = () => path.join(repoRoot(), 'bin', 'voxgate.cjs');

describe('voxgate CLI', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(async () => {
    await s.cleanup();
  });

  it('transcribe --fast prints each final on its own line, using the saved admin key', async () => {
    const { stdout, stderr } = await run(process.execPath, [CLI(), 'transcribe', sharedData('asr_en/en_cmu_goforward.wav'), '--url', s.wsUrl, '--fast', '--data-dir', s.dataDir], { timeout: 30000 });
    assert.match(stdout, /forward/, stderr);
    assert.ok(!stdout.includes('\r'), 'no interim line redraws when stdout is not a terminal');
  });

  it('transcribe at real-time pace with --json prints server messages as JSON lines', async () => {
    const t0 = Date.now();
    const { stdout } = await run(process.execPath, [CLI(), 'transcribe', sharedData('asr_en/en_cmu_cards_001.wav'), '--url', s.wsUrl, '--json', '--key', s.key], { timeout: 30000 });
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string });
    assert.equal(lines[0]!.type, 'ready');
    assert.ok(lines.some((l) => l.type === 'final_transcript'));
    assert.ok(Date.now() - t0 >= 1000, 'a 1.1 s clip streamed in real time takes at least 1 s');
  });

  it('transcribe with a wrong key fails clearly', async () => {
    const r = await run(process.execPath, [CLI(), 'transcribe', sharedData('asr_en/en_cmu_cards_001.wav'), '--url', s.wsUrl, '--key', 'wrong'], { timeout: 30000 }).catch((e: { code: number; stderr: string }) => e);
    assert.equal((r as { code: number }).code, 1);
    assert.match((r as { stderr: string }).stderr, /401/);
  });

  it('keys create | list | revoke', async () => {
    const created = await run(process.execPath, [CLI(), 'keys', 'create', '--name', 'ci-bot', '--data-dir', s.dataDir]);
    const key = created.stdout.trim();
    assert.match(key, /^vgk_[0-9a-f]{12}_/);
    assert.ok(s.keys.verify(key), 'the running server accepts the new key');
    const listed = await run(process.execPath, [CLI(), 'keys', 'list', '--data-dir', s.dataDir]);
    assert.match(listed.stdout, /ci-bot/);
    assert.ok(!listed.stdout.includes(key.split('_')[2]!), 'list never prints secrets');
    const id = key.split('_')[1]!;
    await run(process.execPath, [CLI(), 'keys', 'revoke', id, '--data-dir', s.dataDir]);
    assert.equal(s.keys.verify(key), null, 'revocation takes effect on the running server');
  });

  it('serve: first start prints and saves an admin key, serves with a 16-thread decode pool, stops on SIGTERM', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'voxgate-serve-'));
    const child = spawn(process.execPath, [CLI(), 'serve', '--port', '0', '--data-dir', dataDir, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      const port = await new Promise<number>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no listening line: ${out}`)), 30000);
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
          if (m) {
            clearTimeout(t);
            resolve(Number(m[1]));
          }
        });
        child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${out}`)));
      });
      const printed = /(vgk_[0-9a-f]{12}_[A-Za-z0-9_-]{43})/.exec(out)?.[1];
      assert.ok(printed, 'the admin key is printed once on first start');
      assert.equal(readFileSync(path.join(dataDir, 'admin.key'), 'utf8').trim(), printed, 'and saved for the local CLI');
      // libuv's pool is sized before the ESM loader starts it: 16 workers, not Node's default 4.
      assert.ok(readdirSync(`/proc/${child.pid}/task`).length >= 20, 'UV_THREADPOOL_SIZE took effect');
      const { stdout } = await run(process.execPath, [CLI(), 'transcribe', sharedData('asr_en/en_cmu_goforward.wav'), '--url', `ws://127.0.0.1:${port}`, '--fast', '--data-dir', dataDir], { timeout: 30000 });
      assert.match(stdout, /forward/);
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
