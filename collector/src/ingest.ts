// Collector stage 1: the Ingest gRPC service. Each stream belongs to one agent host: every
// batch is decoded and checked (a malformed one ends the stream with INVALID_ARGUMENT and is
// counted; other streams go on), published, and acknowledged only once Kafka has it. When
// Kafka fails, the stream ends with UNAVAILABLE so the agent keeps the batch spooled and
// retries: nothing is acknowledged that is not durably stored.
import { type ServerDuplexStream, status } from '@grpc/grpc-js';
import type { Logger } from '../../agent/src/runtime/log';
import { BatchDecodeError, decodeBatch } from '../../proto/batch-codec';
import type { CollectorMetrics } from './metrics';
import type { BatchPublisher } from './publish';

export interface IngestLimits {
  /** Most events in one batch. */
  maxEventsPerBatch: number;
  /** Most publishes in progress per stream before reading from it pauses. */
  maxPendingPerStream: number;
}

type Call = ServerDuplexStream<Buffer, { sequence: number }>;

export function ingestHandler(
  publisher: BatchPublisher,
  limits: IngestLimits,
  metrics: CollectorMetrics,
  log: Logger,
) {
  return (call: Call): void => {
    const peer = call.getPeer();
    let host: string | undefined;
    let pending = 0;
    let ended = false;
    let clientDone = false;
    metrics.streams.inc();
    const fail = (code: status, details: string) => {
      if (ended) return;
      ended = true;
      call.emit('error', { code, details });
    };
    call.on('data', (bytes: Buffer) => {
      if (ended) return;
      metrics.bytesReceived.inc(bytes.length);
      let batch: ReturnType<typeof decodeBatch>;
      try {
        batch = decodeBatch(bytes, { maxEvents: limits.maxEventsPerBatch });
      } catch (err) {
        const why = err instanceof BatchDecodeError ? err.message : String(err);
        metrics.rejected.inc({ reason: 'malformed' });
        log.warn({ peer, host, reason: why }, 'rejected malformed batch');
        fail(status.INVALID_ARGUMENT, `malformed batch: ${why}`);
        return;
      }
      if (host === undefined) host = batch.host;
      else if (host !== batch.host) {
        metrics.rejected.inc({ reason: 'host_changed' });
        fail(status.PERMISSION_DENIED, `stream opened for host ${host} sent a batch for host ${batch.host}`);
        return;
      }
      metrics.batchesReceived.inc();
      metrics.eventsReceived.inc(batch.events.count);
      pending++;
      if (pending >= limits.maxPendingPerStream) call.pause();
      const started = performance.now();
      publisher
        .publish({ host: batch.host, agentId: batch.agentId, bytes })
        .then(() => {
          metrics.publishSeconds.observe((performance.now() - started) / 1000);
          if (!ended) call.write({ sequence: batch.sequence });
        })
        .catch((err: Error) => {
          metrics.kafkaErrors.inc();
          log.error(
            { host, sequence: batch.sequence, err: err.message },
            'Kafka publish failed; asking the agent to retry',
          );
          fail(status.UNAVAILABLE, `Kafka did not accept the batch: ${err.message}`);
        })
        .finally(() => {
          pending--;
          if (clientDone && pending === 0 && !ended) {
            ended = true;
            call.end();
          } else if (pending < limits.maxPendingPerStream && !ended) call.resume();
        });
    });
    call.on('end', () => {
      // The agent half-closed: answer what is still being published, then close.
      clientDone = true;
      if (pending === 0 && !ended) {
        ended = true;
        call.end();
      }
    });
    call.on('error', () => {
      ended = true;
    });
    call.on('close', () => metrics.streams.dec());
  };
}
