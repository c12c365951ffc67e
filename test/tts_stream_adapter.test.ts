/**
 * The streaming TTS interface over a per-segment engine (src/engines/tts/segmented.ts; issue 10
 * part 1 "Streaming TTS engine interface pushText/flush/clear"), on the scripted fake TTS engine.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeTtsEngine } from '../src/engines/tts/fake/index.js';
import { openTtsStream } from '../src/engines/tts/segmented.js';
import type { TtsStream, TtsStreamEvent } from '../src/engines/tts/types.js';

/** Pull events until `stop` says so; returns them with audio summarised as sample counts. */
async function collect(stream: TtsStream, stop: (ev: TtsStreamEvent, all: string[]) => boolean, onEvent?: (ev: TtsStreamEvent) => void): Promise<string[]> {
  const out: string[] = [];
  for await (const ev of stream) {
    onEvent?.(ev);
    if (ev.gen !== stream.generation) continue;
    out.push(ev.kind === 'audio' ? 'audio' : ev.kind === 'segment_start' ? `start:${ev.text}` : ev.kind === 'segment_error' ? `error:${ev.segmentId}` : ev.kind);
    if (stop(ev, out)) break;
  }
  return out;
}

const squash = (events: string[]) => events.filter((e, i) => !(e === 'audio' && events[i - 1] === 'audio'));

describe('SegmentedTtsStream (per-segment engine behind pushText/flush/clear)', () => {
  it('segments at sentence boundaries, speaks them in order and answers each flush once, after its audio', async () => {
    const engine = new FakeTtsEngine({ script: { msPerChar: 2 } });
    await engine.init();
    const stream = openTtsStream(engine, { voice: engine.capabilities.voices[0]!.id, speed: 1 });
    stream.pushText('Hello there. How are');
    stream.pushText(' you today?');
    stream.flush();
    stream.flush();
    let flushed = 0;
    const events = await collect(stream, (ev) => ev.kind === 'flushed' && ++flushed === 2);
    assert.deepEqual(squash(events), ['start:Hello there.', 'audio', 'segment_end', 'start:How are you today?', 'audio', 'segment_end', 'flushed', 'flushed']);
    assert.equal(stream.busy, false);
    assert.equal(stream.pendingChars, 0);
    stream.close();
  });

  it('clear drops queued text and the segment in progress: nothing of it follows, the next text is spoken', async () => {
    const engine = new FakeTtsEngine({ script: { msPerChar: 20 } });
    await engine.init();
    const stream = openTtsStream(engine, { voice: engine.capabilities.voices[0]!.id, speed: 1 });
    stream.pushText('This first sentence is rather long and will be interrupted. A second one waits.');
    let cleared = false;
    const seen: string[] = [];
    const events = await collect(
      stream,
      (ev) => ev.kind === 'flushed',
      (ev) => {
        if (ev.kind === 'segment_start') seen.push(ev.text);
        if (ev.kind === 'audio' && !cleared) {
          cleared = true;
          stream.clear();
          assert.equal(stream.pendingChars, 0);
          stream.pushText('After.');
          stream.flush();
        }
      },
    );
    // The interrupted segment started before the clear; none of its audio or its end follows.
    assert.deepEqual(squash(events), ['start:This first sentence is rather long and will be interrupted.', 'start:After.', 'audio', 'segment_end', 'flushed']);
    assert.ok(!seen.includes('A second one waits.'), 'the queued segment was dropped');
    stream.close();
  });

  it('a segment the engine cannot speak is reported and skipped; the stream goes on', async () => {
    const engine = new FakeTtsEngine({ script: { msPerChar: 2, failures: [{ when: 'broken', code: 'provider_error', message: 'no voice for this' }] } });
    await engine.init();
    const stream = openTtsStream(engine, { voice: engine.capabilities.voices[0]!.id, speed: 1 });
    stream.pushText('This is broken. This is fine.');
    stream.flush();
    const events = await collect(stream, (ev) => ev.kind === 'flushed');
    assert.deepEqual(squash(events), ['start:This is broken.', 'error:seg_001', 'segment_end', 'start:This is fine.', 'audio', 'segment_end', 'flushed']);
    stream.close();
  });

  it('close ends iteration while idle', async () => {
    const engine = new FakeTtsEngine();
    await engine.init();
    const stream = openTtsStream(engine, { voice: engine.capabilities.voices[0]!.id, speed: 1 });
    setTimeout(() => stream.close(), 20);
    assert.deepEqual(await collect(stream, () => false), []);
  });
});
