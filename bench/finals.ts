/**
 * Lost-finals sweep (issue 9 §1) and the cost of interim words (issue 9 §3):
 * `node dist/bench/finals.js [--quick] [--out FILE]`, also run by `npm run bench`.
 *
 *  1. `sweep` — every `asr_en` clip × leading silence {0, 200, 500} ms × endpointing {10, 300, 800} ms
 *     × pace {fast, realtime}, streamed through the PocketSphinx engine in this process (VAD on,
 *     partials and word timestamps on, then `close()`), judged by bench/lib/finals_sweep.ts: a run is
 *     *lost* when its finals carry fewer than half the words of its longest partial, or an utterance
 *     with partials ends without a final or with fewer than half its words. Fast = the whole padded
 *     clip written at once; realtime = 20 ms chunks on the wall clock, {@link REALTIME_CONCURRENCY}
 *     streams at a time. Reported: runs, lost runs, words lost, and how often the engine had to fall
 *     back (lattice failure → first pass; empty end result → last partial).
 *  2. `websocket` — the reports through a real server (in process, 127.0.0.1:0) over
 *     `/v1/listen` at real-time pace, then `CloseStream`: en_jfk_inaugural_excerpt with
 *     endpointing=800 and en_cmu_cards_002 with endpointing=300.
 *  3. `partialWordsCost` — decode RTF (wall time ÷ audio time) of every clip through one decoder fed
 *     in 32 ms batches (the stream's batch size), with the partial text after every batch
 *     (`process`) vs text and words (`processWithWords`); alternating order, best of 3 per clip.
 *
 * Writes bench/results/finals.json (or `--out`); exits 0 (1 only when the benchmark could not run).
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { loadConfig } from '../src/config/config.js';
import { PocketSphinxEngine } from '../src/engines/stt/pocketsphinx/index.js';
import { PsDecoder, SharedModel } from '../src/engines/stt/pocketsphinx/native.js';
import { readWavFile } from '../src/audio/wav.js';
import { startVoxgate } from '../src/server/bootstrap.js';
import { repoRoot, sharedDataDir } from './lib/clips.js';
import { judgeRun, padClip, runEngineCase, summarize, type Pace, type RunOutcome, type SweepCase } from './lib/finals_sweep.js';

const LEADS_MS = [0, 200, 500];
const ENDPOINTINGS_MS = [10, 300, 800];
/** Real-time streams run at once (each is idle most of the time). */
const REALTIME_CONCURRENCY = 4;
/** Decoder batch for the RTF measurement: the stream's MIN_BATCH_SECONDS (32 ms). */
const RTF_BATCH = 512;

const round = (v: number, d: number): number => Math.round(v * 10 ** d) / 10 ** d;

interface Clip {
  name: string;
  pcm: Int16Array;
}

async function loadClips(): Promise<Clip[]> {
  const dir = path.join(sharedDataDir(), 'asr_en');
  const out: Clip[] = [];
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.wav')).sort()) {
    const w = await readWavFile(path.join(dir, f));
    if (w.sampleRate !== 16000 || w.channels !== 1) throw new Error(`${f}: expected 16 kHz mono`);
    out.push({ name: f.replace(/\.wav$/, ''), pcm: w.samples });
  }
  return out;
}

/** Run `jobs` with at most `n` in flight. */
async function pool<T>(n: number, jobs: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, jobs.length) }, async () => {
      while (next < jobs.length) {
        const i = next++;
        out[i] = await jobs[i]!();
      }
    }),
  );
  return out;
}

/** Counts of the engine's fallbacks, read by wrapping the decoder methods of this process. */
const fallbacks = { firstPass: 0 };

