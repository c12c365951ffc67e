/**
 * Issue 14 attack measurements: event-loop lag (perf_hooks.monitorEventLoopDelay, in the server's
 * process), RSS growth, and `/healthz` latency seen by a separate client process, during each attack
 * of the hardening suite run at full size. Loopback only.
 *
 *   node dist/bench/attacks.js            # prints one JSON line per attack
 *
 * The server runs in this process; the attacker and the /healthz prober each in a child process, so
 * the lag measured is the server's own and the probe does not share the attacker's event loop.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { loadConfig } from '../src/config/config.js';
import { startVoxgate } from '../src/server/bootstrap.js';

const STT = 'local/pocketsphinx:en';
const ATTACKS = ['idle-baseline', 'unauth-nested-json-44MBx3', 'ws-nested-frames-1.38MBx5', 'multipart-8x30MB-fields', 'slow-uploads-x50', 'unauth-connections-x300'] as const;
type Attack = (typeof ATTACKS)[number];

const pct = (xs: number[], p: number): number => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

/** Child: probe /healthz every 20 ms until told to stop; report latencies. */
async function prober(port: number): Promise<void> {
  const lat: number[] = [];
  let probing = true;
  process.on('message', () => (probing = false));
  while (probing) {
    const t = performance.now();
    await fetch(`http://127.0.0.1:${port}/healthz`, { headers: { Connection: 'close' } }).then((r) => r.text(), () => '');
    lat.push(performance.now() - t);
    await new Promise((r) => setTimeout(r, 20));
  }
  process.send?.({ healthz: { n: lat.length, p50: +pct(lat, 50).toFixed(1), p99: +pct(lat, 99).toFixed(1), max: +Math.max(0, ...lat).toFixed(1) } });
}

