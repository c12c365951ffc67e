/**
 * Microphone capture for live transcription: getUserMedia → AudioWorklet `voxgate-capture`
 * (./capture-worklet.ts) → mono linear16 16 kHz chunks of 20 ms delivered to `onChunk`.
 */
import workletUrl from './capture-worklet.ts?worker&url';

/** Called per 20 ms chunk: 320 int16 samples at 16 kHz, and the chunk's RMS level in dBFS. */
export type ChunkHandler = (pcm: Int16Array, levelDbfs: number) => void;

/** A user-facing capture failure (permission denied, no device, insecure page …). */
export class MicError extends Error {}

/** Explain a getUserMedia failure in words. */
function micErrorMessage(err: unknown): string {
  const name = (err as { name?: string })?.name;
  if (name === 'NotAllowedError' || name === 'SecurityError') return 'Microphone access was denied. Allow the microphone for this page in the browser and try again.';
  if (name === 'NotFoundError' || name === 'OverconstrainedError') return 'No microphone was found.';
  if (name === 'NotReadableError') return 'The microphone is in use by another application or could not be opened.';
  return `Could not open the microphone: ${(err as Error)?.message ?? String(err)}`;
}

/** A running capture. Create with {@link MicCapture.start}. */
export class MicCapture {
  private done: Promise<void> | null = null;

  private constructor(
    private readonly ctx: AudioContext,
    private readonly stream: MediaStream,
    private readonly node: AudioWorkletNode,
    private readonly finished: Promise<void>,
  ) {}

  /** Hardware/context sample rate the worklet resamples from (Hz). */
  get inputRate(): number {
    return this.ctx.sampleRate;
  }

  /**
   * Ask for the microphone and start capturing. Call from a user gesture (click/keypress).
   * `onEnded` is called with a readable message if the device goes away while capturing.
   * @throws MicError with a readable message when the microphone cannot be used.
   */
  static async start(onChunk: ChunkHandler, onEnded: (message: string) => void = () => {}): Promise<MicCapture> {
    if (!navigator.mediaDevices?.getUserMedia) {
      throw new MicError('This page cannot use the microphone: browsers only allow it on https:// or http://localhost pages.');
    }
    let stream: MediaStream;
    try {
      // Raw audio: the recogniser does its own normalisation; browser noise suppression/AGC distort it.
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
    } catch (err) {
      throw new MicError(micErrorMessage(err));
    }
    const ctx = new AudioContext({ latencyHint: 'interactive' });
    try {
      await ctx.audioWorklet.addModule(workletUrl);
      const source = ctx.createMediaStreamSource(stream);
      const node = new AudioWorkletNode(ctx, 'voxgate-capture', { numberOfInputs: 1, numberOfOutputs: 1, channelCountMode: 'explicit', channelCount: 1 });
      let resolveDone!: () => void;
      const finished = new Promise<void>((r) => (resolveDone = r));
      node.port.onmessage = (e: MessageEvent<{ pcm?: ArrayBuffer; rms?: number; done?: boolean }>) => {
        if (e.data.pcm) onChunk(new Int16Array(e.data.pcm), e.data.rms ?? -120);
        if (e.data.done) resolveDone();
      };
      // A silent sink keeps the graph pulling the worklet without playing the microphone back.
      const sink = ctx.createGain();
      sink.gain.value = 0;
      source.connect(node).connect(sink).connect(ctx.destination);
      await ctx.resume();
      const capture = new MicCapture(ctx, stream, node, finished);
      for (const t of stream.getAudioTracks()) t.addEventListener('ended', () => capture.done === null && onEnded('The microphone was disconnected or taken by another application.'));
      return capture;
    } catch (err) {
      stream.getTracks().forEach((t) => t.stop());
      void ctx.close();
      throw new MicError(`Could not start audio capture: ${(err as Error).message}`);
    }
  }

  /** Stop: release the microphone; the last partial chunk is delivered before this resolves. */
  stop(): Promise<void> {
    if (this.done) return this.done;
    this.node.port.postMessage({ type: 'stop' });
    const timeout = new Promise<void>((r) => setTimeout(r, 500));
    this.done = Promise.race([this.finished, timeout]).then(async () => {
      this.stream.getTracks().forEach((t) => t.stop());
      this.node.disconnect();
      await this.ctx.close();
    });
    return this.done;
  }
}