async function sweep(engine: PocketSphinxEngine, clips: Clip[], quick: boolean): Promise<{ fast: RunOutcome[]; realtime: RunOutcome[]; partialFallbacks: number }> {
  const cases = (pace: Pace): { clip: Clip; c: SweepCase }[] =>
    clips.flatMap((clip) =>
      LEADS_MS.flatMap((leadMs) => ENDPOINTINGS_MS.map((endpointingMs) => ({ clip, c: { clip: clip.name, leadMs, endpointingMs, pace } }))),
    );
  let partialFallbacks = 0;
  const origStart = engine.start.bind(engine);
  engine.start = async (cfg) => {
    const s = await origStart(cfg);
    const close = s.close.bind(s);
    s.close = async () => {
      await close();
      partialFallbacks += (s as unknown as { partialFallbackCount?: number }).partialFallbackCount ?? 0;
    };
    return s;
  };
  const fast: RunOutcome[] = [];
  for (const { clip, c } of cases('fast')) fast.push(await runEngineCase(engine, clip.pcm, c));
  const rtCases = cases('realtime').filter(({ clip }) => !quick || clip.pcm.length <= 4 * 16000);
  const realtime = await pool(
    REALTIME_CONCURRENCY,
    rtCases.map(({ clip, c }) => () => runEngineCase(engine, clip.pcm, c)),
  );
  engine.start = origStart;
  return { fast, realtime, partialFallbacks };
}

/** One real-time `/v1/listen` run with interim results, closed with CloseStream. */
async function listenRun(wsUrl: string, key: string, clip: Clip, leadMs: number, endpointingMs: number): Promise<RunOutcome> {
  const pcm = padClip(clip.pcm, leadMs);
  const bytes = Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  const ws = new WebSocket(`${wsUrl}/v1/listen?encoding=linear16&sample_rate=16000&interim_results=true&endpointing=${endpointingMs}`, { headers: { Authorization: `Token ${key}` } });
  const msgs: Record<string, unknown>[] = [];
  ws.on('message', (d, bin) => {
    if (!bin) msgs.push(JSON.parse(d.toString()) as Record<string, unknown>);
  });
  const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
  await new Promise<void>((res, rej) => {
    ws.once('open', () => res());
    ws.once('error', rej);
  });
  const t0 = performance.now();
  for (let o = 0, k = 1; o < bytes.length; o += 640, k++) {
    ws.send(bytes.subarray(o, o + 640));
    const wait = t0 + k * 20 - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  ws.send(JSON.stringify({ type: 'CloseStream' }));
  const code = await closed;
  const results = msgs
    .filter((m) => m.type === 'Results')
    .map((m) => ({ transcript: (m.channel as { alternatives: { transcript: string }[] }).alternatives[0]!.transcript, start: m.start as number, isFinal: m.is_final as boolean }));
  const r = judgeRun({ clip: clip.name, leadMs, endpointingMs, pace: 'realtime' }, results.filter((x) => !x.isFinal), results.filter((x) => x.isFinal));
  if (code !== 1000) return { ...r, lost: true, reason: `closed ${code}; ${r.reason}` };
  return r;
}

async function websocketRuns(clips: Clip[]): Promise<RunOutcome[]> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'voxgate-bench-finals-'));
  const base = loadConfig();
  const v = await startVoxgate({ port: 0, host: '127.0.0.1', dataDir, config: { ...base, engines: { pocketsphinx: { minIdleDecoders: 1, maxDecoders: 4 } } }, logLevel: 'silent' });
  try {
    const { key } = v.keys.create('bench');
    const url = `ws://127.0.0.1:${v.port}`;
    const byName = (n: string) => clips.find((c) => c.name === n)!;
    return [
      await listenRun(url, key, byName('en_jfk_inaugural_excerpt'), 0, 800),
      await listenRun(url, key, byName('en_cmu_cards_002'), 0, 300),
      await listenRun(url, key, byName('en_commonvoice_22058267'), 500, 300),
    ];
  } finally {
    await v.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Wall time (ms) to decode `pcm` in {@link RTF_BATCH} batches, with the partial text or text + words after each. */
async function timeDecode(d: PsDecoder, pcm: Int16Array, words: boolean): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < pcm.length; i += RTF_BATCH) {
    const b = pcm.subarray(i, i + RTF_BATCH);
    if (words) await d.processWithWords(b);
    else await d.process(b, true);
  }
  await d.endUtterance();
  return performance.now() - t0;
}

