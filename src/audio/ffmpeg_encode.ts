/**
 * Streaming MP3 / Ogg-Opus *encoding* of TTS output through a Debian `ffmpeg` child
 * (shared/spec/engines.md §6–7: "can encode TTS output (`-c:a libopus -f ogg`, `-c:a libmp3lame`)";
 * protocols.md §1.5 `config.encoding` `mp3`/`opus`, §1.7 HTTP audio).
 *
 * One process per encoded stream (a segment on a WebSocket — see encode.ts —, a whole HTTP response). Input is
 * raw s16le mono PCM already at the output rate (our own resampler runs first, so ffmpeg never
 * resamples); output is written to the sink as ffmpeg produces it. Latency settings: Ogg pages
 * of 20 ms (`-page_duration 20000`, default is 1 s), packets flushed as muxed
 * (`-flush_packets 1`), no ID3/Xing header (they cannot be rewritten on a pipe).
 * The process is started at construction so its ~30–60 ms start-up overlaps with synthesis; it is
 * started by the spawner helper (util/spawn_host.ts), never forked from the gateway itself.
 */
import { VoxgateError } from '../util/errors.js';
import { sharedSpawnHost, type HostedChild } from '../util/spawn_host.js';
import { int16ToBytesLE } from './pcm.js';

/** Compressed output encodings produced by ffmpeg. */
export type CompressedEncoding = 'mp3' | 'opus';

/** Output sample rates libopus accepts, Hz. */
export const OPUS_SAMPLE_RATES = [8000, 12000, 16000, 24000, 48000] as const;

/** Receives encoded bytes; may return a promise to make the producer wait (backpressure). */
export type ByteSink = (bytes: Buffer) => void | Promise<void>;

/**
 * ffmpeg arguments for one encoder (exported for tests and docs).
 * @param oggSerial opus only: the Ogg stream's serial number (`-serial_offset`; with `+bitexact` it
 *   is the serial itself). Successive streams on one connection need distinct serials (RFC 3533).
 */
export function ffmpegEncodeArgs(encoding: CompressedEncoding, sampleRate: number, oggSerial = 0): string[] {
  const input = ['-hide_banner', '-loglevel', 'error', '-f', 's16le', '-ar', String(sampleRate), '-ac', '1', '-i', 'pipe:0', '-map_metadata', '-1', '-fflags', '+bitexact'];
  if (encoding === 'mp3') {
    const kbps = sampleRate <= 16000 ? 32 : sampleRate <= 24000 ? 48 : 64;
    return [...input, '-c:a', 'libmp3lame', '-b:a', `${kbps}k`, '-write_xing', '0', '-id3v2_version', '0', '-flush_packets', '1', '-f', 'mp3', 'pipe:1'];
  }
  const kbps = sampleRate <= 8000 ? 16 : sampleRate <= 16000 ? 24 : 32;
  return [...input, '-c:a', 'libopus', '-b:a', `${kbps}k`, '-frame_duration', '20', '-page_duration', '20000', '-serial_offset', String(oggSerial), '-flush_packets', '1', '-f', 'ogg', 'pipe:1'];
}

/**
 * One streaming ffmpeg encode: `write()` PCM, `end()` to finish; encoded bytes go to the sink.
 * Errors (ffmpeg missing, crashed) reject {@link end} with VoxgateError `provider_error`.
 */
export class FfmpegEncoder {
  private readonly child: HostedChild;
  private readonly outputDone: Promise<void>;
  private aborted = false;
  private pendingSink: Promise<void> | null = null;

  /**
   * @param encoding `mp3` or `opus` (Ogg container).
   * @param sampleRate Hz of the PCM that will be written (and of the output); for opus one of {@link OPUS_SAMPLE_RATES}.
   * @param sink receives encoded bytes in order.
   * @param binary ffmpeg executable.
   * @param oggSerial opus: serial number of the Ogg stream (see {@link ffmpegEncodeArgs}).
   */
  constructor(
    readonly encoding: CompressedEncoding,
    readonly sampleRate: number,
    private readonly sink: ByteSink,
    binary = 'ffmpeg',
    oggSerial = 0,
  ) {
    this.child = sharedSpawnHost().spawn(binary, ffmpegEncodeArgs(encoding, sampleRate, oggSerial));
    const stdout = this.child.stdout;
    this.outputDone = new Promise<void>((resolve) => {
      stdout.on('data', (buf: Buffer) => {
        if (this.aborted) return;
        const r = this.sink(buf);
        if (r) {
          stdout.pause();
          this.pendingSink = r.then(() => {
            if (!this.aborted) stdout.resume();
          });
        }
      });
      stdout.once('end', resolve);
      stdout.once('close', resolve);
      stdout.once('error', () => resolve());
    });
  }

  /**
   * Queue PCM (mono, {@link sampleRate}).
   * @returns a promise when ffmpeg's stdin is full (await it before writing more), else nothing.
   */
  write(pcm: Int16Array): void | Promise<void> {
    if (this.aborted || pcm.length === 0) return;
    const ok = this.child.stdin.write(int16ToBytesLE(pcm));
    if (!ok) return new Promise((resolve) => this.child.stdin.once('drain', resolve).once('close', resolve));
  }

  /**
   * Finish: close ffmpeg's input and wait until every encoded byte has been handed to the sink.
   * @throws VoxgateError `provider_error` when ffmpeg could not run or failed.
   */
  async end(): Promise<void> {
    if (this.aborted) return;
    this.child.stdin.end();
    const r = await this.child.exit;
    await this.outputDone;
    if (this.pendingSink) await this.pendingSink;
    if (this.aborted) return;
    if (r.error && /ENOENT/.test(r.error)) throw new VoxgateError('provider_error', `cannot run ffmpeg to encode ${this.encoding} (${r.error}); install the Debian package "ffmpeg"`);
    if (r.error) throw new VoxgateError('provider_error', `the ffmpeg ${this.encoding} encoder was lost: ${r.error}`);
    if (r.code !== 0) throw new VoxgateError('provider_error', `ffmpeg ${this.encoding} encoder failed (exit ${r.code ?? r.signal}): ${r.stderr.trim().slice(0, 300)}`);
  }

  /** Kill ffmpeg now and drop its pending output. Idempotent. */
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.child.kill('SIGKILL');
    this.child.stdout.resume(); // discard what is still buffered
  }
}
