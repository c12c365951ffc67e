/** Tests of src/audio/wav.ts: header parsing, live-stream header sniffing, file decoding and encoding. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeAlaw, decodeMulaw } from '../src/audio/g711.js';
import { encodeWav, parseWavHeader, readWavFile, RiffSniffer, WavFormatError, type WavHeader } from '../src/audio/wav.js';
import { packageRoot } from '../src/util/paths.js';

const SHARED_DATA = path.resolve(packageRoot(), '../shared/data');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'voxgate-wav-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A RIFF chunk with its pad byte when the body is odd-sized. */
function chunk(id: string, body: Uint8Array, declaredSize = body.length): Buffer {
  const head = Buffer.alloc(8);
  head.write(id, 0, 'latin1');
  head.writeUInt32LE(declaredSize, 4);
  return Buffer.concat([head, body, Buffer.alloc(body.length % 2)]);
}

interface FmtSpec {
  tag: number;
  channels: number;
  rate: number;
  bits: number;
  /** Write WAVE_FORMAT_EXTENSIBLE with this sub-format tag. */
  subTag?: number;
  badGuid?: boolean;
  blockAlign?: number;
}

function fmt(spec: FmtSpec): Buffer {
  const ext = spec.subTag !== undefined;
  const body = Buffer.alloc(ext ? 40 : 16);
  const blockAlign = spec.blockAlign ?? (spec.channels * spec.bits) / 8;
  body.writeUInt16LE(ext ? 0xfffe : spec.tag, 0);
  body.writeUInt16LE(spec.channels, 2);
  body.writeUInt32LE(spec.rate, 4);
  body.writeUInt32LE(spec.rate * blockAlign, 8);
  body.writeUInt16LE(blockAlign, 12);
  body.writeUInt16LE(spec.bits, 14);
  if (ext) {
    body.writeUInt16LE(22, 16);
    body.writeUInt16LE(spec.bits, 18);
    body.writeUInt32LE(spec.channels === 2 ? 3 : 4, 20);
    body.writeUInt16LE(spec.subTag!, 24);
    Buffer.from([0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, spec.badGuid ? 0 : 0x71]).copy(body, 26);
  }
  return chunk('fmt ', body);
}

function riff(...chunks: Buffer[]): Buffer {
  const body = Buffer.concat([Buffer.from('WAVE', 'latin1'), ...chunks]);
  return Buffer.concat([chunk('RIFF', body).subarray(0, 8), body]);
}

const PCM16_MONO: FmtSpec = { tag: 1, channels: 1, rate: 16000, bits: 16 };

test('parses a canonical 44-byte header', () => {
  const file = encodeWav(Int16Array.of(1, -2, 3), 16000, 1);
  assert.deepEqual(parseWavHeader(file), {
    kind: 'wav',
    format: 'pcm_s16le',
    sampleRate: 16000,
    channels: 1,
    bitsPerSample: 16,
    dataOffset: 44,
    dataLength: 6,
  });
});

test('skips LIST and odd-sized chunks (with pad byte) before fmt and data', () => {
  const list = chunk('LIST', Buffer.from('INFOISFT\x05\x00\x00\x00test\x00', 'latin1'));
  const odd = chunk('junk', Buffer.from([1, 2, 3]));
  const file = riff(list, odd, fmt({ tag: 3, channels: 2, rate: 48000, bits: 32 }), odd, chunk('data', Buffer.alloc(16)));
  const h = parseWavHeader(file);
  assert.equal(h.kind, 'wav');
  const wav = h as WavHeader;
  assert.equal(wav.format, 'float32');
  assert.equal(wav.channels, 2);
  assert.equal(wav.sampleRate, 48000);
  assert.equal(wav.dataLength, 16);
  assert.equal(wav.dataOffset, file.length - 16);
  assert.equal(odd.length, 12);
});

test('WAVE_FORMAT_EXTENSIBLE takes its format from the sub-format GUID', () => {
  for (const [subTag, bits, format] of [
    [1, 24, 'pcm_s24le'],
    [1, 16, 'pcm_s16le'],
    [3, 32, 'float32'],
    [7, 8, 'mulaw'],
    [6, 8, 'alaw'],
  ] as const) {
    const h = parseWavHeader(riff(fmt({ tag: 0, channels: 2, rate: 44100, bits, subTag }), chunk('data', Buffer.alloc(0))));
    assert.equal(h.kind === 'wav' && h.format, format);
  }
  const bad = parseWavHeader(riff(fmt({ ...PCM16_MONO, subTag: 1, badGuid: true }), chunk('data', Buffer.alloc(0))));
  assert.equal(bad.kind, 'invalid');
});

test('data sizes 0 and 0xFFFFFFFF mean unknown length (streamed)', () => {
  for (const size of [0, 0xffffffff]) {
    const h = parseWavHeader(riff(fmt(PCM16_MONO), chunk('data', Buffer.alloc(0), size)));
    assert.equal(h.kind === 'wav' && h.dataLength, null);
  }
});

