/**
 * test/support/processes.ts: a real `voxgate serve` child starts on port 0 with its own data dir and
 * config, answers with its saved admin key, serves a real session, and is always cleaned up.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import WebSocket from 'ws';
import { RecordingClient, loadClip } from './helpers.js';
import { startVoxgateProcess, stopAllProcesses } from './support/processes.js';

describe('voxgate child processes', () => {
  after(() => stopAllProcesses());

  it('a worker labelled with its region serves a unified session and stops cleanly on SIGTERM', async () => {
    const w = await startVoxgateProcess({ role: 'worker', region: 'eu-north-1' });
    assert.ok(w.port > 0 && w.key.length > 10);
    assert.equal(w.name, 'worker-eu-north-1');
    assert.equal(((await w.status()) as { sessions: number }).sessions, 0);

    const clip = await loadClip('asr_en/en_ls_1272-128104-0000.wav');
    const ws = new WebSocket(`${w.wsUrl}/v1/stt/local/pocketsphinx:en`, { headers: { Authorization: `Bearer ${w.key}` } });
    const c = new RecordingClient(ws);
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ type: 'init', config: { language: 'en', sample_rate: clip.sampleRate, encoding: 'linear16' } }));
    await c.waitType('ready');
    assert.equal((await w.status()).sessions, 1);
    await w.waitForLog((l) => l.json?.msg === 'session ready');
    for (let o = 0; o < clip.bytes.length; o += 32000) ws.send(clip.bytes.subarray(o, o + 32000));
    ws.send(JSON.stringify({ type: 'close' }));
    const fin = await c.waitFor((m) => m.type === 'final_transcript' && typeof m.transcript === 'string' && m.transcript.length > 0, 30000);
    assert.ok((fin.transcript as string).split(' ').length > 3);
    await c.closed;

    await w.stop();
    assert.equal(w.alive, false);
    assert.equal(w.exit?.code, 0, `graceful exit; log:\n${w.tail()}`);
    assert.equal(existsSync(w.dataDir), false);
  });

  it('SIGKILL (a crash) is observable; stop() afterwards still cleans up', async () => {
    const w = await startVoxgateProcess({ role: 'worker', region: 'us-east-1' });
    w.kill();
    await w.waitExit();
    assert.equal(w.exit?.signal, 'SIGKILL');
    await assert.rejects(w.status());
    await w.stop();
    assert.equal(existsSync(w.dataDir), false);
  });

  it('a config the server rejects fails the start with the child output in the error', async () => {
    await assert.rejects(startVoxgateProcess({ role: 'gateway', config: { notAKey: 1 } }), /exited during start-up \(code 1[\s\S]*Unrecognized key: "notAKey"/);
  });
});
