/**
 * Diarization entry point (issue 13): the classical embedded diarizer (EXPERIMENTAL), the DER
 * scorer, and the contract types. `createDiarizer()` is what the engine layer uses.
 */
export * from './types.js';
export { ClassicalDiarizer, ClassicalStreamDiarizer, mapClustersToLabels, type ClassicalOptions, type ScorerFactory, type StreamDiarizerStats } from './classical.js';
export { MfccExtractor, RealFft, type FeatureExtractor, type FeatureStream, type Frames, type MfccOptions } from './mfcc.js';
export { BicScorer, type SegmentScorer, type GaussStats, type BicOptions } from './gaussian.js';
export { countBounds } from './cluster.js';
import { ClassicalDiarizer, type ClassicalOptions } from './classical.js';
import type { Diarizer } from './types.js';

/**
 * The default diarizer: {@link ClassicalDiarizer} with the measured defaults (bench/diarize.ts).
 * Cheap to construct (tables are built lazily per sample rate); one instance can serve many streams.
 */
export function createDiarizer(opts: ClassicalOptions = {}): Diarizer {
  return new ClassicalDiarizer(opts);
}
