/**
 * Parallel decoding of one (mono) file on K engine streams — "lanes" — for pre-recorded throughput
 * (issue #3 "Files of any length"; measured in bench/http.ts).
 *
 * The PCM is cut into segments of about {@link SEGMENT_SECONDS}: once a segment is that long, the
 * next {@link CUT_SEARCH_SECONDS} are held and the segment ends at the quietest 20 ms window in
 * them (a pause between words, so no word is split in practice). Segments go to the lanes in turn;
 * a lane's segment is closed with `finalize()`, so each final belongs to exactly one segment and its
 * times are mapped back from the lane's clock to the file's clock. While one lane decodes its
 * segment the next lane receives the following one, so with K lanes K decoders work at once.
 *
 * With one lane it is a pass-through (no cuts, no finalize). Memory: at most the held search window
 * plus each lane's backlog (bounded by the caller's backpressure on {@link ParallelLanes.backlogSeconds}).
 */
import type { SttFinal, SttStream } from '../engines/stt/types.js';

/** Target segment length, seconds. */
export const SEGMENT_SECONDS = 15;
/** Audio after the target length searched for the quietest cut point, seconds. */
export const CUT_SEARCH_SECONDS = 3;
/** Window of the quiet-point search, seconds. */
const CUT_WINDOW_SECONDS = 0.02;

interface Segment {
  /** Sample (file clock) where the segment starts. */
  fileStart: number;
  /** Sample (lane clock) where the segment starts. */
  laneStart: number;
}

interface Lane {
  stream: SttStream;
  /** Samples written to this lane so far (its clock). */
  written: number;
  /** Segments whose closing final has not arrived, oldest first. */
  segments: Segment[];
}

/** See the module documentation. */
export class ParallelLanes {
  /** Finals on the file's clock, in arrival order (sort by `start` for time order). */
  readonly finals: SttFinal[] = [];
  private readonly lanes: Lane[];
  private cur = 0;
  /** Samples of the file so far (written to lanes or held). */
  private fileSamples = 0;
  /** Samples in the current segment written to its lane. */
  private segSamples = 0;
  /** Held samples while searching for a cut point. */
  private held: Int16Array[] = [];
  private heldSamples = 0;

  /**
   * @param streams started engine streams (≥ 1), all at `rate` Hz.
   * @param rate the engines' input rate, Hz.
   * @param onError called once if any lane's stream fails.
   */
  constructor(
    streams: SttStream[],
    private readonly rate: number,
    onError: (err: Error) => void,
  ) {
    // Lane 0 starts with the file's first segment; the others get theirs at each cut.
    this.lanes = streams.map((stream, i) => ({ stream, written: 0, segments: i === 0 ? [{ fileStart: 0, laneStart: 0 }] : [] }));
    this.lanes.forEach((lane) => {
      lane.stream.on('error', onError);
      lane.stream.on('final', (f) => this.onFinal(lane, f));
    });
  }

  /** Number of lanes. */
  get size(): number {
    return this.lanes.length;
  }

  /** Seconds waiting in the lane being written (its engine backlog) plus held search audio. */
  get backlogSeconds(): number {
    return this.lanes[this.cur]!.stream.backlogSeconds + this.heldSamples / this.rate;
  }

  /** Queue mono PCM at `rate`. */
  write(pcm: Int16Array): void {
    if (this.lanes.length === 1) {
      this.toLane(pcm);
      return;
    }
    const target = SEGMENT_SECONDS * this.rate;
    let off = 0;
    while (off < pcm.length) {
      if (this.segSamples < target) {
        const n = Math.min(pcm.length - off, target - this.segSamples);
        this.toLane(pcm.subarray(off, off + n));
        off += n;
        continue;
      }
      const n = Math.min(pcm.length - off, CUT_SEARCH_SECONDS * this.rate - this.heldSamples);
      this.held.push(pcm.slice(off, off + n));
      this.heldSamples += n;
      off += n;
      if (this.heldSamples >= CUT_SEARCH_SECONDS * this.rate) this.cut();
    }
  }

  /** End of input: the held audio goes to the current lane. */
  end(): void {
    for (const h of this.held.splice(0)) this.toLane(h);
    this.heldSamples = 0;
  }

  /** {@link end}, then drain every lane (all finals delivered). */
  async close(): Promise<void> {
    this.end();
    await Promise.all(this.lanes.map((l) => l.stream.close()));
  }

  /** Abort every lane now. */
  abort(): void {
    for (const l of this.lanes) l.stream.abort();
  }

  private toLane(pcm: Int16Array): void {
    if (pcm.length === 0) return;
    const lane = this.lanes[this.cur]!;
    lane.stream.write(pcm);
    lane.written += pcm.length;
    this.segSamples += pcm.length;
    this.fileSamples += pcm.length;
  }

  /** End the current segment at the quietest window of the held audio; start the next lane. */
  private cut(): void {
    const all = new Int16Array(this.heldSamples);
    let at = 0;
    for (const h of this.held) {
      all.set(h, at);
      at += h.length;
    }
    this.held = [];
    this.heldSamples = 0;
    const win = Math.round(CUT_WINDOW_SECONDS * this.rate);
    let best = 0;
    let bestEnergy = Infinity;
    for (let i = 0; i + win <= all.length; i += win) {
      let e = 0;
      for (let k = i; k < i + win; k++) e += all[k]! * all[k]!;
      if (e < bestEnergy) {
        bestEnergy = e;
        best = i + (win >> 1);
      }
    }
    this.toLane(all.subarray(0, best));
    this.lanes[this.cur]!.stream.finalize();
    this.cur = (this.cur + 1) % this.lanes.length;
    const next = this.lanes[this.cur]!;
    next.segments.push({ fileStart: this.fileSamples, laneStart: next.written });
    this.segSamples = 0;
    this.toLane(all.subarray(best));
  }

  private onFinal(lane: Lane, f: SttFinal): void {
    const seg = lane.segments[0] ?? { fileStart: 0, laneStart: 0 };
    // `finalize()` ends a segment: its final (exactly one, `fromFinalize`) closes the segment.
    if (f.fromFinalize && this.lanes.length > 1) lane.segments.shift();
    if (!f.transcript && (f.words?.length ?? 0) === 0) return;
    const shift = (seg.fileStart - seg.laneStart) / this.rate;
    if (shift === 0) {
      this.finals.push(f);
      return;
    }
    this.finals.push({
      ...f,
      start: f.start + shift,
      words: f.words?.map((w) => ({ ...w, start: w.start + shift, end: w.end + shift })),
    });
  }
}
