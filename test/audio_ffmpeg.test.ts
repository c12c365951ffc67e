/**
 * The PCM decoder (src/audio/decoder.ts) and its backends — ffmpeg child process, mpg123 WASM, raw —
 * on real speech encoded at test time: output length and content match the source, container
 * sniffing, undecodable input, truncated files, spooled MP4, and process/temp-file cleanup.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createPcmDecoder, normalizeEncoding, type PcmDecoder, type PcmDecoderOptions } from '../src/audio/decoder.js';
import { FfmpegDecoder, ffmpegArgs } from '../src/audio/ffmpeg.js';
import { mp3Channels } from '../src/audio/mp3.js';
import { deinterleave } from '../src/audio/pcm.js';
import { OggOpusTracker, mp4Layout, sniffContainer } from '../src/audio/sniff.js';
import { VoxgateError } from '../src/util/errors.js';
import { readSharedWavSync } from './paths.js';
import { FixtureDir, ffmpegChildren, type FixtureFormat } from './audio_fixtures.js';
import { eventually } from './helpers.js';

const CLIP = 'asr_en/en_ls_1272-128104-0000.wav'; // 16 kHz mono, 5.855 s
const STEREO = 'diarization/librispeech_stereo_2spk.wav'; // 16 kHz stereo, 5 s, different speech per channel

interface Decoded {
  pcm: Int16Array;
  channels: number;
  error: VoxgateError | null;
  endError: unknown;
  decoder: PcmDecoder;
}

/** Decode `bytes` in `chunk`-byte writes; collects PCM, the `error` event and end()'s rejection. */
async function decodeAll(bytes: Uint8Array, o: Partial<PcmDecoderOptions> & { encoding: string }, chunk = 4096): Promise<Decoded> {
  const d = createPcmDecoder({ targetRate: 16000, outputChannels: 1, ...o });
  const parts: Int16Array[] = [];
  let error: VoxgateError | null = null;
  d.on('pcm', (p) => parts.push(p));
  d.on('error', (e) => (error = e));
  for (let i = 0; i < bytes.length; i += chunk) d.write(bytes.subarray(i, i + chunk));
  let endError: unknown = null;
  await d.end().catch((e) => (endError = e));
  const total = parts.reduce((n, p) => n + p.length, 0);
  const pcm = new Int16Array(total);
  let at = 0;
  for (const p of parts) {
    pcm.set(p, at);
    at += p.length;
  }
  return { pcm, channels: d.channels, error, endError, decoder: d };
}

/** Best normalised cross-correlation of `b` against `a` over ±`maxLag` samples (speech window of 1 s at 1 s). */
function bestCorrelation(a: Int16Array, b: Int16Array, maxLag = 1200): number {
  const start = 16000;
  const n = 16000;
  let best = -1;
  for (let lag = -maxLag; lag <= maxLag; lag += 1) {
    let sab = 0;
    let saa = 0;
    let sbb = 0;
    for (let i = 0; i < n; i++) {
      const x = a[start + i]!;
      const y = b[start + i + lag] ?? 0;
      sab += x * y;
      saa += x * x;
      sbb += y * y;
    }
    const c = sab / Math.sqrt(saa * sbb || 1);
    if (c > best) best = c;
  }
  return best;
}

