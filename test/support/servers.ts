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
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
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
  const child = spawn(c2, a2, { stdio: 'ignore' });
  child.on('error', () => undefined);
  await waitForPort(port, 20000, 'postgres', child);
  // The port opens before the server accepts sessions ("the database system is starting up"): wait for pg_isready.
  for (const until = Date.now() + 20000; ; ) {
    if (spawnSync(path.join(bin, 'pg_isready'), ['-q', '-h', '127.0.0.1', '-p', String(port)]).status === 0) break;
    if (Date.now() > until || child.exitCode !== null) throw new Error('postgres did not accept connections within 20 s');
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `postgres://voxgate@127.0.0.1:${port}/postgres`,
    port,
    async stop() {
      child.kill('SIGINT');
      await waitExit(child, 10000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
