/**
 * The replay fake (test/support/replay_fake.ts) itself: gating on audio, subset matching, captures,
 * violations, refusals and HTTP fixtures — so provider tests built on it can fail.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import WebSocket from 'ws';
import { loadFixture, ReplayFake, subsetMismatch } from './support/replay_fake.js';

function fixture(lines: unknown[]): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'vg-fx-'));
  const f = path.join(dir, 'f.jsonl');
  writeFileSync(f, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  return f;
}

const STT = fixture([
  { t: 0, dir: 'meta', data: { path: '/listen', query: { model: 'x' }, headers: { authorization: '$present' }, ignore: [{ type: 'keepalive' }] } },
  { t: 1, dir: 'in', data: { type: 'config', id: '$any' }, capture: { id: 'id' } },
  { t: 2, dir: 'out', data: { type: 'ready', session: '${id}' } },
  { t: 3, dir: 'in', data: { $audio: true } },
  { t: 900, dir: 'out', audio_s: 1, data: { type: 'final', text: 'hello', tag: 'id-${id}' } },
  { t: 901, dir: 'in', data: { type: 'close' } },
  { t: 902, dir: 'close', data: { code: 1000 } },
]);

function collect(ws: WebSocket): { msgs: unknown[]; closed: Promise<number> } {
  const msgs: unknown[] = [];
  ws.on('message', (d, bin) => msgs.push(bin ? 'binary' : JSON.parse(String(d))));
  return { msgs, closed: new Promise((r) => ws.on('close', (c) => r(c))) };
}

test('replays a WS session gated on audio, with captures, and reports no violations for a faithful client', async () => {
  const fake = new ReplayFake({ fixtures: [loadFixture(STT)] });
  const { ws: base } = await fake.start();
  try {
    const ws = new WebSocket(`${base}/listen?model=x`, { headers: { Authorization: 'Token k' } });
    const c = collect(ws);
    await new Promise((r) => ws.on('open', r));
    ws.send(JSON.stringify({ type: 'config', id: 'abc' }));
    ws.send(JSON.stringify({ type: 'keepalive' }));
    for (let i = 0; i < 9; i++) ws.send(Buffer.alloc(3200));
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(c.msgs, [{ type: 'ready', session: 'abc' }], 'final waits for 1 s of audio');
    ws.send(Buffer.alloc(3200));
    ws.send(JSON.stringify({ type: 'close' }));
    assert.equal(await c.closed, 1000);
    assert.deepEqual(c.msgs[1], { type: 'final', text: 'hello', tag: 'id-abc' });
    assert.deepEqual(fake.violations(), []);
    assert.equal(fake.sessions[0].audioSeconds, 1);
  } finally {
    await fake.close();
  }
});

test('collects violations: wrong query, missing header, unexpected frame', async () => {
  const fake = new ReplayFake({ fixtures: [loadFixture(STT)] });
  const { ws: base } = await fake.start();
  try {
    const ws = new WebSocket(`${base}/listen?model=y`);
    await new Promise((r) => ws.on('open', r));
    ws.send(JSON.stringify({ type: 'nonsense' }));
    await new Promise((r) => setTimeout(r, 50));
    ws.close();
    await new Promise((r) => ws.on('close', r));
    await new Promise((r) => setTimeout(r, 20));
    const v = fake.violations().join('\n');
    assert.match(v, /query model: expected x, got y/);
    assert.match(v, /header authorization: missing/);
    assert.match(v, /expected .*config.*got .*nonsense/);
    assert.ok(fake.sessions[0].unmet.length >= 2);
  } finally {
    await fake.close();
  }
});

test('refuses a handshake with the fixture status, and serves HTTP fixtures', async () => {
  const refuse = fixture([{ t: 0, dir: 'meta', data: { status: 401, refuseBody: { detail: 'bad key' } } }]);
  const httpFx = fixture([
    { t: 0, dir: 'meta', data: { kind: 'http', method: 'POST', path: '/tts', body: { text: '$any' } } },
    { t: 1, dir: 'out', data: { $http: { status: 200, headers: { 'content-type': 'audio/pcm' } } } },
    { t: 2, dir: 'out', data: { $pcm: 0.1, rate: 8000 } },
  ]);
  const fake = new ReplayFake({ fixtures: ({ path: p }) => loadFixture(p === '/tts' ? httpFx : refuse) });
  const { ws: base, http: hbase } = await fake.start();
  try {
    const ws = new WebSocket(`${base}/x`);
    const status = await new Promise<number>((r) => ws.on('unexpected-response', (_req, res) => r(res.statusCode ?? 0)));
    assert.equal(status, 401);
    const res = await fetch(`${hbase}/tts`, { method: 'POST', body: JSON.stringify({ text: 'hi' }) });
    assert.equal(res.status, 200);
    assert.equal((await res.arrayBuffer()).byteLength, 1600);
    assert.deepEqual(fake.violations(), []);
  } finally {
    await fake.close();
  }
});

test('subsetMismatch: $any, $absent, arrays', () => {
  assert.equal(subsetMismatch({ a: '$any', b: '$absent', c: [1, { d: 2 }] }, { a: 0, c: [1, { d: 2, e: 3 }] }), null);
  assert.match(subsetMismatch({ b: '$absent' }, { b: 1 })!, /absent/);
  assert.match(subsetMismatch({ a: '$any' }, {})!, /missing/);
});
