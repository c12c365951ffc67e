/**
 * TTS output encoding (src/audio/encode.ts, src/audio/ffmpeg_encode.ts): every encoding at several
 * rates is decoded back with ffmpeg to the expected duration (±5 %), PCM byte counts are exact,
 * WAV headers (PCM, μ-law, A-law) are read by ffmpeg and by our own parser, a slow sink
 * (backpressure) loses nothing, and abort kills the encoder.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { contentType, createEncoder, defaultSampleRate, supportedSampleRates, wavHeader, type TtsEncoding } from '../src/audio/encode.js';
import { bytesToInt16LE } from '../src/audio/pcm.js';
import { parseWavHeader } from '../src/audio/wav.js';
import { readSharedWavSync } from './paths.js';

/** 16 kHz real speech (LibriSpeech, 5.855 s). */
const SPEECH = readSharedWavSync('asr_en/en_ls_1272-128104-0000.wav');
const IN_RATE = 16000;

/** Decode `bytes` with ffmpeg to mono s16le at `rate`; `fmt` is ffmpeg's input format name. */
function ffmpegDecode(bytes: Buffer, fmt: string, rate: number): Int16Array {
  const raw = fmt === 'mulaw' || fmt === 'alaw' || fmt === 's16le' ? ['-f', fmt, '-ar', String(rate), '-ac', '1'] : ['-f', fmt];
  const out = execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', ...raw, '-i', 'pipe:0', '-f', 's16le', '-ac', '1', '-ar', String(rate), 'pipe:1'], { input: bytes, maxBuffer: 64 << 20 });
  return bytesToInt16LE(out.subarray(0, out.length - (out.length % 2)));
}

/** Encode SPEECH in engine-sized chunks into one buffer. */
async function encodeAll(encoding: TtsEncoding, rate: number, slowSink = false): Promise<{ bytes: Buffer; seconds: number; chunks: number }> {
  const parts: Buffer[] = [];
  const enc = createEncoder({
    encoding,
    sampleRate: rate,
    inputRate: IN_RATE,
    sink: (b) => {
      parts.push(b);
      if (slowSink) return new Promise((r) => setTimeout(r, 2));
    },
  });
  for (let o = 0; o < SPEECH.length; o += 3000) {
    const w = enc.write(SPEECH.subarray(o, o + 3000));
    if (w) await w;
  }
  await enc.end();
  return { bytes: Buffer.concat(parts), seconds: enc.seconds, chunks: parts.length };
}

const EXPECTED = SPEECH.length / IN_RATE;