/** Child: run one attack against `port`; report its duration. */
async function attacker(port: number, key: string, attack: Attack): Promise<void> {
  const raw = (head: string, body: () => Iterable<Buffer>): Promise<void> =>
    new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', async () => {
        s.write(head);
        for (const b of body()) {
          if (s.destroyed) break;
          if (!s.write(b)) await new Promise((r) => s.once('drain', r).once('close', r));
        }
      });
      s.on('data', () => {});
      s.on('error', () => resolve());
      s.on('close', () => resolve());
      setTimeout(() => s.destroy(), 20_000).unref();
    });
  const t0 = performance.now();
  let rounds = 0;
  // Short attacks are repeated for 3 s so /healthz is probed throughout.
  do {
    rounds++;
    await once(attack);
  } while (performance.now() - t0 < 3000 && !attack.startsWith('slow') && !attack.startsWith('unauth-conn'));
  const ms = performance.now() - t0;
  process.send?.({ attack, rounds, attackMs: Math.round(ms) });

  async function once(attack: Attack): Promise<void> {
  if (attack === 'idle-baseline') {
    await new Promise((r) => setTimeout(r, 3000));
  } else if (attack === 'unauth-nested-json-44MBx3') {
    const size = 44 * 1024 * 1024;
    const body = function* () {
      const chunk = Buffer.alloc(64 * 1024, '[');
      for (let i = 0; i < size / 2 / chunk.length; i++) yield chunk;
      const close = Buffer.alloc(64 * 1024, ']');
      for (let i = 0; i < size / 2 / close.length; i++) yield close;
    };
    await Promise.all([0, 1, 2].map(() => raw(`POST /v1/stt/${STT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\n\r\n`, body)));
  } else if (attack === 'ws-nested-frames-1.38MBx5') {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/stt/${STT}`, { headers: { Authorization: `Bearer ${key}` } });
    await new Promise((r) => ws.once('open', r));
    const n = 690_000;
    for (let i = 0; i < 5; i++) ws.send('['.repeat(n) + ']'.repeat(n));
    await new Promise((r) => {
      let got = 0;
      ws.on('message', () => ++got === 5 && r(null));
      ws.on('close', r);
      setTimeout(r, 20_000).unref();
    });
    ws.close();
  } else if (attack === 'multipart-8x30MB-fields') {
    const field = Buffer.alloc(30 * 1024 * 1024, 'a');
    const parts = function* () {
      for (let i = 0; i < 8; i++) {
        yield Buffer.from(`--XX\r\nContent-Disposition: form-data; name="f${i}"\r\n\r\n`);
        for (let o = 0; o < field.length; o += 1 << 20) yield field.subarray(o, o + (1 << 20));
        yield Buffer.from('\r\n');
      }
      yield Buffer.from('--XX--\r\n');
    };
    await raw(`POST /v1/stt/${STT} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nContent-Type: multipart/form-data; boundary=XX\r\nTransfer-Encoding: identity\r\nContent-Length: ${8 * (field.length + 60) + 10}\r\n\r\n`, parts);
  } else if (attack === 'slow-uploads-x50') {
    const socks = Array.from({ length: 50 }, () => net.connect(port, '127.0.0.1'));
    for (const s of socks) {
      s.on('error', () => {});
      s.write(`POST /v1/stt/${STT} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nContent-Type: audio/wav\r\nContent-Length: 10000000\r\n\r\nRIFF`);
    }
    await new Promise((r) => setTimeout(r, 3000));
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/stt/${STT}`, { headers: { Authorization: `Bearer ${key}` } });
    const first = await new Promise<string>((r) => {
      ws.once('open', () => ws.send(JSON.stringify({ type: 'init', config: { encoding: 'linear16', sample_rate: 16000 } })));
      ws.once('message', (d) => r(String(d)));
      ws.once('unexpected-response', (_q, res) => r(`HTTP ${res.statusCode}`));
    });
    process.send?.({ note: `new session during 50 stalled uploads: ${first.slice(0, 80)}` });
    ws.close();
    for (const s of socks) s.destroy();
  } else if (attack === 'unauth-connections-x300') {
    const socks = Array.from({ length: 300 }, () => net.connect(port, '127.0.0.1'));
    let closedByServer = 0;
    for (const s of socks) {
      s.on('error', () => {});
      s.on('close', () => closedByServer++);
    }
    await new Promise((r) => setTimeout(r, 2000));
    process.send?.({ note: `${closedByServer} of 300 idle connections closed by the server at accept` });
    for (const s of socks) s.destroy();
  }
  }
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'voxgate-attacks-'));
  const base = loadConfig();
  const config = { ...base, http: { ...base.http, maxBodyBytes: 1024 * 1024, bodyIdleTimeoutMs: 5000 } };
  const v = await startVoxgate({ port: 0, host: '127.0.0.1', dataDir, config, logLevel: 'silent' });
  const { key } = v.keys.create('attacks');
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const only = process.argv.slice(2).filter((a) => (ATTACKS as readonly string[]).includes(a)) as Attack[];
  for (const attack of only.length ? only : ATTACKS) {
    await new Promise((r) => setTimeout(r, 500));
    h.reset();
    const rss0 = process.memoryUsage().rss;
    let peak = rss0;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
    const probe = fork(fileURLToPath(import.meta.url), ['--prober', String(v.port)], { stdio: 'inherit' });
    const probed = new Promise<Record<string, unknown>>((resolve) => probe.once('message', (m: Record<string, unknown>) => resolve(m)));
    const child = fork(fileURLToPath(import.meta.url), ['--attacker', String(v.port), key, attack], { stdio: 'inherit' });
    const notes: string[] = [];
    const result = await new Promise<Record<string, unknown>>((resolve) => {
      child.on('message', (m: Record<string, unknown>) => (m.note ? notes.push(String(m.note)) : resolve(m)));
      child.on('exit', () => resolve({ attack, error: 'attacker exited' }));
    });
    clearInterval(sampler);
    child.kill();
    probe.send('stop');
    Object.assign(result, await probed);
    probe.kill();
    console.log(
      JSON.stringify({
        ...result,
        notes,
        eventLoopLagMs: { p50: +(h.percentile(50) / 1e6).toFixed(1), p99: +(h.percentile(99) / 1e6).toFixed(1), max: +(h.max / 1e6).toFixed(1) },
        rssPeakDeltaMB: +((peak - rss0) / 1e6).toFixed(1),
      }),
    );
  }
  h.disable();
  await v.stop();
  rmSync(dataDir, { recursive: true, force: true });
}

if (process.argv[2] === '--prober') {
  void prober(Number(process.argv[3])).then(() => process.exit(0));
} else if (process.argv[2] === '--attacker') {
  void attacker(Number(process.argv[3]), process.argv[4]!, process.argv[5] as Attack).then(() => process.exit(0));
} else {
  void main();
}
