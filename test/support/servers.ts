/**
 * Real Redis and PostgreSQL servers for tests (issue 12 "Tests (real servers: Debian's `redis-server`
 * and `postgresql`, started by the tests)"). Each call starts a private throw-away instance on
 * 127.0.0.1 and a free port, in a temporary directory, and `stop()` removes it. Nothing here touches
 * a system-wide instance.
 *
 * PostgreSQL refuses to run as root: when the test runs as root (CI containers), `initdb` and
 * `postgres` run as the `postgres` user created by the Debian package, through `runuser`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A free TCP port on 127.0.0.1 (closed again before returning; tiny race accepted in tests). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

async function waitForPort(port: number, timeoutMs: number, what: string, child: ChildProcess): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode} before listening`);
    const ok = await new Promise<boolean>((r) => {
      const c = net.connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        r(true);
      });
      c.once('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`${what} did not listen on ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function waitExit(c: ChildProcess, ms: number): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((r) => {
    const t = setTimeout(() => {
      c.kill('SIGKILL');
      r();
    }, ms);
    c.once('exit', () => {
      clearTimeout(t);
      r();
    });
  });
}

/** A running private Redis. */
export interface RedisServer {
  url: string;
  port: number;
  /** Stop it (SIGTERM, no persistence). */
  stop(): Promise<void>;
  /** Start it again on the same port (empty: nothing is persisted), for outage/reconvergence tests. */
  restart(): Promise<void>;
}

/** Start `redis-server` (Debian package) on a free port without persistence. @throws when it is not installed. */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  let child: ChildProcess | null = null;
  const launch = async (): Promise<void> => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], { stdio: 'ignore' });
    child.on('error', () => undefined);
    await waitForPort(port, 10000, 'redis-server', child);
  };
  await launch();
  const stop = async (): Promise<void> => {
    const c = child as ChildProcess | null;
    if (!c) return;
    c.kill('SIGTERM');
    await waitExit(c, 5000);
    child = null;
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop,
    async restart() {
      await stop();
      await launch();
    },
  };
}

/** A running private PostgreSQL (trust auth, user `voxgate`, database `postgres`). */
export interface PostgresServer {
  /** `postgres://voxgate@127.0.0.1:<port>/postgres` */
  url: string;
  port: number;
  /** Fast shutdown and removal of the data directory. */
  stop(): Promise<void>;
  /**
   * Fast shutdown keeping the data, then (after `downMs`, default 0) start again on the same port:
   * for outage tests (issue 12). Resolves once it listens again.
   */
  restart(downMs?: number, whileDown?: () => Promise<void>): Promise<void>;
}

/** The newest `/usr/lib/postgresql/<ver>/bin` (Debian layout). @throws when PostgreSQL is not installed. */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const vers = existsSync(root) ? readdirSync(root).filter((v) => existsSync(path.join(root, v, 'bin', 'postgres'))) : [];
  if (!vers.length) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql (apt install postgresql)');
  vers.sort((a, b) => Number(b) - Number(a));
  return path.join(root, vers[0], 'bin');
}

/** Start a throw-away PostgreSQL cluster (initdb + postgres, fsync off) on a free port. */
export async function startPostgres(): Promise<PostgresServer> {
  const bin = postgresBinDir();
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(path.join(tmpdir(), 'vg-pg-'));
  const data = path.join(dir, 'data');
  const wrap = (cmd: string, args: string[]): [string, string[]] => (asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]);
  if (asRoot) chownSync(dir, Number(spawnSync('id', ['-u', 'postgres']).stdout.toString().trim()), Number(spawnSync('id', ['-g', 'postgres']).stdout.toString().trim()));
  const [c1, a1] = wrap(path.join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'voxgate', '--no-sync', '-E', 'UTF8', '--locale=C']);
  const init = spawnSync(c1, a1, { encoding: 'utf8' });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
  const port = await freePort();
  const [c2, a2] = wrap(path.join(bin, 'postgres'), ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']);
  const launch = async (): Promise<ChildProcess> => {
    const c = spawn(c2, a2, { stdio: 'ignore' });
    c.on('error', () => undefined);
    await waitForPort(port, 20000, 'postgres', c);
    // The port opens before recovery/startup ends ("the database system is starting up"): wait until
    // `pg_isready` says it accepts connections.
    const until = Date.now() + 20000;
    while (spawnSync(path.join(bin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'voxgate', '-d', 'postgres', '-t', '2']).status !== 0) {
      if (c.exitCode !== null) throw new Error(`postgres exited with ${c.exitCode} while starting`);
      if (Date.now() > until) throw new Error(`postgres on ${port} not ready within 20 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return c;
  };
  let child = await launch();
  /**
   * Fast shutdown (SIGINT) sent to the postmaster itself: through `runuser` (tests as root) the signal
   * would reach postgres as SIGTERM, a "smart" shutdown that waits for every client to disconnect
   * (a gateway's pool never does), and the postmaster would outlive the test. Its pid is the first
   * line of `postmaster.pid`. SIGKILL after 10 s.
   */
  const shutdown = async (): Promise<void> => {
    let pid: number | null = null;
    try {
      pid = Number(readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n', 1)[0]) || null;
    } catch {
      pid = null;
    }
    const signal = (sig: NodeJS.Signals) => {
      try {
        if (pid) process.kill(pid, sig);
        else child.kill(sig);
      } catch {
        /* already gone */
      }
    };
    signal('SIGINT');
    const exited = await new Promise<boolean>((r) => {
      if (child.exitCode !== null || child.signalCode !== null) return r(true);
      const t = setTimeout(() => r(false), 10000);
      child.once('exit', () => {
        clearTimeout(t);
        r(true);
      });
    });
    if (!exited) {
      signal('SIGKILL');
      await waitExit(child, 2000);
    }
  };
  return {
    url: `postgres://voxgate@127.0.0.1:${port}/postgres`,
    port,
    async stop() {
      await shutdown();
      rmSync(dir, { recursive: true, force: true });
    },
    async restart(downMs = 0, whileDown) {
      await shutdown();
      await whileDown?.();
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
      child = await launch();
    },
  };
}
