/**
 * A fault-injecting TCP proxy for relay tests (issue 10 "Tests": "a fault-injecting TCP proxy between
 * them: refuse, stall, HTTP 500 at the handshake, cut after N bytes"; shared/spec/upstreams.md §3).
 *
 * It listens on 127.0.0.1:0 in front of one target (`host:port`) and forwards bytes unchanged in both
 * directions. Its {@link FaultMode} can be switched at any time; a mode applies to connections
 * accepted from then on (live connections keep the mode they were accepted in), except for the
 * explicit live-connection actions {@link FaultProxy.killAll} and {@link FaultProxy.stallLive}.
 *
 * Modes:
 * - `pass` — forward everything.
 * - `refuse` — accept and reset the connection at once (the client sees ECONNRESET / an abnormal
 *   close before any byte). {@link FaultProxy.stopListening} instead closes the listening socket so
 *   connects get ECONNREFUSED; {@link FaultProxy.resumeListening} binds the same port again.
 * - `stall` — accept, read and discard whatever the client sends, never connect to the target and
 *   never answer (a backend that hangs at the handshake).
 * - `http500` — read the client's request head (up to the blank line) and answer
 *   `HTTP/1.1 500 Internal Server Error`, then close; the target is never contacted.
 * - `cut` — forward normally until `bytes` bytes have passed in `direction` (`up` = client → target,
 *   `down` = target → client, `any` = both together) on that connection, forward exactly up to that
 *   count, then destroy both sides (as a crashed peer would).
 *
 * Nothing here throws after construction: socket errors end the affected connection only.
 */
import net from 'node:net';

/** Which way bytes flow through the proxy: `up` = client → target, `down` = target → client. */
export type FaultDirection = 'up' | 'down' | 'any';

/** The proxy's behaviour for newly accepted connections (see the module docstring). */
export type FaultMode =
  | { kind: 'pass' }
  | { kind: 'refuse' }
  | { kind: 'stall' }
  | { kind: 'http500' }
  | { kind: 'cut'; /** Bytes (≥ 0) forwarded in `direction` before the connection is destroyed. */ bytes: number; direction: FaultDirection };

/** Counters, for assertions that traffic really went through the proxy. */
export interface FaultProxyStats {
  /** Connections accepted since start (all modes). */
  accepted: number;
  /** Connections currently open (client side not yet closed). */
  live: number;
  /** Bytes forwarded client → target, all connections. */
  bytesUp: number;
  /** Bytes forwarded target → client, all connections. */
  bytesDown: number;
  /** Connections ended by the proxy on purpose (refuse, cut, kill, http500). */
  faulted: number;
}

/** One proxied connection. */
interface Link {
  client: net.Socket;
  target: net.Socket | null;
  /** Forwarding suspended: bytes from either side are read and dropped. */
  stalled: boolean;
  close(): void;
}

/** A TCP proxy with runtime-switchable faults; create with {@link FaultProxy.start}. */
export class FaultProxy {
  private mode: FaultMode = { kind: 'pass' };
  private server: net.Server;
  private readonly links = new Set<Link>();
  private listeningPort = 0;
  readonly stats: FaultProxyStats = { accepted: 0, live: 0, bytesUp: 0, bytesDown: 0, faulted: 0 };

  private constructor(
    /** Target host (e.g. `127.0.0.1`). */
    readonly targetHost: string,
    /** Target TCP port. */
    readonly targetPort: number,
  ) {
    this.server = this.makeServer();
  }

  /**
   * Start a proxy on 127.0.0.1 (port 0 = any free port) forwarding to `target`.
   * @param target `{host?, port}` (host default 127.0.0.1) or a `ws://`/`http://` URL whose host and port are used.
   * @throws Error when the listen fails (e.g. the given port is taken).
   */
  static async start(target: { host?: string; port: number } | string, port = 0): Promise<FaultProxy> {
    let host = '127.0.0.1';
    let tport: number;
    if (typeof target === 'string') {
      const u = new URL(target);
      host = u.hostname;
      tport = Number(u.port);
    } else {
      host = target.host ?? host;
      tport = target.port;
    }
    const p = new FaultProxy(host, tport);
    await p.listen(port);
    return p;
  }

  /** The proxy's own port on 127.0.0.1. */
  get port(): number {
    return this.listeningPort;
  }

  /** `ws://127.0.0.1:PORT` — the URL to give the client instead of the target's. */
  get wsUrl(): string {
    return `ws://127.0.0.1:${this.listeningPort}`;
  }

  /** `http://127.0.0.1:PORT`. */
  get httpUrl(): string {
    return `http://127.0.0.1:${this.listeningPort}`;
  }

  /** The current mode. */
  get currentMode(): FaultMode {
    return this.mode;
  }

  /**
   * Switch the mode for connections accepted from now on.
   * @throws RangeError for a `cut` with a negative or non-integer byte count.
   */
  setMode(mode: FaultMode): this {
    if (mode.kind === 'cut' && (!Number.isInteger(mode.bytes) || mode.bytes < 0)) throw new RangeError(`cut bytes must be a non-negative integer, got ${mode.bytes}`);
    this.mode = mode;
    return this;
  }