async function partialWordsCost(clips: Clip[]): Promise<{ rtfText: number; rtfTextAndWords: number; overheadPercent: number; audioSeconds: number }> {
  const model = await SharedModel.load();
  const d = await PsDecoder.create(model);
  let text = 0;
  let both = 0;
  let audio = 0;
  try {
    for (const c of clips) {
      const t: number[] = [];
      const w: number[] = [];
      for (let rep = 0; rep < 3; rep++) {
        await d.resetForNewStream();
        if (rep % 2 === 0) {
          t.push(await timeDecode(d, c.pcm, false));
          await d.resetForNewStream();
          w.push(await timeDecode(d, c.pcm, true));
        } else {
          w.push(await timeDecode(d, c.pcm, true));
          await d.resetForNewStream();
          t.push(await timeDecode(d, c.pcm, false));
        }
      }
      text += Math.min(...t);
      both += Math.min(...w);
      audio += c.pcm.length / 16000;
    }
  } finally {
    d.free();
    model.free();
  }
  return { rtfText: round(text / 1000 / audio, 4), rtfTextAndWords: round(both / 1000 / audio, 4), overheadPercent: round(((both - text) / text) * 100, 1), audioSeconds: round(audio, 1) };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const outIdx = args.indexOf('--out');
  const out = outIdx >= 0 ? path.resolve(args[outIdx + 1]!) : path.join(repoRoot(), 'bench/results/finals.json');
  const started = Date.now();
  const clips = await loadClips();

  // Count lattice failures answered from the first pass (PsDecoder.endUtterance → firstPass).
  const origEnd = PsDecoder.prototype.endUtterance;
  PsDecoder.prototype.endUtterance = async function (this: PsDecoder) {
    const r = await origEnd.call(this);
    if (r.firstPass) fallbacks.firstPass++;
    return r;
  };

  const engine = new PocketSphinxEngine({ minIdleDecoders: 1, maxDecoders: REALTIME_CONCURRENCY + 1 });
  await engine.init();
  let sw;
  try {
    sw = await sweep(engine, clips, quick);
  } finally {
    await engine.shutdown();
  }
  const firstPassInSweep = fallbacks.firstPass;
  const ws = await websocketRuns(clips);
  PsDecoder.prototype.endUtterance = origEnd;
  const cost = await partialWordsCost(quick ? clips.slice(0, 6) : clips);

  const all = [...sw.fast, ...sw.realtime, ...ws];
  const lostDetail = all.filter((r) => r.lost).map((r) => ({ clip: r.clip, leadMs: r.leadMs, endpointingMs: r.endpointingMs, pace: r.pace, reason: r.reason }));
  const result = {
    date: new Date().toISOString(),
    quick,
    host: { cpus: os.cpus().length, loadavg: os.loadavg().map((x) => round(x, 2)) },
    sweep: {
      leadsMs: LEADS_MS,
      endpointingsMs: ENDPOINTINGS_MS,
      clips: clips.length,
      ...summarize(all),
      fast: summarize(sw.fast),
      realtime: summarize(sw.realtime),
      websocket: summarize(ws),
      latticeFailuresAnsweredFromFirstPass: firstPassInSweep,
      emptyEndResultsAnsweredFromPartial: sw.partialFallbacks,
      lost: lostDetail,
    },
    partialWordsCost: cost,
    seconds: round((Date.now() - started) / 1000, 1),
  };
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
  const s = result.sweep;
  console.log(`finals sweep: ${s.runs} runs (${s.fast.runs} fast, ${s.realtime.runs} real-time, ${s.websocket.runs} WebSocket): ${s.lostRuns} lost, ${s.wordsLost} words lost ${s.lostRuns === 0 ? 'PASS' : 'FAIL'}`);
  console.log(`  engine fallbacks: ${s.latticeFailuresAnsweredFromFirstPass} lattice failures answered from the first pass, ${s.emptyEndResultsAnsweredFromPartial} empty end results answered from the last partial`);
  for (const l of lostDetail) console.log(`  LOST ${l.clip} lead=${l.leadMs} ep=${l.endpointingMs} ${l.pace}: ${l.reason}`);
  console.log(`partial words cost: decode RTF ${cost.rtfText} (text) vs ${cost.rtfTextAndWords} (text + words), ${cost.overheadPercent} % over ${cost.audioSeconds} s of audio`);
  console.log(`wrote ${out} (${result.seconds} s)`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
