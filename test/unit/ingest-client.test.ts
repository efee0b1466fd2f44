// The transport against a small in-process gRPC server that misbehaves on cue: it takes batches
// and breaks the stream before acknowledging them (as a collector does when Kafka fails after
// publishing part of its window), refuses streams, then acknowledges everything. A batch the
// collector may have published must never also be counted lost when the spool overflows.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Metadata, Server, ServerCredentials, type ServerDuplexStream, status } from '@grpc/grpc-js';
import { MemorySpool } from '../../agent/src/spool/memory-spool';
import { losses, totalLosses } from '../../agent/src/spool/spool';
import { IngestClient } from '../../agent/src/transport/ingest-client';
import { silentLogger } from '../../common/runtime/log';
import { ingestService } from '../../proto/ingest-service';
import { until as untilTrue } from '../support/until';

type Mode = 'take-then-break' | 'refuse' | 'ack';
const EVENTS_PER_BATCH = 10;
const BATCH_BYTES = 100;

/** The payload names its sequence, so the server can say which batches it got. */
const payload = (seq: number) => Buffer.alloc(BATCH_BYTES).fill(0).fill(String(seq), 0, String(seq).length);
const sequenceOf = (b: Buffer) => Number(b.toString('latin1').replace(/\0+$/, ''));

const until = (what: string, ok: () => boolean) => untilTrue(what, ok, 10_000, 5);

test('a batch sent on a stream that broke before its ack is never dropped as lost', async () => {
  let mode: Mode = 'take-then-break';
  const received = new Set<number>();
  let breaks = 0;
  const server = new Server();
  server.addService(ingestService, {
    stream: (call: ServerDuplexStream<Buffer, { sequence: number }>) => {
      if (mode === 'refuse') {
        call.emit('error', { code: status.UNAVAILABLE, details: 'refused' });
        return;
      }
      call.sendMetadata(new Metadata());
      let taken = 0;
      call.on('data', (b: Buffer) => {
        const seq = sequenceOf(b);
        received.add(seq); // "published"
        if (mode === 'ack') call.write({ sequence: seq });
        else if (++taken === 4) {
          breaks++;
          mode = 'refuse';
          call.emit('error', { code: status.UNAVAILABLE, details: 'Kafka failed after publishing' });
        }
      });
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  const spool = new MemorySpool(10 * BATCH_BYTES, 1);
  const lost = losses();
  spool.onLoss((l) => {
    lost.full += l.full;
  });
  const client = new IngestClient(
    { addresses: [`127.0.0.1:${port}`], window: 4, backoffMinMs: 5, backoffMaxMs: 20, logger: silentLogger },
    spool,
  );
  const append = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const sequence = spool.nextSequence();
      await spool.append({
        sequence,
        bytes: payload(sequence),
        events: EVENTS_PER_BATCH,
        sourceOffset: 0,
        reports: losses(),
      });
    }
  };
  try {
    client.start();
    await append(4);
    await until('the first stream to take four batches and break', () => breaks === 1 && received.size === 4);
    await sleep(100); // a few refused reconnects
    await append(40); // the budget holds 10: the oldest must go, but not the four taken
    // Streams refused meanwhile got no batch, so the budget holds exactly: the four taken and
    // the six newest stay, the 34 in between are lost.
    assert.equal(spool.pendingCount(), 10);
    assert.equal(lost.full, 34 * EVENTS_PER_BATCH);
    mode = 'ack';
    await until('every spooled batch acknowledged', () => spool.pendingCount() === 0);
    const delivered = received.size * EVENTS_PER_BATCH;
    assert.equal(delivered + totalLosses(lost), 44 * EVENTS_PER_BATCH, 'each event delivered or lost, once');
    for (const seq of [1, 2, 3, 4]) assert.ok(received.has(seq));
  } finally {
    client.close();
    server.forceShutdown();
  }
});
