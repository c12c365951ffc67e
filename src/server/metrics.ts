/**
 * Prometheus metrics (`GET /metrics`, via prom-client). Names follow Prometheus conventions: base
 * units (seconds, bytes) in the name, `_total` for counters.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { SttEngine } from '../engines/stt/types.js';

/** The gateway's metric set, on its own registry (several gateways may live in one test process). */
export class GatewayMetrics {
  readonly registry = new Registry();
  /** Sessions opened, by model and how they ended (`close_code`). */
  readonly sessionsTotal = new Counter({ name: 'voxgate_stt_sessions_total', help: 'STT sessions by model and close code', labelNames: ['model', 'close_code'] as const, registers: [this.registry] });
  /** Audio received, seconds (duration of the audio, whatever its rate or encoding). */
  readonly audioSeconds = new Counter({ name: 'voxgate_stt_audio_seconds_total', help: 'Seconds of audio received', labelNames: ['model'] as const, registers: [this.registry] });
  /** Final results sent. */
  readonly finalsTotal = new Counter({ name: 'voxgate_stt_finals_total', help: 'Final results sent', labelNames: ['model', 'reason'] as const, registers: [this.registry] });
  /** Errors sent to clients, by catalogue code. */
  readonly errorsTotal = new Counter({ name: 'voxgate_stt_errors_total', help: 'Error frames or closes sent, by code', labelNames: ['code'] as const, registers: [this.registry] });
  /** Upgrades refused before a session existed (401/404/400/…), STT and TTS routes. */
  readonly rejectedUpgrades = new Counter({ name: 'voxgate_upgrades_rejected_total', help: 'WebSocket upgrades refused (STT and TTS)', labelNames: ['status'] as const, registers: [this.registry] });
  /** TCP connections closed at accept because their address already held `http.maxConnectionsPerIp`. */
  readonly refusedConnections = new Counter({ name: 'voxgate_connections_refused_total', help: 'Connections refused by the per-address limit', registers: [this.registry] });
  /** Times a session paused reading its socket because decoding fell behind. */
  readonly backpressureTotal = new Counter({ name: 'voxgate_stt_backpressure_pauses_total', help: 'Socket reads paused for decode backlog', registers: [this.registry] });
  /** Session length, seconds. */
  readonly sessionSeconds = new Histogram({ name: 'voxgate_stt_session_duration_seconds', help: 'STT session wall-clock duration', buckets: [1, 5, 15, 60, 300, 900, 3600], registers: [this.registry] });

  constructor(engines: Map<string, SttEngine>, sessionCount: () => number) {
    collectDefaultMetrics({ register: this.registry, prefix: 'voxgate_' });
    new Gauge({ name: 'voxgate_stt_sessions_active', help: 'Open STT sessions', registers: [this.registry], collect() { this.set(sessionCount()); } });
    new Gauge({
      name: 'voxgate_stt_decoders',
      help: 'Engine decoders by state',
      labelNames: ['engine', 'state'] as const,
      registers: [this.registry],
      collect() {
        for (const [id, e] of engines) {
          const s = e.stats();
          this.set({ engine: id, state: 'idle' }, s.idleDecoders);
          this.set({ engine: id, state: 'busy' }, s.busyDecoders);
        }
      },
    });
  }
}