test('every proper prefix of a valid header needs more', () => {
  const header = riff(chunk('LIST', Buffer.alloc(30)), fmt(PCM16_MONO), chunk('data', Buffer.alloc(0), 1000));
  for (let n = 0; n < header.length; n++) {
    assert.deepEqual(parseWavHeader(header.subarray(0, n)), { kind: 'need_more' }, `prefix of ${n} bytes`);
  }
  assert.equal(parseWavHeader(header).kind, 'wav');
});

test('non-RIFF bytes are not WAV', () => {
  for (const bytes of [Buffer.from('OggS'), Buffer.from('ID3\x04'), Buffer.from([0, 0, 1, 0]), Buffer.from('RX'), Buffer.from('x')]) {
    assert.deepEqual(parseWavHeader(bytes), { kind: 'not_wav' });
  }
});

test('broken or unsupported RIFF headers are invalid with a reason', () => {
  const data = chunk('data', Buffer.alloc(4));
  const cases: [string, Buffer][] = [
    ['AVI form', Buffer.concat([Buffer.from('RIFF\x00\x00\x00\x00AVI LIST', 'latin1'), Buffer.alloc(8)])],
    ['data before fmt', riff(data, fmt(PCM16_MONO))],
    ['MP3 format tag', riff(fmt({ tag: 0x55, channels: 1, rate: 16000, bits: 0, blockAlign: 1 }), data)],
    ['12-bit PCM', riff(fmt({ tag: 1, channels: 1, rate: 16000, bits: 12, blockAlign: 2 }), data)],
    ['64-bit float', riff(fmt({ tag: 3, channels: 1, rate: 16000, bits: 64 }), data)],
    ['16-bit μ-law', riff(fmt({ tag: 7, channels: 1, rate: 8000, bits: 16 }), data)],
    ['block align mismatch', riff(fmt({ ...PCM16_MONO, blockAlign: 4 }), data)],
    ['zero channels', riff(fmt({ ...PCM16_MONO, channels: 0, blockAlign: 0 }), data)],
    ['zero rate', riff(fmt({ ...PCM16_MONO, rate: 0 }), data)],
    ['short fmt', riff(chunk('fmt ', Buffer.alloc(14)), data)],
    ['RIFX', Buffer.from('RIFX\x00\x00\x00\x00WAVE', 'latin1')],
    ['RF64', Buffer.from('RF64\xff\xff\xff\xffWAVE', 'latin1')],
  ];
  for (const [name, bytes] of cases) {
    const h = parseWavHeader(bytes);
    assert.equal(h.kind, 'invalid', name);
    assert.ok(h.kind === 'invalid' && h.reason.length > 0, name);
  }
});

test('RiffSniffer strips a header delivered one byte at a time, then passes through', () => {
  const file = encodeWav(Int16Array.of(1, 2, 3, 4), 8000, 2);
  const s = new RiffSniffer();
  for (let i = 0; i < 43; i++) assert.deepEqual(s.push(file.subarray(i, i + 1)), { pending: true });
  const done = s.push(file.subarray(43, 46));
  assert.ok(!('pending' in done));
  assert.equal(done.header?.sampleRate, 8000);
  assert.equal(done.header?.channels, 2);
  assert.deepEqual([...done.audio], [1, 0]);
  const rest = s.push(file.subarray(46));
  assert.ok(!('pending' in rest) && rest.header === null);
  assert.deepEqual(Buffer.from(rest.audio), file.subarray(46));
});

test('RiffSniffer passes raw audio through untouched, including a partial magic', () => {
  const s = new RiffSniffer();
  assert.deepEqual(s.push(Buffer.from('RI')), { pending: true });
  const decided = s.push(Buffer.from('xx\x01'));
  assert.ok(!('pending' in decided) && decided.header === null);
  assert.deepEqual(Buffer.from(decided.audio), Buffer.from('RIxx\x01'));
  const frame = new Uint8Array([82, 73, 70, 70]); // "RIFF" later in the stream is just audio
  assert.deepEqual(s.push(frame), { header: null, audio: frame });

  const raw = new RiffSniffer();
  const pcm = new Uint8Array([0, 1, 2, 3]);
  assert.equal((raw.push(pcm) as { audio: Uint8Array }).audio, pcm);
});

test('RiffSniffer reports an invalid header, and keeps failing', () => {
  const s = new RiffSniffer();
  assert.throws(() => s.push(riff(fmt({ tag: 0x55, channels: 1, rate: 16000, bits: 0, blockAlign: 1 }), chunk('data', Buffer.alloc(0)))), WavFormatError);
  assert.throws(() => s.push(new Uint8Array(10)), WavFormatError);
});

test('RiffSniffer gives up on a header longer than 64 KiB', () => {
  const s = new RiffSniffer();
  const start = riff(chunk('LIST', Buffer.alloc(0), 1 << 20));
  assert.deepEqual(s.push(start), { pending: true });
  let pushed = start.length;
  const frame = Buffer.alloc(4096);
  while (pushed + frame.length <= RiffSniffer.MAX_HEADER_BYTES) {
    assert.deepEqual(s.push(frame), { pending: true });
    pushed += frame.length;
  }
  assert.throws(() => s.push(frame), (e: unknown) => e instanceof WavFormatError && /64|65536/.test(e.message));
  assert.throws(() => s.push(frame), WavFormatError);
});

