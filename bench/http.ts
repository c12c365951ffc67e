/**
 * Pre-recorded (HTTP) and compressed-audio benchmark (issue #3 "Benchmark"; definitions in
 * bench/README.md). Runs standalone (`node dist/bench/http.js [--out FILE]`, default
 * bench/results/http.json) and from bench/run.ts (results under `http` in latest.json).
 *
 * 1. **Throughput**: the longest `asr_en` clips, each POSTed whole to `/v1/listen` (WAV and Ogg/Opus),
 *    one request at a time: audio seconds per wall second (request sent → response received).
 * 2. **Memory and throughput on a 10-minute file**: asr_en clips concatenated (1 s gaps) to ≥ 600 s
 *    with ffmpeg into os.tmpdir(), as WAV (19 MB) and as Ogg/Opus, on a freshly started server per
 *    `http.parallelStreams` setting (1 and 2); the server's VmRSS is sampled every 50 ms and reported
 *    as peak − idle (target ≤ 150 MB; idle = just started, one warm decoder), plus the ffmpeg
 *    child's peak RSS (a separate process).
 * 3. **Decoder latency** (in this process, the decoders sessions use): Ogg/Opus (20 ms pages),
 *    WebM/Opus and MP3 sent at real-time pace in 20 ms chunks to a decoder created 300 ms earlier
 *    (as a session does at `init`). `first_pcm_ms`: first byte written → first PCM out (includes the
 *    time the container headers and first packet take to arrive at real-time pace). `extra_ms`: for
 *    every packet (positions from ffprobe), PCM out of its end − the moment its last byte was
 *    written: the latency the decoder adds (target p50/p95 ≤ 50 ms). Also ffmpeg with default
 *    probing, and MP3 through ffmpeg, to back the choice of flags and decoder.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPcmDecoder } from '../src/audio/decoder.js';
import { FfmpegDecoder } from '../src/audio/ffmpeg.js';
import { loadConfig } from '../src/config/config.js';
import { loadAsrEnClips, repoRoot, sharedDataDir, type Clip } from './lib/clips.js';
import { ProcSampler, ServerProcess } from './lib/server.js';
import { summarizeMs, type MsSummary } from './lib/stats.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** Round to `d` decimals. */
const round = (x: number, d = 0): number => Math.round(x * 10 ** d) / 10 ** d;
const mb = (b: number) => round(b / 1e6, 1);
const log = (s: string) => process.stderr.write(`${s}\n`);

/** `http.parallelStreams` of the built-in configuration. */
const DEFAULT_PARALLEL = loadConfig().http.parallelStreams;
/** Server configuration: the built-in one with a 1 GiB upload limit and `parallel` streams per upload. */
const serverConfig = (parallel: number) => ({
  engines: { pocketsphinx: { minIdleDecoders: 1, maxDecoders: 4 } },
  http: { maxBodyBytes: 1024 * 1024 * 1024, parallelStreams: parallel },
});

/** Options of {@link runHttpBench}. */
export interface HttpBenchOptions {
  /** Fewer clips and repetitions. */
  quick?: boolean;
  /** Only the decoder-latency part (no server). */
  latencyOnly?: boolean;
}

/** Results of {@link runHttpBench} (units in the key names). */
export interface HttpBenchResults {
  throughput: { clip: string; format: string; audio_s: number; wall_ms: number; audio_s_per_wall_s: number; words: number }[];
  throughput_mean_audio_s_per_wall_s: number;
  long_file: {
    format: string;
    /** `http.parallelStreams` of the server. */
    parallel_streams: number;
    audio_s: number;
    bytes: number;
    wall_s: number;
    audio_s_per_wall_s: number;
    idle_rss_mb: number;
    peak_rss_mb: number;
    peak_minus_idle_mb: number;
    ffmpeg_peak_rss_mb: number | null;
    words: number;
    status: number;
  }[];
  decoder_latency: {
    decoder: string;
    format: string;
    /** First byte written → first PCM out. */
    first_pcm_ms: MsSummary;
    /** First byte written → last byte of the first audio packet written (real-time pacing; no decoder can beat it). */
    first_packet_sent_ms: MsSummary;
    /** Per packet: PCM of its end out − its last byte written. */
    extra_ms: MsSummary;
    packets: number;
    runs: number;
  }[];
  /** CPUs, Node, and the 1-minute load average before and after (other work on a shared box inflates wall times). */
  machine: { cpus: number; node: string; loadavg_start: number; loadavg_end?: number };
}

