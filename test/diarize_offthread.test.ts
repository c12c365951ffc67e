/**
 * Pre-recorded diarization runs off the event loop (src/diarize/offload.ts): the offline clustering
 * of a long file (RTF ≈ 0.01, seconds of CPU for minutes of audio) must not stall the live sessions
 * sharing the gateway's event loop. The STT engine is the scripted fake, so the only heavy work of
 * the request is the diarization; the test watches the event loop of the process the gateway runs in.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../src/config/config.js';
import { stopDiarizeWorker } from '../src/diarize/offload.js';
import { sharedData, startConfiguredServer, type TestServer } from './helpers.js';
import { parseWavHeader } from '../src/audio/wav.js';

/** A WAV of `times` × the AMI dev file (30 s, two speakers): 16 kHz mono linear16. */
function longWav(times: number): Buffer {
  const buf = readFileSync(sharedData('diarization/ami_pyannote_dev00.wav'));
  const h = parseWavHeader(buf);
  if (h.kind !== 'wav') throw new Error('not a wav');
  const data = buf.subarray(h.dataOffset, h.dataOffset + (h.dataLength ?? buf.length - h.dataOffset));
  const body = Buffer.concat(Array.from({ length: times }, () => data));
  const head = Buffer.alloc(44);
  head.write('RIFF', 0);
  head.writeUInt32LE(36 + body.length, 4);
  head.write('WAVEfmt ', 8);
  head.writeUInt32LE(16, 16);
  head.writeUInt16LE(1, 20);
  head.writeUInt16LE(1, 22);
  head.writeUInt32LE(16000, 24);
  head.writeUInt32LE(32000, 28);
  head.writeUInt16LE(2, 32);
  head.writeUInt16LE(16, 34);
  head.write('data', 36);
  head.writeUInt32LE(body.length, 40);
  return Buffer.concat([head, body]);
}

describe('pre-recorded diarization off the event loop', () => {
  let gw: TestServer;
  before(async () => {
    const base = loadConfig();
    gw = await startConfiguredServer({
      ...base,
      engines: { fk: { type: 'fake', script: { steps: [{ at: 1, final: { transcript: 'one two', words: [{ word: 'one', start: 0.1, end: 0.4 }, { word: 'two', start: 0.5, end: 0.9 }] } }] } } },
      stt: { ...base.stt, models: [{ code: 'test/fake:diar', engine: 'fk', dialect: 'unified', options: {}, aliases: [] }] },
    });
  });
  after(async () => {
    await gw.cleanup();
    await stopDiarizeWorker();
  });

  it('a 5-minute file with diarize=true: labelled words come back, and the event loop never stalls for the clustering', async () => {
    const wav = longWav(10);
    let last = performance.now();
    let maxGap = 0;
    const tick = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
    }, 10);
    try {
      const res = await fetch(`http://127.0.0.1:${gw.port}/v1/stt/test/fake:diar?diarize=true`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${gw.key}`, 'Content-Type': 'audio/wav' },
        body: new Uint8Array(wav),
      });
      const text = await res.text();
      assert.equal(res.status, 200, text);
      assert.match(text, /"speaker"/, 'words carry speaker labels');
    } finally {
      clearInterval(tick);
    }
    // Inline, the clustering of 300 s of speech holds the loop for seconds (RTF ≈ 0.01 → ~3 s here).
    assert.ok(maxGap < 1000, `the event loop stalled for ${maxGap.toFixed(0)} ms`);
  });
});

describe('the diarization worker thread', () => {
  it('keeps the process alive while a job is pending and never after: a script that diarizes once gets its turns and exits by itself', async () => {
    const url = new URL('../src/diarize/offload.js', import.meta.url).href;
    const script = `
      const { diarizeOffThread } = await import(${JSON.stringify(url)});
      const pcm = new Int16Array(16000 * 3).map((_, i) => Math.round(3000 * Math.sin(i / 10)));
      const turns = await diarizeOffThread(pcm, 16000, {});
      console.log('turns ' + turns.length);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += String(d)));
    const code = await new Promise<number | string>((resolve) => {
      const t = setTimeout(() => {
        child.kill('SIGKILL');
        resolve('still running after 60 s');
      }, 60_000);
      child.on('exit', (c) => {
        clearTimeout(t);
        resolve(c ?? -1);
      });
    });
    // Before: an idle worker's port kept the process alive forever (the test runner hung on the file);
    // a worker unref'd while a job was pending let the process exit before the answer (exit 13).
    assert.equal(code, 0, `exit ${code}; stdout ${out}`);
    assert.match(out, /^turns \d+/m);
  });
});
