// Stage 5: streams spooled batches to a collector and removes them from the spool when the
// collector acknowledges them (it does so only once Kafka has them). At most `window` batches
// are in flight, written only once the collector's response headers arrived; a batch written
// and not acknowledged is never dropped for the spool's budget. A broken stream is reopened with exponential backoff and jitter, rotating
// through the configured collector addresses, and every unacknowledged batch is sent again:
// delivery is at-least-once; consumers drop repeats by (agent_id, epoch, sequence).
import {
  type ChannelCredentials,
  type ChannelOptions,
  Client,
  type ClientDuplexStream,
  credentials,
  Metadata,
  status,
} from '@grpc/grpc-js';
import type { Logger } from '../../../common/runtime/log';
import type { Ack } from '../../../proto/index';
import { ingestService } from '../../../proto/ingest-service';
import type { Spool } from '../spool/spool';
import { noCompressFlags } from './wire-gzip';

export interface IngestClientOptions {
  /** Collector addresses "host:port", tried in turn. */
  addresses: string[];
  /** Most unacknowledged batches in flight on a stream. */
  window: number;
  /** Backoff bounds (ms) between reconnects. */
  backoffMinMs: number;
  backoffMaxMs: number;
  credentials?: ChannelCredentials;
  /** Per-call metadata (e.g. an authorization token). */
  metadata?: Record<string, string>;
  /** Extra gRPC channel options (e.g. a connection of its own per client). */
  channelOptions?: ChannelOptions;
  /** Compress batches on the wire with gzip. */
  gzip?: boolean;
  /** A stream whose oldest in-flight batch waits longer than this for its ack is reopened. */
  ackTimeoutMs?: number;
  logger: Logger;
  /** Called per acknowledged batch with its round-trip time. */
  onAck?: (latencyMs: number) => void;
  /** A stream opened (up, with the collector's address) or broke (down). */
  onConnection?: (up: boolean, address?: string) => void;
  /** The collector ended a stream with a status retrying cannot cure (its name, e.g. INVALID_ARGUMENT). */
  onRefused?: (code: string) => void;
}

type Stream = ClientDuplexStream<Uint8Array, Ack>;

/** gRPC status codes that need a person, and what to check. */
const OPERATOR_ACTION: Record<number, string> = {
  [status.UNAUTHENTICATED]:
    "check --token-file or --tls-cert/--tls-key against the collector's --tokens-file / --tls-client-ca",
  [status.PERMISSION_DENIED]:
    "the credential is not allowed to report for --host: use the host's own certificate or token",
  [status.INVALID_ARGUMENT]:
    'the collector rejected a batch as malformed: check that agent and collector versions match',
  [status.RESOURCE_EXHAUSTED]:
    "a batch exceeds the collector's --max-message-bytes: lower --batch-max-events",
  [status.UNIMPLEMENTED]: 'the address is not an smmu-collector (no smmu.telemetry.v1.Ingest service)',
};

export class IngestClient {
  private clients: Client[];
  private current = 0;
  private stream: Stream | undefined;
  private inFlight = new Map<number, number>(); // sequence -> send time
  /** The current stream got the collector's response headers: only then are batches written. */
  private connected = false;
  /**
   * Sequences written to a stream and not acknowledged: the collector may have published them
   * (a stream can break between its publish and its ack), so the spool must not drop them.
   * At most `window`: a fresh stream resends these, the oldest pending, before anything new.
   */
  private unsettled = new Set<number>();
  private lastSent = 0;
  private stopped = false;
  private backoff: number;
  private retryTimer: NodeJS.Timeout | undefined;
  private waiters: Array<() => void> = [];
  private writable = true;
  private ackWatch: NodeJS.Timeout | undefined;

  constructor(
    private readonly opts: IngestClientOptions,
    private readonly spool: Spool,
  ) {
    // Dropping a batch whose fate is unknown could count it twice (published and lost). Writing
    // only once the collector answered keeps that set empty while no collector does, so the
    // budget then holds exactly (batches queued on a stream that never connected would not be).
    spool.protect((sequence) => this.unsettled.has(sequence));
    if (opts.addresses.length === 0) throw new Error('no collector address configured');
    const creds = opts.credentials ?? credentials.createInsecure();
    this.clients = opts.addresses.map(
      (a) =>
        new Client(a, creds, {
          'grpc.keepalive_time_ms': 20_000,
          'grpc.keepalive_timeout_ms': 10_000,
          'grpc.keepalive_permit_without_calls': 1,
          'grpc.max_receive_message_length': 4 << 20,
          ...(opts.gzip ? { 'grpc.default_compression_algorithm': 2 } : {}),
          ...opts.channelOptions,
        }),
    );
    this.backoff = opts.backoffMinMs;
    spool.onAppend(() => this.pump());
  }