function ffmpeg(args: string[]): void {
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
}

/** Concatenate WAV clips (with `gap` s of silence each) until `seconds` of audio; write `out.wav`. */
function concatenate(clips: Clip[], seconds: number, out: string, gap = 1): number {
  const parts: Buffer[] = [];
  let total = 0;
  const sil = Buffer.alloc(Math.round(16000 * gap) * 2);
  for (let i = 0; total < seconds; i++) {
    const c = clips[i % clips.length]!;
    parts.push(c.bytes, sil);
    total += c.seconds + gap;
  }
  const pcm = Buffer.concat(parts);
  const raw = out + '.raw';
  writeFileSync(raw, pcm);
  ffmpeg(['-f', 's16le', '-ar', '16000', '-ac', '1', '-i', raw, '-c:a', 'pcm_s16le', out]);
  rmSync(raw);
  return pcm.length / 32000;
}

/** PIDs of a process's descendants named ffmpeg (ffmpeg runs in the gateway's spawner helpers). */
function ffmpegChildrenOf(root: number): number[] {
  const rows: { pid: number; ppid: number; comm: string }[] = [];
  for (const name of readdirSafe('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const st = readFileSync(`/proc/${name}/stat`, 'utf8');
      const comm = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
      rows.push({ pid: Number(name), ppid: Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]), comm });
    } catch {
      /* gone */
    }
  }
  const mine = new Set([root]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const r of rows) if (mine.has(r.ppid) && !mine.has(r.pid)) (mine.add(r.pid), (grew = true));
  }
  return rows.filter((r) => r.comm === 'ffmpeg' && mine.has(r.pid)).map((r) => r.pid);
}
function readdirSafe(d: string): string[] {
  try {
    return readdirSync(d);
  } catch {
    return [];
  }
}
function rssOf(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

async function postFile(server: ServerProcess, file: string, type: string): Promise<{ status: number; wallMs: number; words: number; body: Record<string, unknown> }> {
  const body = readFileSync(file);
  const t0 = performance.now();
  const res = await fetch(`${server.httpUrl}/v1/listen`, { method: 'POST', body: new Uint8Array(body), headers: { Authorization: `Token ${server.key}`, 'Content-Type': type } });
  const json = (await res.json()) as Record<string, unknown>;
  const wallMs = performance.now() - t0;
  const words = res.ok ? ((json.results as { channels: { alternatives: { words: unknown[] }[] }[] }).channels[0]!.alternatives[0]!.words.length) : 0;
  return { status: res.status, wallMs, words, body: json };
}

/** Byte end → media end (s) of every packet, from ffprobe. */
function packetMap(file: string): { endByte: number; endS: number }[] {
  const j = JSON.parse(
    execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'a:0', '-show_entries', 'packet=pts_time,duration_time,pos,size', '-of', 'json', file], { encoding: 'utf8', maxBuffer: 64 << 20 }),
  ) as { packets: { pts_time?: string; duration_time?: string; pos?: string; size: string }[] };
  const pk = j.packets.filter((p) => p.pos !== undefined && p.pts_time !== undefined);
  const t0 = Math.max(0, Number(pk[0]?.pts_time ?? 0));
  return pk.map((p) => ({ endByte: Number(p.pos) + Number(p.size), endS: Number(p.pts_time) - t0 + Number(p.duration_time ?? 0) }));
}

