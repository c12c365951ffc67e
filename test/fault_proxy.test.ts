/**
 * The fault-injecting proxy (test/support/fault_proxy.ts) against a real `ws` echo server and real
 * `ws` clients: every mode does what the relay tests rely on it for (issue 10 "Tests").
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { FaultProxy } from './support/fault_proxy.js';

/** How a client connection attempt ended. */
interface Outcome {
  opened: boolean;
  /** `unexpected-response` status, when the upgrade got a non-101 answer. */
  status?: number;
  error?: string;
  closeCode?: number;
}

/** Connect a ws client through `url`; resolve once it is open or has failed (or after `ms`). */
function attempt(url: string, ms = 1500): Promise<{ ws: WebSocket; outcome: Outcome }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.on('close', (code) => closeCodes.set(ws, code));
    const outcome: Outcome = { opened: false };
    const done = () => {
      clearTimeout(t);
      resolve({ ws, outcome });
    };
    const t = setTimeout(done, ms);
    ws.on('open', () => {
      outcome.opened = true;
      done();
    });
    ws.on('unexpected-response', (_req, res) => {
      outcome.status = res.statusCode;
      res.resume();
      ws.terminate();
      done();
    });
    ws.on('error', (e) => {
      outcome.error = (e as NodeJS.ErrnoException).code ?? e.message;
      done();
    });
    ws.on('close', (code) => {
      outcome.closeCode = code;
    });
  });
}

/** Resolve with the next message, or `null` after `ms`. */
function nextMessage(ws: WebSocket, ms = 1000): Promise<string | null> {
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      ws.off('message', on);
      resolve(null);
    }, ms);
    const on = (d: WebSocket.RawData) => {
      clearTimeout(t);
      resolve(d.toString());
    };
    ws.once('message', on);
  });
}

/** Close codes of the clients made by {@link attempt}, once closed. */
const closeCodes = new WeakMap<WebSocket, number>();

