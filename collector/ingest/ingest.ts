// Collector stage 1: the Ingest gRPC service. A stream is authenticated when it opens; each
// batch is decoded and checked (malformed, or losses beyond what can be counted exactly:
// INVALID_ARGUMENT, counted by reason; host not allowed for the stream's
// identity: PERMISSION_DENIED; both counted and logged, other streams go on), published, and
// acknowledged only once Kafka has it. When Kafka fails the stream ends with UNAVAILABLE, so
// the agent keeps the batch spooled and retries: nothing is acknowledged that is not stored.
// Reading from a stream pauses (HTTP/2 flow control then holds the agent back) while too many
// of its publishes are pending, while its host is over its batch rate, or while the agent does
// not read its acks, so no agent can make the collector buffer without bound.
import { Metadata, type ServerDuplexStream, status } from '@grpc/grpc-js';
import type Long from 'long';
import type { Logger } from '../../common/runtime/log';
import { type Batch, BatchDecodeError, decodeBatch, u64Long } from '../../proto/batch-codec';
import { AuthError, type Authenticator, checkHost, type Identity } from './auth';
import type { CollectorMetrics } from './metrics';
import type { BatchPublisher } from './publish';
import { RateLimiter } from './rate-limit';

export interface IngestLimits {
  /** Most events in one batch. */
  maxEventsPerBatch: number;
  /** Most publishes in progress per stream before reading from it pauses. */
  maxPendingPerStream: number;
  /** Sustained batches per second per host (bursts of one second's worth allowed); 0: no limit. */
  maxBatchesPerSecond: number;
}

type Call = ServerDuplexStream<Buffer, { sequence: number | Long }>;

/** Pauses a call while any reason holds, resumes when none does. */
class Valve {
  private reasons = new Set<string>();
  constructor(private readonly call: Call) {}
  hold(reason: string): void {
    if (this.reasons.size === 0) this.call.pause();
    this.reasons.add(reason);
  }
  release(reason: string): void {
    if (this.reasons.delete(reason) && this.reasons.size === 0) this.call.resume();
  }
}

export function ingestHandler(
  publisher: BatchPublisher,
  auth: Authenticator,
  limits: IngestLimits,
  metrics: CollectorMetrics,
  log: Logger,
) {
  const rates = new RateLimiter(limits.maxBatchesPerSecond);
  return (call: Call): void => {
    const peer = call.getPeer();
    let identity: Identity;
    let ended = false;
    const fail = (code: status, details: string, reason: string, counter = metrics.rejected) => {
      counter.inc({ reason });
      log.warn({ peer, reason, details }, 'ending agent stream');
      if (ended) return;
      ended = true;
      call.emit('error', { code, details });
    };
    try {
      identity = auth.authenticate(call.metadata, call.getAuthContext());
    } catch (err) {
      if (!(err instanceof AuthError)) throw err;
      // Ending the stream before reading it: the agent's batches are never looked at, so it is
      // the stream that is counted, not batches.
      fail(err.code, err.message, 'unauthenticated', metrics.streamsRejected);
      return;
    }
    let host: string | undefined;
    let pending = 0;
    let clientDone = false;
    let awaitingDrain = false;
    const valve = new Valve(call);
    const finish = () => {
      if (clientDone && pending === 0 && !ended) {
        ended = true;
        call.end();
      }
    };
    metrics.streams.inc();
    // Headers at once: the agent writes no batch before them (the Ingest contract in the proto).
    call.sendMetadata(new Metadata());
    call.on('close', () => metrics.streams.dec());
    call.on('error', () => {
      ended = true;
    });
    call.on('end', () => {
      // The agent half-closed: answer what is still being published, then close.
      clientDone = true;
      finish();
    });

    const accept = (bytes: Buffer): Batch | undefined => {
      try {
        const batch = decodeBatch(bytes, { maxEvents: limits.maxEventsPerBatch, structureOnly: true });
        checkHost(identity, batch.host);
        if (host !== undefined && host !== batch.host) {
          throw new AuthError(
            status.PERMISSION_DENIED,
            `stream opened for host ${host} sent a batch for host ${batch.host}`,
          );
        }
        host = batch.host;
        return batch;
      } catch (err) {
        if (err instanceof BatchDecodeError)
          fail(status.INVALID_ARGUMENT, `malformed batch: ${err.message}`, err.reason);
        else if (err instanceof AuthError) fail(err.code, err.message, 'permission_denied');
        else throw err;
        return undefined;
      }
    };

    call.on('data', (bytes: Buffer) => {
      if (ended) return;
      metrics.bytesReceived.inc(bytes.length);
      const batch = accept(bytes);
      if (!batch) return;
      metrics.batchesReceived.inc();
      metrics.eventsReceived.inc(batch.events.count);
      const wait = rates.take(batch.host);
      if (wait > 0) {
        metrics.throttled.inc();
        valve.hold('rate');
        setTimeout(() => valve.release('rate'), wait);
      }
      if (++pending >= limits.maxPendingPerStream) valve.hold('pending');
      const started = performance.now();
      publisher
        .publish({ host: batch.host, agentId: batch.agentId, bytes })
        .then(() => {
          metrics.publishSeconds.observe((performance.now() - started) / 1000);
          if (ended) return;
          if (!call.write({ sequence: u64Long(batch.sequence) }) && !awaitingDrain) {
            // The agent is not reading its acks: stop reading its batches until it does.
            awaitingDrain = true;
            valve.hold('acks');
            call.once('drain', () => {
              awaitingDrain = false;
              valve.release('acks');
            });
          }
        })
        .catch((err: Error) => {
          metrics.kafkaErrors.inc();
          log.error({ host, sequence: batch.sequence, err }, 'Kafka publish failed; the agent will retry');
          fail(status.UNAVAILABLE, `Kafka did not accept the batch: ${err.message}`, 'kafka_unavailable');
        })
        .finally(() => {
          if (--pending < limits.maxPendingPerStream) valve.release('pending');
          finish();
        });
    });
  };
}