/**
 * Stream `file` at real-time pace (20 ms of media per chunk) into a decoder made by `make`, created
 * 300 ms before the first byte. Returns first-byte→first-PCM and per-packet extra latency (ms).
 */
async function paceDecode(file: string, durationS: number, make: () => { write(b: Uint8Array): void; on(ev: 'pcm', f: (p: Int16Array) => void): void; end(): Promise<void>; abort(): void }): Promise<{ first: number; firstPacketSent: number; extra: number[] }> {
  const bytes = readFileSync(file);
  const packets = packetMap(file);
  const d = make();
  const out: { atMs: number; s: number }[] = [];
  let samples = 0;
  d.on('pcm', (p) => {
    samples += p.length;
    out.push({ atMs: performance.now(), s: samples / 16000 });
  });
  await sleep(300);
  const chunk = Math.max(1, Math.round((bytes.length / durationS) * 0.02));
  const sentAt: number[] = []; // sentAt[k] = time chunk k was written
  const t0 = performance.now();
  for (let k = 0; k * chunk < bytes.length; k++) {
    const due = t0 + k * 20;
    const now = performance.now();
    if (due > now) await sleep(due - now);
    sentAt.push(performance.now());
    d.write(bytes.subarray(k * chunk, (k + 1) * chunk));
  }
  await sleep(400); // let the last packets out before ending (end() would flush them anyway)
  const extra: number[] = [];
  for (const p of packets) {
    const k = Math.floor((p.endByte - 1) / chunk);
    const sent = sentAt[k];
    // PCM covering this packet's end (10 ms tolerance for codec delay / resampler look-ahead).
    const o = out.find((x) => x.s >= p.endS - 0.01);
    if (sent === undefined || !o) continue;
    extra.push(Math.max(0, o.atMs - sent));
  }
  await d.end().catch(() => {});
  d.abort();
  const firstSent = packets.length > 0 ? sentAt[Math.floor((packets[0]!.endByte - 1) / chunk)] : undefined;
  return { first: out.length > 0 ? out[0]!.atMs - t0 : NaN, firstPacketSent: firstSent === undefined ? NaN : firstSent - t0, extra };
}

