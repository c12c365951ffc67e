/**
 * Registry of STT wire dialects by catalogue name (`dialect` field of a model entry).
 */
import type { SttDialectName } from '../config/config.js';
import type { SttDialect } from './events.js';
import { unifiedDialect } from './unified/index.js';
import { deepgramStyleDialect } from './deepgram-style/index.js';
import { dualDialect } from './dual/index.js';

/** Dialect implementations keyed by catalogue name. */
export const STT_DIALECT_IMPLS: Record<SttDialectName, SttDialect> = {
  unified: unifiedDialect,
  'deepgram-style': deepgramStyleDialect,
  dual: dualDialect,
};