describe('TTS output encoding', () => {
  it('linear16, mulaw and alaw at 8000–48000 Hz: exact byte counts, ffmpeg decodes the expected duration', async () => {
    for (const encoding of ['linear16', 'mulaw', 'alaw'] as const) {
      for (const rate of [8000, 16000, 22050, 24000, 44100, 48000]) {
        const { bytes, seconds, chunks } = await encodeAll(encoding, rate);
        const samples = Math.ceil((SPEECH.length * rate) / IN_RATE);
        const bps = encoding === 'linear16' ? 2 : 1;
        assert.equal(bytes.length, samples * bps, `${encoding}@${rate}: bytes = samples × ${bps}`);
        assert.ok(Math.abs(seconds - EXPECTED) < 1e-3, `${encoding}@${rate}: reported ${seconds} s`);
        assert.ok(chunks > 1, 'delivered in several chunks');
        const decoded = ffmpegDecode(bytes, encoding === 'linear16' ? 's16le' : encoding, rate);
        const d = decoded.length / rate;
        assert.ok(Math.abs(d - EXPECTED) / EXPECTED < 0.05, `${encoding}@${rate}: ffmpeg ${d} s vs ${EXPECTED} s`);
      }
    }
  });

  it('linear16 at the input rate is the input, bit for bit', async () => {
    const { bytes } = await encodeAll('linear16', IN_RATE);
    assert.deepEqual(bytesToInt16LE(bytes), SPEECH);
  });

  it('mp3 and opus (ffmpeg child) decode back to the expected duration ±5 % at several rates', async () => {
    for (const [encoding, fmt, rates] of [
      ['mp3', 'mp3', [8000, 16000, 22050, 24000, 44100, 48000]],
      ['opus', 'ogg', [8000, 16000, 24000, 48000]],
    ] as const) {
      for (const rate of rates) {
        const { bytes, seconds } = await encodeAll(encoding, rate);
        assert.ok(bytes.length > 1000, `${encoding}@${rate}: ${bytes.length} bytes`);
        assert.ok(Math.abs(seconds - EXPECTED) < 1e-3);
        if (encoding === 'mp3') assert.equal(bytes[0], 0xff, 'raw MPEG frames, no ID3 tag');
        else assert.equal(bytes.subarray(0, 4).toString('latin1'), 'OggS');
        const decoded = ffmpegDecode(bytes, fmt, rate);
        const d = decoded.length / rate;
        assert.ok(Math.abs(d - EXPECTED) / EXPECTED < 0.05, `${encoding}@${rate}: ffmpeg ${d} s vs ${EXPECTED} s`);
      }
    }
  });

  it('a slow sink (backpressure) loses nothing, for PCM and ffmpeg encoders', async () => {
    for (const encoding of ['linear16', 'opus'] as const) {
      const fast = await encodeAll(encoding, 24000);
      const slow = await encodeAll(encoding, 24000, true);
      if (encoding === 'linear16') assert.deepEqual(slow.bytes, fast.bytes);
      else {
        const a = ffmpegDecode(slow.bytes, 'ogg', 24000).length;
        const b = ffmpegDecode(fast.bytes, 'ogg', 24000).length;
        assert.equal(a, b, 'same decoded length');
      }
    }
  });

  it('WAV headers for linear16, mulaw and alaw are read by ffmpeg and by parseWavHeader', async () => {
    for (const encoding of ['linear16', 'mulaw', 'alaw'] as const) {
      const { bytes } = await encodeAll(encoding, 8000);
      const file = Buffer.concat([wavHeader(encoding, 8000, bytes.length), bytes]);
      const h = parseWavHeader(file);
      assert.equal(h.kind, 'wav');
      if (h.kind !== 'wav') continue;
      assert.equal(h.format, encoding === 'linear16' ? 'pcm_s16le' : encoding);
      assert.equal(h.sampleRate, 8000);
      assert.equal(h.dataLength, bytes.length);
      const d = ffmpegDecode(file, 'wav', 8000).length / 8000;
      assert.ok(Math.abs(d - EXPECTED) / EXPECTED < 0.01, `${encoding} WAV: ${d} s`);
      const streaming = Buffer.concat([wavHeader(encoding, 8000, null), bytes]);
      const hs = parseWavHeader(streaming);
      assert.equal(hs.kind === 'wav' && hs.dataLength, null, 'streaming header: unknown length');
      const ds = ffmpegDecode(streaming, 'wav', 8000).length / 8000;
      assert.ok(Math.abs(ds - EXPECTED) / EXPECTED < 0.01, `${encoding} streaming WAV: ${ds} s`);
    }
  });

  it('abort kills the ffmpeg encoder and drops its output', async () => {
    const parts: Buffer[] = [];
    const enc = createEncoder({ encoding: 'mp3', sampleRate: 24000, inputRate: IN_RATE, sink: (b) => void parts.push(b) });
    enc.write(SPEECH);
    enc.abort();
    await enc.end(); // resolves, does not throw
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(parts.length, 0);
  });

  it('rates, defaults and content types', () => {
    assert.deepEqual(supportedSampleRates('linear16'), [8000, 16000, 22050, 24000, 32000, 44100, 48000]);
    assert.deepEqual(supportedSampleRates('opus'), [8000, 16000, 24000, 48000]);
    assert.deepEqual(['linear16', 'mulaw', 'alaw', 'mp3', 'opus'].map((e) => defaultSampleRate(e as TtsEncoding)), [24000, 8000, 8000, 24000, 48000]);
    assert.equal(contentType('linear16', 24000, 'wav'), 'audio/wav');
    assert.match(contentType('linear16', 24000, 'none'), /^audio\/pcm; rate=24000/);
    assert.equal(contentType('mulaw', 8000, 'none'), 'audio/PCMU; rate=8000; channels=1');
    assert.equal(contentType('mp3', 24000, 'none'), 'audio/mpeg');
    assert.equal(contentType('opus', 48000, 'none'), 'audio/ogg; codecs=opus');
  });
});