  /** Reopens a stream whose collector holds a batch too long without an answer. */
  private watchAcks(): void {
    const limit = this.opts.ackTimeoutMs;
    if (!limit || this.ackWatch) return;
    this.ackWatch = setInterval(
      () => {
        const oldest = this.inFlight.values().next();
        if (this.stream && !oldest.done && performance.now() - oldest.value > limit) {
          this.onBroken(this.stream, `no acknowledgement within ${limit} ms`);
        }
      },
      Math.min(1000, limit / 2),
    );
    this.ackWatch.unref();
  }

  start(): void {
    this.watchAcks();
    this.connect();
  }

  private connect(): void {
    if (this.stopped) return;
    const address = this.opts.addresses[this.current];
    const md = new Metadata();
    for (const [k, v] of Object.entries(this.opts.metadata ?? {})) md.set(k, v);
    const m = ingestService.stream;
    const s = this.clients[this.current].makeBidiStreamRequest(
      m.path,
      m.requestSerialize,
      m.responseDeserialize,
      md,
    ) as Stream;
    this.stream = s;
    this.connected = false;
    this.inFlight.clear();
    this.lastSent = 0;
    this.writable = true;
    s.on('data', (ack: Ack) => this.onAck(Number(ack.sequence)));
    s.on('error', (err: Error & { code?: number }) =>
      this.onBroken(s, `${address}: ${err.message}`, err.code),
    );
    s.on('end', () => this.onBroken(s, `${address}: stream closed by collector`));
    s.on('drain', () => {
      this.writable = true;
      this.pump();
    });
    s.on('metadata', () => {
      if (s !== this.stream) return;
      this.connected = true;
      this.opts.onConnection?.(true, address);
      this.opts.logger.info({ collector: address }, 'connected to collector');
      this.pump();
    });
  }

  private onAck(seq: number): void {
    const sent = this.inFlight.get(seq);
    if (sent !== undefined) {
      this.inFlight.delete(seq);
      this.opts.onAck?.(performance.now() - sent);
    }
    this.unsettled.delete(seq);
    this.spool.ack(seq);
    this.backoff = this.opts.backoffMinMs;
    this.pump();
    if (this.spool.pendingCount() === 0) for (const w of this.waiters.splice(0)) w();
  }

  private onBroken(s: Stream, why: string, code?: number): void {
    if (s !== this.stream) return; // an old stream's late events
    this.stream = undefined;
    this.opts.onConnection?.(false);
    s.removeAllListeners();
    s.on('error', () => {});
    s.cancel();
    if (this.stopped) return;
    this.current = (this.current + 1) % this.clients.length;
    const delay = this.backoff * (0.5 + Math.random() * 0.5);
    this.backoff = Math.min(this.opts.backoffMaxMs, this.backoff * 2);
    const fix = code === undefined ? undefined : OPERATOR_ACTION[code];
    const fields = { reason: why, retryInMs: Math.round(delay), unacked: this.spool.pendingCount() };
    // Retrying cannot cure these: say what has to change (batches stay spooled meanwhile).
    if (fix) {
      this.opts.logger.error({ ...fields, fix }, 'collector refuses this agent; batches stay spooled');
      this.opts.onRefused?.(status[code as number]);
    } else this.opts.logger.warn(fields, 'collector stream broken; will resend unacknowledged batches');
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  /** Sends spooled batches that are not yet on this stream, oldest first, within the window. */
  private pump(): void {
    const s = this.stream;
    if (!s || !this.connected || !this.writable) return;
    // Sequences are consecutive; acked or dropped ones leave holes. Start after what this
    // stream has sent, or at the oldest pending batch on a fresh stream.
    let seq = Math.max(this.lastSent + 1, this.spool.oldestPending() ?? Number.POSITIVE_INFINITY);
    const end = this.spool.nextSequence();
    for (; seq < end && this.inFlight.size < this.opts.window; seq++) {
      const e = this.spool.entry(seq);
      if (!e) {
        this.unsettled.delete(seq); // lost from the spool (damaged on disk): nothing to resend
        continue;
      }
      this.inFlight.set(seq, performance.now());
      this.unsettled.add(seq);
      this.lastSent = seq;
      if (!s.write(e.bytes, noCompressFlags(e.bytes.length))) {
        this.writable = false;
        return;
      }
    }
  }

  /** Resolves true once the spool is empty, false after timeoutMs. */
  drain(timeoutMs: number): Promise<boolean> {
    if (this.spool.pendingCount() === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  close(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.ackWatch) clearInterval(this.ackWatch);
    const s = this.stream;
    this.stream = undefined;
    if (s) {
      s.removeAllListeners();
      s.on('error', () => {});
      s.end();
      s.cancel();
    }
    for (const c of this.clients) c.close();
  }
}
