/**
 * `voxgate speak` and `voxgate voices` run as subprocesses: embedded engines by default, a running
 * server with `--url`; text from arguments or stdin; format from the extension or `--encoding`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseWavHeader } from '../src/audio/wav.js';
import { repoRoot, startTestServer, type TestServer } from './helpers.js';

const run = promisify(execFile);
const CLI = () => path.join(repoRoot(), 'bin', 'voxgate.cjs');

/** Run the CLI with `input` on stdin. */
function runWithStdin(args: string[], input: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI(), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    p.stdin.end(input);
  });
}

describe('voxgate speak / voices', () => {
  let dir: string;
  let s: TestServer;
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'voxgate-speak-'));
    s = await startTestServer();
  });
  after(async () => {
    await s.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('speak "text" -o out.wav writes a WAV at the voice native rate, locally (no server)', async () => {
    const out = path.join(dir, 'a.wav');
    const { stderr } = await run(process.execPath, [CLI(), 'speak', 'Hello there,', 'this is voxgate.', '-o', out], { timeout: 30000 });
    const h = parseWavHeader(readFileSync(out));
    assert.ok(h.kind === 'wav' && h.format === 'pcm_s16le' && h.sampleRate === 16000, JSON.stringify(h));
    const seconds = (h.kind === 'wav' ? h.dataLength! : 0) / 32000;
    assert.ok(seconds > 1 && seconds < 6, `${seconds} s`);
    assert.match(stderr, /16000 Hz linear16, voice kal16/);
  });

  it('reads stdin; --voice, --speed and the .mp3 extension are honoured; raw μ-law by --encoding', async () => {
    const mp3 = path.join(dir, 'b.mp3');
    const r = await runWithStdin(['speak', '-o', mp3, '--voice', 'slt', '--speed', '1.5'], 'The meeting has been moved to thursday afternoon.');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(mp3)[0], 0xff);
    assert.match(r.stderr, /mp3, voice slt/);
    const ul = path.join(dir, 'c.raw');
    const u = await runWithStdin(['speak', '-o', ul, '--encoding', 'mulaw', '--sample-rate', '8000', '--model', 'local/espeak-ng:multi', '--voice', 'hi'], 'नमस्ते');
    assert.equal(u.code, 0, u.stderr);
    const seconds = Number(/([\d.]+) s,/.exec(u.stderr)![1]);
    assert.ok(Math.abs(statSync(ul).size / 8000 - seconds) <= 0.001, 'raw μ-law: one byte per sample at 8 kHz');
  });

  it('--url uses a running server (POST /v1/tts/{model}) with the saved admin key', async () => {
    const out = path.join(dir, 'd.wav');
    const { stderr } = await run(process.execPath, [CLI(), 'speak', 'Served by the gateway.', '-o', out, '--url', `http://127.0.0.1:${s.port}`, '--data-dir', s.dataDir], { timeout: 30000 });
    const h = parseWavHeader(readFileSync(out));
    assert.ok(h.kind === 'wav' && h.sampleRate === 24000, 'the server default rate');
    assert.match(stderr, /24000 Hz linear16, voice kal16/);
  });

  it('errors: unknown voice lists the voices (exit 1), no text (exit 2)', async () => {
    const bad = await run(process.execPath, [CLI(), 'speak', 'x', '-o', path.join(dir, 'e.wav'), '--voice', 'darth']).catch((e: { code: number; stderr: string }) => e);
    assert.equal((bad as { code: number }).code, 1);
    assert.match((bad as { stderr: string }).stderr, /unknown voice "darth".*kal16, slt/);
    const none = await runWithStdin(['speak', '-o', path.join(dir, 'f.wav')], '   ');
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no text/);
  });

  it('voices lists every voice with languages and native rate, locally and from a server', async () => {
    const local = JSON.parse((await run(process.execPath, [CLI(), 'voices', '--json'])).stdout) as { model: string; id: string; languages: string[]; sample_rate: number; default: boolean }[];
    assert.deepEqual(local.find((v) => v.id === 'kal16' && v.model === 'local/flite:en'), { model: 'local/flite:en', id: 'kal16', languages: ['en-us', 'en'], sample_rate: 16000, gender: 'male', name: 'Kal (US English male, diphone, 16 kHz; fastest)', default: true } as unknown);
    assert.ok(local.some((v) => v.id === 'hi' && v.sample_rate === 22050));
    const table = await run(process.execPath, [CLI(), 'voices', '--language', 'hi', '--url', `http://127.0.0.1:${s.port}`]);
    assert.match(table.stdout, /^MODEL\s+VOICE\s+LANGUAGES\s+RATE\s+NAME/);
    assert.match(table.stdout, /local\/espeak-ng:multi\s+hi\s+hi\s+22050\s+Hindi/);
    assert.equal(table.stdout.trim().split('\n').length, 2, 'header + the one Hindi voice');
  });
});