describe('container sniffing', () => {
  let fx: FixtureDir;
  before(() => (fx = new FixtureDir()));
  after(() => fx.cleanup());

  it('recognises every container from its first bytes', () => {
    const expect: [FixtureFormat, string][] = [
      ['ogg-opus', 'ogg'],
      ['webm', 'webm'],
      ['mp3', 'mp3'],
      ['flac', 'flac'],
      ['m4a', 'mp4'],
      ['wav', 'wav'],
    ];
    for (const [format, kind] of expect) {
      const head = fx.read(fx.encode([CLIP], format)).subarray(0, 12);
      assert.deepEqual(sniffContainer(head), { kind }, format);
    }
    assert.deepEqual(sniffContainer(new Uint8Array([0x4f, 0x67])), { kind: 'need_more' });
    assert.deepEqual(sniffContainer(Buffer.from('hello world, not audio')), { kind: 'unknown' });
  });

  it('tells an MP4 with its index first from one with the index at the end', () => {
    assert.equal(mp4Layout(fx.read(fx.encode([CLIP], 'm4a-faststart'))).kind, 'streamable');
    assert.equal(mp4Layout(fx.read(fx.encode([CLIP], 'm4a'))).kind, 'index_at_end');
    assert.equal(mp4Layout(fx.read(fx.encode([CLIP], 'm4a')).subarray(0, 20)).kind, 'need_more');
    assert.equal(mp4Layout(Buffer.from('\x00\x00\x00\x04ftyp')).kind, 'invalid');
  });

  it('reads the channel count from the first MP3 frame header (after ID3)', () => {
    assert.equal(mp3Channels(fx.read(fx.encode([CLIP], 'mp3'))), 1);
    assert.equal(mp3Channels(fx.read(fx.transcode(STEREO, 'mp3'))), 2);
  });

  it('follows Ogg/Opus pages in any split: complete-page audio = granule − pre-skip; null for other Ogg codecs', () => {
    const ogg = fx.read(fx.encode([CLIP], 'ogg-opus', { gapSeconds: 0 }));
    for (const split of [1, 7, 333, 4096, ogg.length]) {
      const t = new OggOpusTracker();
      let last = -1;
      for (let i = 0; i < ogg.length; i += split) {
        t.push(ogg.subarray(i, i + split));
        const c = t.completeSeconds ?? -1;
        assert.ok(c >= last, 'monotonic');
        last = c;
      }
      assert.ok(Math.abs(t.completeSeconds! - 5.855) < 0.025, `split ${split}: ${t.completeSeconds}`);
    }
    const half = new OggOpusTracker();
    half.push(ogg.subarray(0, ogg.length >> 1));
    assert.ok(half.completeSeconds! > 2 && half.completeSeconds! < 4, String(half.completeSeconds));
    const flacInOgg = new OggOpusTracker();
    flacInOgg.push(fx.read(fx.transcode(CLIP, 'ogg-flac')));
    assert.equal(flacInOgg.completeSeconds, null);
  });

  it('normalises encoding spellings', () => {
    assert.equal(normalizeEncoding('OGG_OPUS'), 'ogg-opus');
    assert.equal(normalizeEncoding('m4a'), 'mp4');
    assert.equal(normalizeEncoding('speex'), null);
  });
});