/** Run the HTTP and decoder benchmarks. */
export async function runHttpBench(o: HttpBenchOptions = {}): Promise<HttpBenchResults> {
  const root = repoRoot();
  const dir = mkdtempSync(path.join(tmpdir(), 'voxgate-bench-http-'));
  const clips = (await loadAsrEnClips()).sort((a, b) => b.seconds - a.seconds);
  const results: HttpBenchResults = {
    throughput: [],
    throughput_mean_audio_s_per_wall_s: 0,
    long_file: [],
    decoder_latency: [],
    machine: { cpus: os.cpus().length, node: process.version, loadavg_start: round(os.loadavg()[0]!, 2) },
  };
  try {
    // ---- 3. decoder latency (before the server starts, so nothing else runs) ----
    const src = path.join(sharedDataDir(), 'asr_en/en_ls_1272-128104-0000.wav');
    const dur = 5.855;
    const enc = {
      ogg: path.join(dir, 'lat.opus'),
      webm: path.join(dir, 'lat.webm'),
      mp3: path.join(dir, 'lat.mp3'),
      flac: path.join(dir, 'lat.flac'),
      mp4: path.join(dir, 'lat.m4a'),
    };
    ffmpeg(['-i', src, '-c:a', 'libopus', '-b:a', '24k', '-page_duration', '20000', '-f', 'ogg', enc.ogg]);
    ffmpeg(['-i', src, '-c:a', 'libopus', '-b:a', '24k', '-f', 'webm', enc.webm]);
    ffmpeg(['-i', src, '-c:a', 'libmp3lame', '-b:a', '64k', '-ar', '44100', '-f', 'mp3', enc.mp3]);
    ffmpeg(['-i', src, '-c:a', 'flac', '-f', 'flac', enc.flac]);
    ffmpeg(['-i', src, '-c:a', 'aac', '-b:a', '64k', '-movflags', '+faststart', '-f', 'ipod', enc.mp4]);
    const runs = o.quick ? 1 : 3;
    type Dec = Parameters<typeof paceDecode>[2] extends () => infer R ? R : never;
    const cases: { decoder: string; format: string; file: string; make: () => Dec }[] = [
      { decoder: 'decoder.ts (as sessions use it)', format: 'ogg-opus 20 ms pages', file: enc.ogg, make: () => createPcmDecoder({ encoding: 'ogg-opus', targetRate: 16000, outputChannels: 1 }) },
      { decoder: 'decoder.ts (as sessions use it)', format: 'webm-opus', file: enc.webm, make: () => createPcmDecoder({ encoding: 'webm', targetRate: 16000, outputChannels: 1 }) },
      { decoder: 'decoder.ts (as sessions use it: mpg123 WASM)', format: 'mp3 64k 44.1 kHz', file: enc.mp3, make: () => createPcmDecoder({ encoding: 'mp3', targetRate: 16000, outputChannels: 1 }) },
      { decoder: 'decoder.ts (as sessions use it)', format: 'flac', file: enc.flac, make: () => createPcmDecoder({ encoding: 'flac', targetRate: 16000, outputChannels: 1 }) },
      { decoder: 'decoder.ts (as sessions use it)', format: 'm4a (faststart)', file: enc.mp4, make: () => createPcmDecoder({ encoding: 'mp4', targetRate: 16000, outputChannels: 1 }) },
    ];
    // ffmpeg with and without the low-latency probe flags, per container (the basis of FFMPEG_LOW_LATENCY).
    for (const [format, file, f] of [
      ['ogg-opus 20 ms pages', enc.ogg, 'ogg'],
      ['webm-opus', enc.webm, 'webm'],
      ['mp3 64k 44.1 kHz', enc.mp3, 'mp3'],
      ['flac', enc.flac, 'flac'],
      ['m4a (faststart)', enc.mp4, 'mov'],
    ] as const) {
      for (const lowLatency of [true, false]) {
        cases.push({ decoder: `ffmpeg ${lowLatency ? '-probesize 32 -analyzeduration 0 -fflags nobuffer' : 'default probing'}`, format, file, make: () => new FfmpegDecoder({ format: f, targetRate: 16000, outputChannels: 1, lowLatency }) });
      }
    }
    for (const c of cases) {
      const firsts: number[] = [];
      const firstSent: number[] = [];
      const extras: number[] = [];
      for (let r = 0; r < runs; r++) {
        const m = await paceDecode(c.file, dur, () => {
          const d = c.make();
          (d as unknown as { on(e: 'error', f: () => void): void }).on('error', () => {});
          return d;
        });
        firsts.push(m.first);
        firstSent.push(m.firstPacketSent);
        extras.push(...m.extra);
      }
      const row = { decoder: c.decoder, format: c.format, first_pcm_ms: summarizeMs(firsts), first_packet_sent_ms: summarizeMs(firstSent), extra_ms: summarizeMs(extras), packets: extras.length, runs };
      results.decoder_latency.push(row);
      log(`  decoder ${c.decoder} / ${c.format}: first PCM p50 ${row.first_pcm_ms.p50_ms} ms (first packet sent at ${row.first_packet_sent_ms.p50_ms} ms); extra p50 ${row.extra_ms.p50_ms} / p95 ${row.extra_ms.p95_ms} ms`);
    }

    if (o.latencyOnly) return results;
    // ---- 2. the 10-minute file, on a fresh server per setting (idle = just started, one warm decoder) ----
    const longWav = path.join(dir, 'long.wav');
    const seconds = concatenate(clips, o.quick ? 120 : 600, longWav);
    const longOgg = path.join(dir, 'long.ogg');
    ffmpeg(['-i', longWav, '-c:a', 'libopus', '-b:a', '32k', '-f', 'ogg', longOgg]);
    for (const parallel of o.quick ? [DEFAULT_PARALLEL] : [1, 2]) {
      const server = await ServerProcess.start({ root, config: serverConfig(parallel) });
      try {
        for (const [format, file, type] of [
          ['wav', longWav, 'audio/wav'],
          ['ogg-opus', longOgg, 'audio/ogg'],
        ] as const) {
          await sleep(2000);
          const idle = server.sample().rssBytes;
          const sampler = new ProcSampler(server, 50).start();
          let ffPeak = 0;
          const ffTimer = setInterval(() => {
            for (const pid of ffmpegChildrenOf(server.pid)) ffPeak = Math.max(ffPeak, rssOf(pid));
          }, 50);
          const r = await postFile(server, file, type);
          clearInterval(ffTimer);
          const peak = Math.max(...sampler.stop().map((x) => x.rssBytes));
          const row = {
            format,
            parallel_streams: parallel,
            audio_s: round(seconds, 1),
            bytes: statSync(file).size,
            wall_s: round(r.wallMs / 1000, 1),
            audio_s_per_wall_s: round(seconds / (r.wallMs / 1000), 2),
            idle_rss_mb: mb(idle),
            peak_rss_mb: mb(peak),
            peak_minus_idle_mb: mb(peak - idle),
            ffmpeg_peak_rss_mb: ffPeak > 0 ? mb(ffPeak) : null,
            words: r.words,
            status: r.status,
          };
          results.long_file.push(row);
          log(`  ${seconds.toFixed(0)} s ${format} (${mb(row.bytes)} MB), ${parallel} stream(s): HTTP ${r.status} in ${row.wall_s} s (${row.audio_s_per_wall_s}× real time); RSS idle ${row.idle_rss_mb} → peak ${row.peak_rss_mb} MB (+${row.peak_minus_idle_mb}); ffmpeg ${row.ffmpeg_peak_rss_mb ?? '-'} MB`);
        }
      } finally {
        await server.stop();
      }
    }

    // ---- 1. throughput on the longest clips (default settings) ----
    const server = await ServerProcess.start({ root, config: serverConfig(DEFAULT_PARALLEL) });
    try {
      const longest = clips.slice(0, o.quick ? 2 : 4);
      for (const c of longest) {
        const wav = path.join(sharedDataDir(), c.file);
        const ogg = path.join(dir, `${c.name}.ogg`);
        ffmpeg(['-i', wav, '-c:a', 'libopus', '-b:a', '32k', '-f', 'ogg', ogg]);
        for (const [format, file, type] of [
          ['wav', wav, 'audio/wav'],
          ['ogg-opus', ogg, 'audio/ogg'],
        ] as const) {
          const r = await postFile(server, file, type);
          if (r.status !== 200) throw new Error(`${c.name} ${format}: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
          results.throughput.push({ clip: c.name, format, audio_s: round(c.seconds, 2), wall_ms: round(r.wallMs), audio_s_per_wall_s: round(c.seconds / (r.wallMs / 1000), 2), words: r.words });
          log(`  throughput ${c.name} (${c.seconds.toFixed(1)} s) ${format}: ${(c.seconds / (r.wallMs / 1000)).toFixed(2)} audio s / wall s`);
        }
      }
      results.throughput_mean_audio_s_per_wall_s = round(results.throughput.reduce((sum, t) => sum + t.audio_s_per_wall_s, 0) / results.throughput.length, 2);
    } finally {
      await server.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  results.machine.loadavg_end = round(os.loadavg()[0]!, 2);
  return results;
}

// Standalone: `node dist/bench/http.js [--quick] [--out FILE]`.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const out = argv.includes('--out') ? path.resolve(argv[argv.indexOf('--out') + 1]!) : path.join(repoRoot(), 'bench/results/http.json');
  const r = await runHttpBench({ quick: argv.includes('--quick'), latencyOnly: argv.includes('--latency-only') });
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ generated: new Date().toISOString(), ...r }, null, 2) + '\n');
  log(`results written to ${out}`);
}
