/**
 * Online-diarization harness shared by bench/diarize.ts and test/diarize.test.ts: plays a recording
 * into a {@link StreamDiarizer} in 100 ms chunks and emits "finals" the way a session would.
 *
 * Finals are simulated from Silero speech regions (src/diarize/speech.ts) of the whole file:
 * regions closer than `endpointS` (0.8 s) form one utterance; its final is labelled as soon as the
 * audio written reaches the utterance end + 0.3 s (an endpointing delay); its words are the speech
 * regions cut into ~0.4 s pieces (an ASR's word timings). No ASR runs, so the labels are
 * measured on exact speech, separate from recognition errors.
 */
import type { DiarizeOptions, Diarizer, SpeakerLabel, TimeSpan } from '../../src/diarize/types.js';
import { energyRegions, sileroRegions, type Region } from '../../src/diarize/speech.js';

/** One labelled final of a simulated stream. */
export interface OnlineFinal {
  words: TimeSpan[];
  labels: SpeakerLabel[];
  /** Wall time of `labelFinal`, ms. */
  labelMs: number;
}

/** Outcome of {@link runOnline}. */
export interface OnlineRun {
  finals: OnlineFinal[];
  /** Word turns with their labels (seconds), for DER. */
  turns: { start: number; end: number; speaker: number }[];
  /** Total wall time in `write`, ms. */
  writeMs: number;
  /** Total wall time in `labelFinal`, ms. */
  labelMs: number;
}

/** Utterances (word lists) of a recording, as described in the module docstring. */
export function simulatedFinals(pcm: Int16Array, sampleRate: number, endpointS = 0.8, wordS = 0.4): TimeSpan[][] {
  const regions: Region[] = sileroRegions(pcm, sampleRate) ?? energyRegions(new Float32Array(0), 0.01);
  const utts: Region[][] = [];
  for (const r of regions) {
    const u = utts[utts.length - 1];
    if (u && r.start - u[u.length - 1]!.end < endpointS) u.push(r);
    else utts.push([r]);
  }
  return utts.map((u) => {
    const words: TimeSpan[] = [];
    for (const r of u) {
      const n = Math.max(1, Math.round((r.end - r.start) / wordS));
      for (let i = 0; i < n; i++) words.push({ start: r.start + ((r.end - r.start) * i) / n, end: r.start + ((r.end - r.start) * (i + 1)) / n });
    }
    return words;
  });
}

/**
 * Streams `pcm` through `diarizer.stream()` in 100 ms chunks and labels each simulated final once its
 * audio (+0.3 s) has been written.
 * @param finals word lists, default {@link simulatedFinals}.
 */
export function runOnline(diarizer: Diarizer, pcm: Int16Array, sampleRate: number, opts?: DiarizeOptions, finals?: TimeSpan[][]): OnlineRun {
  const utts = finals ?? simulatedFinals(pcm, sampleRate);
  const s = diarizer.stream(sampleRate, opts);
  const chunk = Math.round(sampleRate / 10);
  const out: OnlineFinal[] = [];
  let writeMs = 0, labelMs = 0;
  let next = 0;
  for (let pos = 0; pos < pcm.length || next < utts.length; pos += chunk) {
    if (pos < pcm.length) {
      const t0 = performance.now();
      s.write(pcm.subarray(pos, Math.min(pcm.length, pos + chunk)));
      writeMs += performance.now() - t0;
    }
    const written = Math.min(pcm.length, pos + chunk) / sampleRate;
    while (next < utts.length) {
      const words = utts[next]!;
      const end = words[words.length - 1]!.end;
      if (written < Math.min(end + 0.3, pcm.length / sampleRate) && pos < pcm.length) break;
      const t0 = performance.now();
      const labels = s.labelFinal(words);
      const ms = performance.now() - t0;
      labelMs += ms;
      out.push({ words, labels, labelMs: ms });
      next++;
    }
  }
  s.close();
  const turns = out.flatMap((f) => f.words.map((w, i) => ({ start: w.start, end: w.end, speaker: f.labels[i]!.speaker })));
  return { finals: out, turns, writeMs, labelMs };
}
