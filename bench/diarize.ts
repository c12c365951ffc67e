/**
 * Diarization benchmark (issue 13 "Measured"): `node dist/bench/diarize.js [--out FILE]`, also run by
 * `npm run bench`. Writes bench/results/diarize.json.
 *
 * For every file of ../shared/data/diarization with an RTTM:
 *  - offline DER (`ClassicalDiarizer.diarize`) with the speaker count given (from the RTTM) and unknown;
 *  - online DER (`stream()` + `labelFinal` on simulated finals, bench/lib/diarize_online.ts), count
 *    given and unknown, and a check that every final's labels were returned once (they cannot change);
 *  - DER per md-eval with a 0.25 s collar, overlap scored (src/diarize/der.ts); pooled DER weights by
 *    scored reference speech.
 * Cost:
 *  - offline RTF = diarize wall time ÷ audio duration (best of 3);
 *  - label latency = wall time of `labelFinal` (the time a final waits between the last word's end
 *    being known and the labelled final going out), mean / p95 / max over all finals;
 *  - stream CPU: `write` + `labelFinal` time ÷ audio duration, and that as a percentage of the CPU of a
 *    PocketSphinx stream on the same audio (decoded in 32 ms batches with words, as a session does);
 *  - long-session flatness: a 10-minute stream (the files looped) — label latency of the first and
 *    last minute and per minute (it grows until the history cap fills, then stays flat), and the RTF.
 * Timing caveat: the box is shared (2 cores); numbers are ±20 % or worse under load.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readWavFile } from '../src/audio/wav.js';
import { ClassicalDiarizer } from '../src/diarize/classical.js';
import { computeDer, parseRttm, type ScoredTurn } from '../src/diarize/der.js';
import { PsDecoder, SharedModel } from '../src/engines/stt/pocketsphinx/native.js';
import { repoRoot, sharedDataDir } from './lib/clips.js';
import { runOnline, simulatedFinals } from './lib/diarize_online.js';

const round = (v: number, d = 3): number => Math.round(v * 10 ** d) / 10 ** d;
const pct = (v: number): number => round(v * 100, 1);

interface FileCase {
  name: string;
  pcm: Int16Array;
  rate: number;
  ref: ScoredTurn[];
  speakers: number;
}

function percentile(xs: number[], p: number): number {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
}

async function loadCases(): Promise<FileCase[]> {
  const dir = path.join(sharedDataDir(), 'diarization');
  const out: FileCase[] = [];
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.rttm')).sort()) {
    const name = f.replace(/\.rttm$/, '');
    const w = await readWavFile(path.join(dir, `${name}.wav`));
    if (w.channels !== 1) continue;
    const ref = [...parseRttm(readFileSync(path.join(dir, f), 'utf8')).values()].flat();
    out.push({ name, pcm: w.samples, rate: w.sampleRate, ref, speakers: new Set(ref.map((r) => r.speaker)).size });
  }
  return out;
}

/** PocketSphinx stream CPU (wall ms) on `pcm`: 512-sample batches with words, then end of utterance. */
async function sttMs(d: PsDecoder, pcm: Int16Array): Promise<number> {
  await d.resetForNewStream();
  const t0 = performance.now();
  for (let i = 0; i < pcm.length; i += 512) await d.processWithWords(pcm.subarray(i, i + 512));
  await d.endUtterance();
  return performance.now() - t0;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const outIdx = args.indexOf('--out');
  const outFile = outIdx >= 0 ? args[outIdx + 1]! : path.join(repoRoot(), 'bench', 'results', 'diarize.json');
  const cases = await loadCases();
  const diarizer = new ClassicalDiarizer();
  const pooled = { offlineGiven: [0, 0], offlineUnknown: [0, 0], onlineGiven: [0, 0], onlineUnknown: [0, 0] } as Record<string, [number, number]>;
  const files: Record<string, unknown>[] = [];
  const labelMs: number[] = [];
  let diarCpuMs = 0, sttCpuMs = 0, audioS = 0, offlineMs = 0;
  let model: SharedModel | null = null;
  let dec: PsDecoder | null = null;
  try {
    model = await SharedModel.load();
    dec = await PsDecoder.create(model);
  } catch (e) {
    console.error(`PocketSphinx unavailable, stream CPU share not measured: ${(e as Error).message}`);
  }
  for (const c of cases) {
    const dur = c.pcm.length / c.rate;
    const times: number[] = [];
    let hypU: ScoredTurn[] = [];
    for (let rep = 0; rep < 3; rep++) {
      const t0 = performance.now();
      hypU = diarizer.diarize(c.pcm, c.rate);
      times.push(performance.now() - t0);
    }
    offlineMs += Math.min(...times);
    const hypK = diarizer.diarize(c.pcm, c.rate, { numSpeakers: c.speakers });
    const finals = simulatedFinals(c.pcm, c.rate);
    const onU = runOnline(diarizer, c.pcm, c.rate, undefined, finals);
    const onK = runOnline(diarizer, c.pcm, c.rate, { numSpeakers: c.speakers }, finals);
    const res = {
      offlineUnknown: computeDer(c.ref, hypU),
      offlineGiven: computeDer(c.ref, hypK),
      onlineUnknown: computeDer(c.ref, onU.turns),
      onlineGiven: computeDer(c.ref, onK.turns),
    };
    for (const [k, r] of Object.entries(res)) {
      pooled[k]![0] += r.der * r.total;
      pooled[k]![1] += r.total;
    }
    labelMs.push(...onU.finals.map((f) => f.labelMs));
    diarCpuMs += onU.writeMs + onU.labelMs;
    audioS += dur;
    if (dec) sttCpuMs += await sttMs(dec, c.pcm);
    const row = {
      file: c.name,
      durationS: round(dur, 2),
      refSpeakers: c.speakers,
      derPercent: Object.fromEntries(Object.entries(res).map(([k, r]) => [k, pct(r.der)])),
      parts: Object.fromEntries(Object.entries(res).map(([k, r]) => [k, { missedS: round(r.missed, 2), falseAlarmS: round(r.falseAlarm, 2), confusionS: round(r.confusion, 2), scoredS: round(r.total, 2) }])),
      speakersFound: {
        offlineUnknown: new Set(hypU.map((t) => t.speaker)).size,
        onlineUnknown: new Set(onU.turns.map((t) => t.speaker)).size,
      },
      finals: onU.finals.length,
      offlineRtf: round(Math.min(...times) / 1000 / dur, 4),
    };
    files.push(row);
    console.log(`${c.name.padEnd(24)} ${JSON.stringify(row.derPercent)} rtf ${row.offlineRtf}`);
  }
  // Long session: the mono files looped to 10 minutes, count unknown.
  const loop: Int16Array[] = [];
  let total = 0;
  while (total < 600 * 16000) for (const c of cases) { loop.push(c.pcm); total += c.pcm.length; }
  const long = new Int16Array(total);
  let off = 0;
  for (const p of loop) { long.set(p, off); off += p.length; }
  const longFinals = simulatedFinals(long, 16000);
  const longRun = runOnline(diarizer, long, 16000, undefined, longFinals);
  const firstMin = longRun.finals.filter((f) => f.words[0]!.start < 60).map((f) => f.labelMs);
  const lastMin = longRun.finals.filter((f) => f.words[0]!.start >= 540).map((f) => f.labelMs);
  dec?.free();
  model?.free();
  const diarRtf = diarCpuMs / 1000 / audioS;
  const sttRtf = sttCpuMs / 1000 / audioS;
  const result = {
    when: new Date().toISOString(),
    note: 'classical diarizer (experimental); DER per md-eval, 0.25 s collar, overlap scored; online finals simulated from Silero regions (bench/lib/diarize_online.ts)',
    files,
    pooledDerPercent: Object.fromEntries(Object.entries(pooled).map(([k, [e, t]]) => [k, pct(e / t)])),
    offlineRtf: round(offlineMs / 1000 / audioS, 4),
    labelLatencyMs: { mean: round(labelMs.reduce((a, b) => a + b, 0) / labelMs.length, 2), p95: round(percentile(labelMs, 0.95), 2), max: round(Math.max(...labelMs), 2) },
    streamCpu: {
      diarizeRtf: round(diarRtf, 4),
      pocketsphinxRtf: dec || sttCpuMs ? round(sttRtf, 4) : null,
      addedPercentOfStream: sttCpuMs ? pct(diarRtf / sttRtf) : null,
      targetPercent: 20,
    },
    longSession: {
      audioS: round(long.length / 16000, 1),
      finals: longRun.finals.length,
      labelMsFirstMinute: { mean: round(firstMin.reduce((a, b) => a + b, 0) / Math.max(1, firstMin.length), 2), max: round(Math.max(0, ...firstMin), 2) },
      labelMsLastMinute: { mean: round(lastMin.reduce((a, b) => a + b, 0) / Math.max(1, lastMin.length), 2), max: round(Math.max(0, ...lastMin), 2) },
      /** Mean labelFinal ms per minute of the session: grows until the history cap (60 s of speech) fills, then flat. */
      labelMsMeanPerMinute: Array.from({ length: Math.ceil(long.length / 16000 / 60) }, (_, m) => {
        const xs = longRun.finals.filter((f) => f.words[0]!.start >= m * 60 && f.words[0]!.start < (m + 1) * 60).map((f) => f.labelMs);
        return xs.length ? round(xs.reduce((a, b) => a + b, 0) / xs.length, 1) : null;
      }),
      rtf: round((longRun.writeMs + longRun.labelMs) / 1000 / (long.length / 16000), 4),
    },
  };
  console.log(JSON.stringify({ pooled: result.pooledDerPercent, offlineRtf: result.offlineRtf, labelLatencyMs: result.labelLatencyMs, streamCpu: result.streamCpu, longSession: result.longSession }, null, 1));
  mkdirSync(path.dirname(outFile), { recursive: true });
  writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