  /** Shorthands for {@link setMode}. */
  pass(): this {
    return this.setMode({ kind: 'pass' });
  }
  refuse(): this {
    return this.setMode({ kind: 'refuse' });
  }
  stall(): this {
    return this.setMode({ kind: 'stall' });
  }
  http500(): this {
    return this.setMode({ kind: 'http500' });
  }
  cutAfter(bytes: number, direction: FaultDirection = 'any'): this {
    return this.setMode({ kind: 'cut', bytes, direction });
  }

  /** Destroy every live connection now (both sides, no FIN: like a killed backend). Returns how many. */
  killAll(): number {
    const n = this.links.size;
    for (const l of [...this.links]) {
      this.stats.faulted++;
      l.close();
    }
    return n;
  }

  /** Stop forwarding on every live connection (bytes are read and dropped; sockets stay open). Returns how many. */
  stallLive(): number {
    for (const l of this.links) l.stalled = true;
    return this.links.size;
  }

  /** Close the listening socket (new connects get ECONNREFUSED); live connections stay. Idempotent. */
  async stopListening(): Promise<void> {
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /**
   * Listen again on the same port after {@link stopListening}. Idempotent.
   * @throws Error when the port was taken in the meantime.
   */
  async resumeListening(): Promise<void> {
    if (this.server.listening) return;
    this.server = this.makeServer();
    await this.listen(this.listeningPort);
  }

  /** Stop listening and destroy all live connections. Idempotent. */
  async close(): Promise<void> {
    for (const l of [...this.links]) l.close();
    await this.stopListening();
  }

  private async listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onErr = (e: Error) => reject(e);
      this.server.once('error', onErr);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', onErr);
        resolve();
      });
    });
    this.listeningPort = (this.server.address() as net.AddressInfo).port;
  }

  private makeServer(): net.Server {
    const s = net.createServer((c) => this.accept(c));
    s.on('error', () => {});
    return s;
  }

  private accept(client: net.Socket): void {
    this.stats.accepted++;
    const mode = this.mode;
    client.on('error', () => {});
    client.setNoDelay(true);
    if (mode.kind === 'refuse') {
      this.stats.faulted++;
      client.resetAndDestroy();
      return;
    }
    let closed = false;
    const link: Link = {
      client,
      target: null,
      stalled: false,
      close: () => {
        if (closed) return;
        closed = true;
        this.links.delete(link);
        this.stats.live--;
        client.destroy();
        link.target?.destroy();
      },
    };
    this.links.add(link);
    this.stats.live++;
    client.once('close', () => link.close());

    if (mode.kind === 'stall') {
      client.on('data', () => {});
      return;
    }
    if (mode.kind === 'http500') {
      let head = '';
      const onData = (d: Buffer): void => {
        head += d.toString('latin1');
        if (head.length > 65536 || head.includes('\r\n\r\n')) {
          client.off('data', onData);
          this.stats.faulted++;
          const body = 'backend failure injected by the test proxy\n';
          client.end(`HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
          // Make sure the socket goes away even if the peer never closes its side.
          setTimeout(() => link.close(), 1000).unref();
        }
      };
      client.on('data', onData);
      return;
    }

    // pass or cut: connect to the target; hold client bytes until connected (pause).
    client.pause();
    const target = net.connect({ host: this.targetHost, port: this.targetPort });
    link.target = target;
    target.setNoDelay(true);
    target.on('error', () => link.close());
    target.once('close', () => link.close());
    const cut = mode.kind === 'cut' ? mode : null;
    let up = 0;
    let down = 0;
    const forward = (from: net.Socket, to: net.Socket, dir: 'up' | 'down') => {
      from.on('data', (d: Buffer) => {
        if (closed || link.stalled) return;
        let chunk = d;
        let cutNow = false;
        if (cut && (cut.direction === dir || cut.direction === 'any')) {
          const sent = cut.direction === 'any' ? up + down : dir === 'up' ? up : down;
          const room = cut.bytes - sent;
          if (chunk.length >= room) {
            chunk = chunk.subarray(0, Math.max(0, room));
            cutNow = true;
          }
        }
        if (dir === 'up') {
          up += chunk.length;
          this.stats.bytesUp += chunk.length;
        } else {
          down += chunk.length;
          this.stats.bytesDown += chunk.length;
        }
        if (cutNow) {
          this.stats.faulted++;
          if (chunk.length > 0) to.write(chunk, () => link.close());
          else link.close();
          // If the write callback never comes (peer gone), close anyway.
          setTimeout(() => link.close(), 200).unref();
          return;
        }
        if (!to.write(chunk)) {
          from.pause();
          to.once('drain', () => from.resume());
        }
      });
    };
    target.once('connect', () => {
      forward(client, target, 'up');
      forward(target, client, 'down');
      client.resume();
      if (cut && cut.bytes === 0) {
        this.stats.faulted++;
        link.close();
      }
    });
  }
}
