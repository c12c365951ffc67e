/**
 * `segment_end` follows the segment's last audio byte, for every output encoding (issue 9 §2;
 * protocols.md §1.5 "Per utterance: optional `segment_start` → audio → optional `segment_end`").
 *
 * For each encoding a two-sentence utterance is spoken (pacing off) and the recorded wire is
 * checked: every audio frame lies between a `segment_start` and its `segment_end`; no audio comes
 * between a `segment_end` and the next `segment_start`/`audio_end`; every segment carries audio.
 * For mp3/opus each segment's bytes must decode on their own (ffmpeg) to most of the segment, so
 * the encoder's output for a segment really was flushed before its `segment_end`; the whole
 * utterance still decodes to `audio_end.duration` ±5 %.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { ttsServerMessageSchema } from '../src/protocol/tts-unified/schema.js';
import type { TestServer } from './helpers.js';
import { openTtsSession, startTtsServer, TtsRecorder } from './tts_helpers.js';

const TWO_SENTENCES = 'The weather today will be sunny with a high of seventy degrees. Please call me back when you get home tonight.';

function decodedSeconds(bytes: Buffer, fmt: string, rate: number): number {
  const out = execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', fmt, '-i', 'pipe:0', '-f', 's16le', '-ac', '1', '-ar', String(rate), 'pipe:1'], { input: bytes, maxBuffer: 64 << 20 });
  return out.length / 2 / rate;
}

/** Split the recorded frames into segments; asserts the marker/audio structure. */
function segments(c: TtsRecorder): { id: string; audio: Buffer }[] {
  const out: { id: string; audio: Buffer }[] = [];
  let open: { id: string; from: number } | null = null;
  for (let i = 0; i < c.frames.length; i++) {
    const f = c.frames[i]!;
    if (TtsRecorder.isAudio(f)) {
      assert.ok(open, `audio frame ${i} outside a segment: ${c.describe()}`);
      continue;
    }
    if (f.kind !== 'json') continue;
    if (f.m.type === 'segment_start') {
      assert.equal(open, null, 'segments do not nest');
      open = { id: f.m.segment_id as string, from: i + 1 };
    } else if (f.m.type === 'segment_end') {
      assert.ok(open && open.id === f.m.segment_id, `segment_end ${String(f.m.segment_id)} matches its start`);
      out.push({ id: open.id, audio: c.audio(open.from, i) });
      open = null;
    }
  }
  assert.equal(open, null, 'every segment ended');
  return out;
}

describe('segment_end follows the segment’s last audio byte', () => {
  let s: TestServer;
  before(async () => {
    s = await startTtsServer();
  });
  after(async () => {
    await s.cleanup();
  });

  const cases = [
    { encoding: 'linear16', rate: 24000, bytesPerSecond: 48000 },
    { encoding: 'mulaw', rate: 8000, bytesPerSecond: 8000 },
    { encoding: 'alaw', rate: 22050, bytesPerSecond: 22050 },
    { encoding: 'mp3', rate: 24000, fmt: 'mp3' },
    { encoding: 'opus', rate: 48000, fmt: 'ogg' },
  ] as const;

  for (const k of cases) {
    for (const model of k.encoding === 'linear16' || k.encoding === 'mp3' ? ['local/flite:en', 'local/flite:en-base64'] : ['local/flite:en']) {
      it(`${k.encoding} at ${k.rate} Hz on ${model}`, async () => {
        const c = await openTtsSession(s, model, { voice: 'kal16', config: { encoding: k.encoding, sample_rate: k.rate, pacing: false } });
        c.send({ type: 'text', text: TWO_SENTENCES, flush: true });
        const fl = await c.waitType('flushed', 30000);
        for (const m of c.messages) assert.ok(ttsServerMessageSchema.safeParse(m).success, JSON.stringify(m));
        const segs = segments(c);
        assert.deepEqual(
          segs.map((g) => g.id),
          ['seg_001', 'seg_002'],
        );
        for (const g of segs) assert.ok(g.audio.length > 0, `${g.id} carries audio`);
        const ae = c.frames.findIndex((f) => f.kind === 'json' && f.m.type === 'audio_end');
        assert.ok(ae > 0 && ae < fl, 'audio_end before flushed');
        const duration = c.json(ae).duration as number;
        const all = c.audio(0, fl);
        if ('bytesPerSecond' in k) {
          assert.ok(Math.abs(all.length / k.bytesPerSecond - duration) <= 0.001, `bytes ${all.length} ≙ audio_end ${duration} s`);
        } else {
          const whole = decodedSeconds(all, k.fmt, k.rate);
          assert.ok(Math.abs(whole - duration) / duration < 0.05, `${k.encoding} decodes to ${whole} s, audio_end says ${duration} s`);
          for (const g of segs) {
            const sec = decodedSeconds(g.audio, k.fmt, k.rate);
            assert.ok(sec > duration / 2 / 2, `${g.id}'s own bytes decode to ${sec} s (of ≈${(duration / 2).toFixed(2)} s): its audio came after segment_end`);
          }
        }
        c.ws.close();
      });
    }
  }
});