test('RiffSniffer on a real file split in frames yields exactly the data bytes', () => {
  const file = readFileSync(path.join(SHARED_DATA, 'asr_en/en_cmu_goforward.wav'));
  const s = new RiffSniffer();
  const out: Uint8Array[] = [];
  let header: WavHeader | null = null;
  for (let i = 0; i < file.length; i += 30) {
    const r = s.push(file.subarray(i, i + 30));
    if ('pending' in r) continue;
    header ??= r.header;
    out.push(r.audio);
  }
  assert.equal(header?.dataOffset, 44);
  assert.deepEqual(Buffer.concat(out), file.subarray(44));
});

test('readWavFile reads a real 16 kHz mono file', async () => {
  const wav = await readWavFile(path.join(SHARED_DATA, 'asr_en/en_cmu_goforward.wav'));
  assert.equal(wav.sampleRate, 16000);
  assert.equal(wav.channels, 1);
  assert.equal(wav.samples.length, (89204 - 44) / 2);
  assert.deepEqual([...wav.samples.subarray(0, 2)], [-10, -15]);
});

async function readBack(name: string, spec: FmtSpec, data: Buffer, declared?: number) {
  const file = path.join(tmp, name);
  writeFileSync(file, riff(fmt(spec), chunk('data', data, declared ?? data.length)));
  return readWavFile(file);
}

test('readWavFile converts u8, s24, s32, float32, μ-law and A-law to s16', async () => {
  const u8 = await readBack('u8.wav', { tag: 1, channels: 1, rate: 8000, bits: 8 }, Buffer.from([0, 128, 255, 129]));
  assert.deepEqual([...u8.samples], [-32768, 0, 32512, 256]);

  const s24 = Buffer.alloc(15);
  [0x7fffff, -0x800000, 128, -129, 0x123456].forEach((v, i) => s24.writeIntLE(v, i * 3, 3));
  const r24 = await readBack('s24.wav', { tag: 1, channels: 1, rate: 16000, bits: 24, subTag: 1 }, s24);
  assert.deepEqual([...r24.samples], [32767, -32768, 1, -1, 0x1234]);

  const s32 = Buffer.alloc(12);
  [0x7fffffff, -0x80000000, 100 * 65536 + 32768].forEach((v, i) => s32.writeInt32LE(v, i * 4));
  assert.deepEqual([...(await readBack('s32.wav', { tag: 1, channels: 1, rate: 16000, bits: 32 }, s32)).samples], [32767, -32768, 101]);

  const f32 = Buffer.alloc(20);
  [0.5, -1, 1, 2, -0.25].forEach((v, i) => f32.writeFloatLE(v, i * 4));
  assert.deepEqual([...(await readBack('f32.wav', { tag: 3, channels: 1, rate: 16000, bits: 32 }, f32)).samples], [16384, -32768, 32767, 32767, -8192]);

  const codes = Buffer.from([0x00, 0x55, 0x80, 0xd5, 0xff]);
  assert.deepEqual((await readBack('mu.wav', { tag: 7, channels: 1, rate: 8000, bits: 8 }, codes)).samples, decodeMulaw(codes));
  assert.deepEqual((await readBack('a.wav', { tag: 6, channels: 1, rate: 8000, bits: 8 }, codes)).samples, decodeAlaw(codes));
});

test('readWavFile stops at whole frames of a truncated or streamed data chunk', async () => {
  const stereo = { tag: 1, channels: 2, rate: 16000, bits: 16 };
  const data = Buffer.from([1, 0, 2, 0, 3, 0]); // 1 whole 4-byte frame + 2 bytes
  assert.deepEqual([...(await readBack('trunc.wav', stereo, data, 1000)).samples], [1, 2]);
  assert.deepEqual([...(await readBack('stream.wav', stereo, data, 0xffffffff)).samples], [1, 2]);
});

test('readWavFile rejects non-WAV and truncated files', async () => {
  const raw = path.join(tmp, 'raw.pcm');
  writeFileSync(raw, Buffer.alloc(100));
  await assert.rejects(readWavFile(raw), WavFormatError);
  const short = path.join(tmp, 'short.wav');
  writeFileSync(short, encodeWav(Int16Array.of(1), 16000, 1).subarray(0, 30));
  await assert.rejects(readWavFile(short), /truncated/);
});

test('encodeWav → readWavFile round-trips interleaved stereo', async () => {
  const samples = Int16Array.from({ length: 2000 }, (_, i) => ((i * 7919) % 65536) - 32768);
  const file = path.join(tmp, 'stereo.wav');
  writeFileSync(file, encodeWav(samples, 22050, 2));
  const back = await readWavFile(file);
  assert.equal(back.sampleRate, 22050);
  assert.equal(back.channels, 2);
  assert.deepEqual(back.samples, samples);
  assert.throws(() => encodeWav(Int16Array.of(1, 2, 3), 16000, 2), RangeError);
});