/** Resolve with the close code once `ws` closes (or `null` after `ms`). */
function closed(ws: WebSocket, ms = 3000): Promise<number | null> {
  const known = closeCodes.get(ws);
  if (known !== undefined) return Promise.resolve(known);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(null), ms);
    ws.once('close', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

describe('FaultProxy in front of a real ws server', () => {
  let wss: WebSocketServer;
  let port: number;
  let proxy: FaultProxy;
  const serverSockets = new Set<WebSocket>();
  let serverConnections = 0;

  before(async () => {
    wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    port = (wss.address() as net.AddressInfo).port;
    wss.on('connection', (ws) => {
      serverConnections++;
      serverSockets.add(ws);
      ws.on('close', () => serverSockets.delete(ws));
      ws.on('error', () => {});
      ws.on('message', (d, isBinary) => ws.send(isBinary ? d : `echo:${d.toString()}`, { binary: isBinary }));
    });
    proxy = await FaultProxy.start({ port });
  });
  after(async () => {
    await proxy.close();
    for (const ws of wss.clients) ws.terminate();
    await new Promise<void>((r) => wss.close(() => r()));
  });

  it('pass: messages go through unchanged both ways', async () => {
    proxy.pass();
    const { ws, outcome } = await attempt(proxy.wsUrl);
    assert.equal(outcome.opened, true);
    ws.send('hello');
    assert.equal(await nextMessage(ws), 'echo:hello');
    const bin = Buffer.from([1, 2, 3, 250]);
    ws.send(bin);
    const got = await new Promise<Buffer>((r) => ws.once('message', (d) => r(d as Buffer)));
    assert.deepEqual([...got], [...bin]);
    assert.ok(proxy.stats.bytesUp > 0 && proxy.stats.bytesDown > 0);
    ws.close(1000);
    assert.equal(await closed(ws), 1000);
  });

  it('refuse: new connections are reset before the handshake; live ones keep working', async () => {
    proxy.pass();
    const live = await attempt(proxy.wsUrl);
    assert.equal(live.outcome.opened, true);
    proxy.refuse();
    const r = await attempt(proxy.wsUrl);
    assert.equal(r.outcome.opened, false);
    assert.match(r.outcome.error ?? '', /ECONNRESET|socket hang up/);
    live.ws.send('still');
    assert.equal(await nextMessage(live.ws), 'echo:still');
    live.ws.terminate();
    proxy.pass();
  });

  it('stopListening: connects are refused (ECONNREFUSED); resumeListening binds the same port again', async () => {
    const p = proxy.port;
    await proxy.stopListening();
    const r = await attempt(`ws://127.0.0.1:${p}`);
    assert.equal(r.outcome.opened, false);
    assert.equal(r.outcome.error, 'ECONNREFUSED');
    await proxy.resumeListening();
    assert.equal(proxy.port, p);
    const ok = await attempt(proxy.wsUrl);
    assert.equal(ok.outcome.opened, true);
    ok.ws.terminate();
  });

  it('stall: the handshake is accepted at TCP level but never answered, and the target never sees it', async () => {
    proxy.stall();
    const before = serverConnections;
    const acceptedBefore = proxy.stats.accepted;
    const r = await attempt(proxy.wsUrl, 800);
    assert.equal(r.outcome.opened, false);
    assert.equal(r.outcome.error, undefined, 'no error: the socket just hangs');
    assert.equal(proxy.stats.accepted, acceptedBefore + 1);
    assert.equal(serverConnections, before);
    r.ws.terminate();
    proxy.pass();
  });

  it('http500: the upgrade request is answered with HTTP/1.1 500', async () => {
    proxy.http500();
    const r = await attempt(proxy.wsUrl);
    assert.equal(r.outcome.opened, false);
    assert.equal(r.outcome.status, 500);
    proxy.pass();
  });

  it('cut after N bytes downstream: the client gets the handshake and then an abnormal close mid-stream', async () => {
    // Measure the 101 response size first so the cut lands after it, inside the first echo.
    proxy.pass();
    const d0 = proxy.stats.bytesDown;
    const probe = await attempt(proxy.wsUrl);
    assert.equal(probe.outcome.opened, true);
    const handshake = proxy.stats.bytesDown - d0;
    probe.ws.terminate();

    proxy.cutAfter(handshake + 3, 'down');
    const { ws, outcome } = await attempt(proxy.wsUrl);
    assert.equal(outcome.opened, true);
    ws.send('x'.repeat(100));
    const msg = await nextMessage(ws, 500);
    assert.equal(msg, null, 'a 3-byte prefix of the echo frame is not a whole message');
    assert.equal(await closed(ws), 1006);
    proxy.pass();
  });

  it('cut after N bytes upstream: the server gets a prefix only and both sides see the connection die', async () => {
    proxy.pass();
    const u0 = proxy.stats.bytesUp;
    const probe = await attempt(proxy.wsUrl);
    const request = proxy.stats.bytesUp - u0;
    probe.ws.terminate();

    const received: string[] = [];
    const onConn = (s: WebSocket) => s.on('message', (d) => received.push(d.toString()));
    wss.on('connection', onConn);
    proxy.cutAfter(request + 20, 'up');
    const { ws, outcome } = await attempt(proxy.wsUrl);
    assert.equal(outcome.opened, true);
    ws.send('first'); // 6-byte header (masked) + 5 = 11 bytes: passes
    assert.equal(await nextMessage(ws), 'echo:first');
    ws.send('second-message-that-is-cut'); // crosses the 20-byte budget
    assert.equal(await closed(ws), 1006);
    wss.off('connection', onConn);
    assert.deepEqual(received, ['first']);
    proxy.pass();
  });

  it('killAll: every live connection dies at once (1006 on the client), new ones still pass', async () => {
    proxy.pass();
    const a = await attempt(proxy.wsUrl);
    const b = await attempt(proxy.wsUrl);
    assert.ok(a.outcome.opened && b.outcome.opened);
    const ca = closed(a.ws);
    const cb = closed(b.ws);
    assert.ok(proxy.killAll() >= 2);
    assert.equal(await ca, 1006);
    assert.equal(await cb, 1006);
    const c = await attempt(proxy.wsUrl);
    assert.equal(c.outcome.opened, true);
    c.ws.send('after');
    assert.equal(await nextMessage(c.ws), 'echo:after');
    c.ws.terminate();
  });

  it('stallLive: live connections stop forwarding but stay open', async () => {
    proxy.pass();
    const { ws } = await attempt(proxy.wsUrl);
    ws.send('one');
    assert.equal(await nextMessage(ws), 'echo:one');
    proxy.stallLive();
    ws.send('two');
    assert.equal(await nextMessage(ws, 500), null);
    assert.equal(ws.readyState, WebSocket.OPEN);
    ws.terminate();
  });

  it('rejects a negative cut', () => {
    assert.throws(() => proxy.cutAfter(-1), RangeError);
  });
});