describe('PCM decoder', () => {
  let fx: FixtureDir;
  const source = readSharedWavSync(CLIP);
  before(() => (fx = new FixtureDir()));
  after(() => fx.cleanup());

  const formats: [FixtureFormat, string, number][] = [
    // format, declared encoding, minimum correlation with the source
    ['ogg-opus', 'opus', 0.9],
    ['webm', 'opus', 0.9],
    ['mp3', 'mp3', 0.97],
    ['flac', 'flac', 0.999],
    ['m4a-faststart', 'mp4', 0.95],
    ['m4a', 'auto', 0.95],
    ['wav-float', 'auto', 0.999],
  ];
  for (const mode of ['stream', 'file'] as const) {
    for (const [format, encoding, minCorr] of formats) {
      it(`${mode} mode: ${format} as ${encoding} → 16 kHz mono of the source's length and content`, async () => {
        const bytes = fx.read(fx.encode([CLIP], format, { gapSeconds: 0 }));
        const r = await decodeAll(bytes, { encoding, mode });
        assert.equal(r.error, null, String(r.error));
        assert.equal(r.endError, null);
        assert.equal(r.channels, 1);
        assert.ok(Math.abs(r.pcm.length - source.length) <= 0.08 * 16000, `length ${r.pcm.length} vs ${source.length}`);
        const corr = bestCorrelation(source, r.pcm);
        assert.ok(corr >= minCorr, `correlation ${corr.toFixed(3)} < ${minCorr}`);
      });
    }
  }

  it('stream mode picks the in-process MP3 decoder, file mode ffmpeg; a spooled M4A leaves no temp file', async () => {
    const mp3 = fx.read(fx.encode([CLIP], 'mp3'));
    assert.equal((await decodeAll(mp3, { encoding: 'mp3', mode: 'stream' })).decoder.backend, 'mpg123');
    assert.equal((await decodeAll(mp3, { encoding: 'mp3', mode: 'file' })).decoder.backend, 'ffmpeg');
    const spoolsBefore = readdirSync(tmpdir()).filter((n) => n.startsWith('voxgate-spool-')).length;
    const r = await decodeAll(fx.read(fx.encode([CLIP], 'm4a')), { encoding: 'auto', mode: 'file' });
    assert.equal(r.decoder.backend, 'ffmpeg-spooled');
    assert.equal(readdirSync(tmpdir()).filter((n) => n.startsWith('voxgate-spool-')).length, spoolsBefore);
  });

  it("outputChannels 'keep' keeps a stereo file's channels apart (FLAC via ffmpeg, MP3 in-process, WAV raw)", async () => {
    const left = deinterleave(readSharedWavSync(STEREO), 2);
    for (const [format, mode] of [['flac', 'file'], ['mp3', 'stream'], ['wav', 'file']] as const) {
      const r = await decodeAll(fx.read(fx.transcode(STEREO, format)), { encoding: 'auto', mode, outputChannels: 'keep' });
      assert.equal(r.channels, 2, format);
      const [l, rr] = deinterleave(r.pcm, 2);
      assert.ok(bestCorrelation(left[0]!, l!) > 0.95, `${format}: left is left`);
      assert.ok(bestCorrelation(left[1]!, rr!) > 0.95, `${format}: right is right`);
      assert.ok(bestCorrelation(left[0]!, rr!) < 0.5, `${format}: channels are not mixed`);
    }
  });

  it('random bytes declared as opus fail on the first write, before any ffmpeg output', async () => {
    const d = createPcmDecoder({ encoding: 'opus', targetRate: 16000, outputChannels: 1 });
    const errors: VoxgateError[] = [];
    d.on('error', (e) => errors.push(e));
    d.write(randomBytes(512));
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.code, 'invalid_audio');
    assert.equal(errors[0]!.httpStatus, 400);
    assert.equal(errors[0]!.closeCode, 1008);
    await assert.rejects(d.end(), (e: VoxgateError) => e.code === 'invalid_audio');
    await eventually(() => ffmpegChildren().length === 0, 5000, 'the eager ffmpeg to exit');
  });

  it('high-bitrate input written faster than ffmpeg reads it is not mistaken for undecodable audio', async () => {
    // 96 kHz / 32-bit stereo FLAC and 48 kHz float WAV, all written at once in 64 KB pieces: the
    // no-output guard must count only the bytes ffmpeg was handed, not those queued in Node.
    for (const format of ['flac-hires', 'wav-float'] as const) {
      const bytes = fx.read(fx.encode([CLIP, CLIP, CLIP], format));
      assert.ok(bytes.length > 1_000_000);
      for (const mode of ['stream', 'file'] as const) {
        const r = await decodeAll(bytes, { encoding: 'auto', mode }, 65536);
        assert.equal(r.error, null, `${format} ${mode}: ${String(r.error)}`);
        assert.ok(r.pcm.length > 3 * 5.8 * 16000, `${format} ${mode}: ${r.pcm.length / 16000} s`);
      }
    }
  });

  it('auto: data with no known container → invalid_audio naming the accepted formats', async () => {
    const r = await decodeAll(Buffer.from('this is a text file, not audio at all'.repeat(20)), { encoding: 'auto', mode: 'file' });
    assert.equal(r.error?.code, 'invalid_audio');
    assert.match(r.error!.message, /WAV, FLAC, MP3/);
  });

  it('an empty upload is invalid_audio in file mode', async () => {
    const r = await decodeAll(new Uint8Array(0), { encoding: 'auto', mode: 'file' });
    assert.equal(r.error?.code, 'invalid_audio');
  });

  it('truncated files: an error in file mode (FLAC, WebM, WAV), tolerated in stream mode', async () => {
    for (const format of ['flac', 'webm', 'wav'] as const) {
      const bytes = fx.read(fx.encode([CLIP], format));
      const half = bytes.subarray(0, Math.floor(bytes.length / 2) + 1);
      const file = await decodeAll(half, { encoding: 'auto', mode: 'file' });
      assert.equal(file.error?.code, 'invalid_audio', `${format}: ${String(file.error)}`);
      assert.match(file.error!.message, /truncated/);
      if (format !== 'wav') {
        const stream = await decodeAll(half, { encoding: 'auto', mode: 'stream' });
        assert.equal(stream.error, null, `${format} in stream mode`);
        assert.ok(stream.pcm.length > 2 * 16000);
      }
    }
  });

  it('raw linear16 in file mode accepts any byte split (odd chunks), stream mode rejects odd frames', async () => {
    const bytes = Buffer.from(source.buffer, source.byteOffset, source.byteLength);
    const r = await decodeAll(bytes, { encoding: 'linear16', sampleRate: 16000, mode: 'file' }, 1001);
    assert.deepEqual(r.pcm, source);
    const d = createPcmDecoder({ encoding: 'linear16', sampleRate: 16000, targetRate: 16000, outputChannels: 1 });
    d.on('error', () => {});
    assert.throws(() => d.write(bytes.subarray(0, 1001)), (e: VoxgateError) => e.code === 'invalid_request');
    assert.equal(d.write(bytes.subarray(0, 1000)), true, 'the decoder stays usable');
  });

  it('flush() holds later writes until the PCM written before it has been emitted (exact for Ogg/Opus)', async () => {
    const bytes = fx.read(fx.encode(['asr_en/en_cmu_goforward.wav'], 'ogg-opus', { gapSeconds: 0 })); // 2.786 s
    const d = createPcmDecoder({ encoding: 'opus', targetRate: 16000, outputChannels: 1 });
    d.on('error', (e) => assert.fail(e));
    let samples = 0;
    d.on('pcm', (p) => (samples += p.length));
    d.write(bytes);
    const flushed = d.flush();
    d.write(bytes.subarray(0, 10)); // held until the flush resolves
    await flushed;
    const atFlush = samples;
    assert.ok(atFlush >= 2.76 * 16000, `PCM before the barrier: ${atFlush / 16000} s`);
    d.abort();
  });

  it('abort() kills ffmpeg at once; end() waits for its exit', async () => {
    const d = createPcmDecoder({ encoding: 'webm', targetRate: 16000, outputChannels: 1 });
    d.on('error', () => {});
    await eventually(() => d.pid !== undefined, 5000, 'the spawner to start ffmpeg');
    const pid = d.pid!;
    assert.ok(ffmpegChildren().includes(pid));
    d.abort();
    await eventually(() => !ffmpegChildren().includes(pid), 5000, 'ffmpeg to be killed');
    const e = createPcmDecoder({ encoding: 'flac', targetRate: 16000, outputChannels: 1 });
    e.on('error', () => {});
    e.write(fx.read(fx.encode([CLIP], 'flac')));
    await eventually(() => e.pid !== undefined, 5000, 'the spawner to start ffmpeg');
    const pid2 = e.pid!;
    await e.end();
    assert.ok(!existsSync(`/proc/${pid2}/stat`) || !ffmpegChildren().includes(pid2));
  });

  it('a missing ffmpeg binary is an internal_error, not a crash', async () => {
    const d = new FfmpegDecoder({ format: 'ogg', targetRate: 16000, outputChannels: 1, binary: '/nonexistent/ffmpeg' });
    const errors: VoxgateError[] = [];
    d.on('error', (e) => errors.push(e));
    d.write(Buffer.from('OggS'));
    await assert.rejects(d.end(), (e: VoxgateError) => e.code === 'internal_error' && /ffmpeg/.test(e.message));
    assert.equal(errors.length, 1);
  });

  it('ffmpeg arguments: always an explicit demuxer; the minimal-probe flags only when asked', () => {
    const live = ffmpegArgs({ format: 'ogg', targetRate: 16000, outputChannels: 1 });
    assert.deepEqual(live.slice(live.indexOf('-f'), live.indexOf('-f') + 2), ['-f', 'ogg']);
    for (const flag of ['-probesize', '-analyzeduration', 'nobuffer']) assert.ok(live.includes(flag), flag);
    const file = ffmpegArgs({ format: 'ogg', targetRate: 16000, outputChannels: 'keep', lowLatency: false });
    assert.ok(!file.includes('-probesize') && !file.includes('-ac'));
  });
});
