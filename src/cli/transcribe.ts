/**
 * `voxgate transcribe FILE`: stream a file to a voxgate server at real-time pace (or `--fast`) and
 * print results: interim results on one updating line (terminals only), each final on its own line,
 * a progress indicator on that line, or the raw server messages as JSON lines with `--json`.
 */
import { readFile } from 'node:fs/promises';
import { SttClient, type SttServerMessage } from '../client/stt.js';
import { readWavFile } from '../audio/wav.js';

/** Options of {@link transcribeFile}. */
export interface TranscribeOptions {
  file: string;
  /** ws(s):// base URL. */
  url: string;
  model: string;
  key: string;
  fast: boolean;
  json: boolean;
  /** For headerless files. */
  encoding: string;
  sampleRate: number;
  channels: number;
  language: string;
}

/** Chunk length sent per frame, seconds. */
const CHUNK_SECONDS = 0.1;
/** With --fast, stop sending while this many bytes are queued in the socket. */
const FAST_HIGH_WATER = 256 * 1024;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Load the file as bytes plus the format to declare in `init`. WAV headers are parsed here. */
async function loadAudio(o: TranscribeOptions): Promise<{ bytes: Uint8Array; encoding: string; sampleRate: number; channels: number }> {
  const head = await readFile(o.file);
  if (head.subarray(0, 4).toString('latin1') === 'RIFF') {
    const wav = await readWavFile(o.file);
    return { bytes: new Uint8Array(wav.samples.buffer, wav.samples.byteOffset, wav.samples.byteLength), encoding: 'linear16', sampleRate: wav.sampleRate, channels: wav.channels };
  }
  return { bytes: head, encoding: o.encoding, sampleRate: o.sampleRate, channels: o.channels };
}

/** Run the command; resolves to the process exit code (0 on a normal 1000 close). */
export async function transcribeFile(o: TranscribeOptions): Promise<number> {
  const audio = await loadAudio(o);
  const tty = process.stdout.isTTY === true && !o.json;
  const bytesPerSecond = audio.sampleRate * audio.channels * (audio.encoding === 'linear16' ? 2 : 1);
  const totalSeconds = audio.bytes.length / bytesPerSecond;
  let sentSeconds = 0;
  let interim = '';
  const progress = () => `[${String(Math.round((100 * sentSeconds) / Math.max(totalSeconds, 1e-9))).padStart(3)}%] `;
  const redraw = () => {
    if (tty) process.stdout.write(`\r\x1b[K${progress()}${interim}`);
  };
  const onMessage = (m: SttServerMessage) => {
    if (o.json) {
      process.stdout.write(JSON.stringify(m) + '\n');
      return;
    }
    let text: string | null = null;
    let final = false;
    if (m.type === 'partial_transcript') text = m.transcript;
    else if (m.type === 'final_transcript') (text = m.transcript), (final = true);
    else if (m.type === 'Results') (text = m.channel.alternatives[0]?.transcript ?? ''), (final = m.is_final);
    else if (m.type === 'error' || m.type === 'Error') process.stderr.write(`${tty ? '\r\x1b[K' : ''}error ${m.code}: ${m.message}\n`);
    if (text === null) return;
    if (final) {
      interim = '';
      if (tty) process.stdout.write('\r\x1b[K');
      if (text) process.stdout.write(text + '\n');
      redraw();
    } else {
      interim = text;
      redraw();
    }
  };

  let client: SttClient;
  try {
    client = await SttClient.connect({
      url: o.url,
      model: o.model,
      key: o.key,
      init: { language: o.language, encoding: audio.encoding, sample_rate: audio.sampleRate, channels: audio.channels, enable_partials: true },
      onMessage,
    });
  } catch (err) {
    process.stderr.write(`voxgate transcribe: ${(err as Error).message}\n`);
    return 1;
  }
  let closeCode = 0;
  const closed = new Promise<number>((resolve) => client.on('close', (code) => resolve((closeCode = code))));

  const chunkBytes = Math.max(1, Math.round(CHUNK_SECONDS * audio.sampleRate)) * audio.channels * (audio.encoding === 'linear16' ? 2 : 1);
  const t0 = performance.now();
  for (let off = 0, i = 0; off < audio.bytes.length && !closeCode; off += chunkBytes, i++) {
    if (o.fast) {
      while (client.bufferedAmount > FAST_HIGH_WATER && !closeCode) await sleep(2);
    } else {
      const due = t0 + i * CHUNK_SECONDS * 1000;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
    }
    client.sendAudio(audio.bytes.subarray(off, off + chunkBytes));
    sentSeconds = Math.min(totalSeconds, (off + chunkBytes) / bytesPerSecond);
    redraw();
  }
  const code = closeCode || (await client.close());
  await closed;
  if (tty) process.stdout.write('\r\x1b[K');
  if (code !== 1000) {
    process.stderr.write(`connection closed with code ${code}\n`);
    return 1;
  }
  return 0;
}
