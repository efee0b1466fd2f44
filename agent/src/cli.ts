#!/usr/bin/env node
// smmu-agent: reads SMMU/IOMMU fault events on one host (the kernel's tracing ring buffer, or
// the SMMU model), keeps local per-process/per-device counters, and streams batches to a
// collector. `smmu-agent dump` prints decoded events instead, like a trace tool.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startHttp } from '../../common/runtime/http';
import type { Logger } from '../../common/runtime/log';
import { runMain } from '../../common/runtime/main';
import { OptionError, type Options } from '../../common/runtime/options';
import { formatTraceLine } from '../../common/smmu/format';
import { FIELD_CODING, WORD_CODING } from '../../proto/batch-codec';
import { LossReason } from '../../proto/index';
import { defaultBatchOptions } from './batch/batcher';
import { resolveIdentity } from './identity';
import { startLoadgen } from './loadgen/command';
import { loadgenSpecs } from './loadgen/plan';
import { agentMetrics, registerFaultMetrics, registerSpoolMetrics } from './metrics';
import { modelConfigInput, modelSpecs, openModelSource, readModelFile } from './model-options';
import { AgentPipeline, type StopResult } from './pipeline';
import { FaultCounters, formatTable } from './smmu/counters';
import { SmmuModelSource } from './source/model';
import { ReplaySource } from './source/replay';
import type { EventSource } from './source/source';
import { TracefsSource } from './source/tracefs';
import { MemorySpool } from './spool/memory-spool';
import { SegmentSpool } from './spool/segment-spool';
import { lockStateDir } from './state-lock';
import { transportOptions } from './transport/transport-options';
import { SMALL_BATCH_BYTES, useWireGzipFor, wireGzipSetting } from './transport/wire-gzip';

const specs = {
  source: {
    type: 'string',
    default: 'model',
    choices: ['model', 'tracefs', 'replay'],
    help: 'where events come from: the SMMU model, the kernel tracing ring buffer, or a capture (--input)',
  },
  input: {
    type: 'string',
    default: '',
    help: 'replay: the capture: trace-cmd trace.dat, trace_pipe/trace text, a directory of raw per-CPU dumps, or - (stdin)',
  },
  replayRate: {
    type: 'number',
    default: 0,
    min: 0,
    help: 'replay: events/s (0: as fast as the pipeline takes them)',
  },
  tracefsEvents: {
    type: 'list',
    default: ['arm_smmu_v3:smmu_evtq_event'],
    help: 'tracefs: events to read; when none exists, falls back to iommu:io_page_fault and intel_iommu:prq_report',
  },
  tracefsPath: {
    type: 'string',
    default: '',
    help: 'tracefs: mount point (default: found, mounted if absent and permitted)',
  },
  tracefsInstance: {
    type: 'string',
    default: 'smmu-fleet',
    help: "tracefs: name of the agent's own instance (instances/<name>)",
  },
  tracefsBufferKb: {
    type: 'number',
    default: 1024,
    min: 4,
    help: 'tracefs: per-CPU ring buffer size of the instance',
  },
  tracefsReader: {
    type: 'string',
    default: 'raw',
    choices: ['raw', 'text'],
    help: 'tracefs: per-CPU binary pages (trace_pipe_raw) or text (trace_pipe)',
  },
  collector: {
    type: 'list',
    default: ['127.0.0.1:7070'],
    help: 'collector addresses (host:port), tried in turn',
  },
  host: {
    type: 'string',
    default: '',
    help: 'host name reported in batches (default: $NODE_NAME, else the OS host name)',
  },
  agentId: {
    type: 'string',
    default: '',
    help: 'stable agent id (default: kept in --state-dir, else the host name)',
  },
  stateDir: {
    type: 'string',
    default: '',
    help: 'directory for the agent id and the durable spool (<state-dir>/spool); empty: spool in memory only',
  },
  httpListen: {
    type: 'string',
    default: '127.0.0.1:9470',
    help: 'HTTP address for /healthz, /readyz, /metrics, /faults (empty: off)',
  },
  batchMaxEvents: {
    type: 'number',
    default: defaultBatchOptions.maxEvents,
    min: 1,
    help: 'close a batch at this many events',
  },
  batchMaxDelayMs: {
    type: 'number',
    default: defaultBatchOptions.maxDelayMs,
    min: 1,
    help: 'close a batch when its oldest event waited this long',
  },
  spoolBudgetBytes: {
    type: 'number',
    default: 64 << 20,
    min: 1024,
    help: 'unacknowledged bytes kept before the oldest batches are dropped (and reported lost)',
  },
  spoolMemoryBytes: {
    type: 'number',
    default: 32 << 20,
    min: 0,
    help: 'durable spool: newest unacknowledged bytes also kept in memory (resends read the rest from disk)',
  },
  spoolFsync: {
    type: 'string',
    default: 'always',
    choices: ['always', 'interval', 'never'],
    help: 'durable spool: fsync every batch, every 200 ms, or never (a process crash loses nothing either way; a power loss may)',
  },
  tlsCa: { type: 'string', default: '', help: 'PEM CA of the collector certificate (enables TLS)' },
  tlsCert: {
    type: 'string',
    default: '',
    help: 'PEM client certificate for mutual TLS (its CN/DNS name must be --host)',
  },
  tlsKey: { type: 'string', default: '', help: 'PEM client private key' },
  tokenFile: {
    type: 'string',
    default: '',
    help: "file with this agent's bearer token (alternative to mutual TLS)",
  },
  compression: {
    type: 'string',
    default: 'gzip',
    choices: ['gzip', 'none'],
    help: `batch compression on the wire (gzip: zlib Z_RLE, level 1 for word columns; batches under ${SMALL_BATCH_BYTES} bytes go uncompressed)`,
  },
  columnCoding: {
    type: 'string',
    default: 'fields',
    choices: ['fields', 'words'],
    help: 'event coding of batches: fields (EventColumns coding 2) or words (coding 0, for consumers built before coding 2)',
  },
  ackTimeoutMs: {
    type: 'number',
    default: 30_000,
    min: 0,
    help: 'reopen the stream when a batch waits this long for its ack (0: never)',
  },
  backoffMinMs: {
    type: 'number',
    default: 100,
    min: 1,
    help: 'first reconnect delay; doubles per failure (with jitter)',
  },
  backoffMaxMs: { type: 'number', default: 10_000, min: 1, help: 'longest reconnect delay' },
  window: { type: 'number', default: 32, min: 1, help: 'most unacknowledged batches in flight' },
  drainTimeoutMs: {
    type: 'number',
    default: 10_000,
    min: 0,
    help: 'on shutdown, how long to wait for the collector to acknowledge what is spooled',
  },
  ...modelSpecs,
  ...loadgenSpecs,
  dumpLimit: {
    type: 'number',
    default: 20,
    min: 0,
    integer: true,
    help: 'dump: events to print (0: until interrupted)',
  },
} as const;

type Opts = Options<typeof specs>;

function modelSource(o: Opts, given: ReadonlySet<string>): SmmuModelSource {
  const file = readModelFile(o.modelConfig);
  // A bad model file is a usage error like any other bad option.
  return openModelSource(modelConfigInput(o, given, file, BigInt(Date.now()) * 1_000_000n), o.modelConfig);
}

function openSource(o: Opts, given: ReadonlySet<string>, log: Logger): EventSource {
  if (o.source === 'model') return modelSource(o, given);
  if (o.source === 'replay') {
    if (!o.input)
      throw new OptionError('--source replay needs --input PATH (a file, a directory, or - for stdin)');
    return new ReplaySource({
      input: o.input,
      rate: o.replayRate,
      log: { info: (m) => log.info(m), warn: (m) => log.warn(m) },
    });
  }
  return new TracefsSource({
    events: o.tracefsEvents,
    tracefsPath: o.tracefsPath || undefined,
    instance: o.tracefsInstance,
    bufferSizeKb: o.tracefsBufferKb,
    reader: o.tracefsReader as 'raw' | 'text',
    log: { info: (m) => log.info(m), warn: (m) => log.warn(m) },
  });
}

/** Prints decoded events, one line each, until the limit or Ctrl-C. */
async function dump(o: Opts, given: ReadonlySet<string>, log: Logger): Promise<void> {
  const source = openSource(o, given, log);
  const abort = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => abort.abort());
  let printed = 0;
  const lost = new Map<LossReason, number>();
  for await (const chunk of source.read(abort.signal)) {
    // Losses the source reports, where they happen in the stream, as "#" lines like a trace's.
    for (const [reason, n] of chunk.lost ?? []) {
      process.stdout.write(`# lost ${n} ${LossReason[reason] ?? reason}\n`);
      lost.set(reason, (lost.get(reason) ?? 0) + n);
    }
    const b = chunk.events;
    for (let i = 0; i < b.count && (o.dumpLimit === 0 || printed < o.dumpLimit); i++, printed++) {
      process.stdout.write(
        `${formatTraceLine(b, i, { event: chunk.event ?? source.event, decode: true })}\n`,
      );
    }
    if (o.dumpLimit !== 0 && printed >= o.dumpLimit) abort.abort();
  }
  const total = [...lost].map(([r, n]) => `${n} ${LossReason[r] ?? r}`).join(', ');
  process.stdout.write(`# ${printed} events printed; lost: ${total || 'none'}\n`);
}

runMain(
  {
    name: 'smmu-agent',
    envPrefix: 'SMMU_AGENT_',
    usage: '[run|replay PATH|dump|faults|loadgen] [options]',
    summary:
      "Per-host IOMMU fault telemetry agent. `run` (default) reads SMMUv3 event records, counts them per process (PASID) and device (StreamID), and streams them to smmu-collector without losing any silently. `replay PATH` sends a capture (trace-cmd trace.dat, trace_pipe text, raw per-CPU dumps) the same way and exits. `dump` prints decoded events to stdout (with --source replay: a capture's). `faults` prints the running agent's per-process/per-device fault table (from --http-listen). `loadgen` runs --streams model agents in one process (hosts <host>-1..N, --rate events/s each, for --duration s), each with its own connection, then drains and prints a JSON summary.",
  },
  specs,
  async (opts, positionals, log, given) => {
    // `replay PATH` = `run --source replay --input PATH`
    const replay = positionals[0] === 'replay';
    const command = replay ? 'run' : (positionals[0] ?? 'run');
    const o: Opts = replay ? { ...opts, source: 'replay', input: positionals[1] ?? opts.input } : opts;
    if (command === 'dump') {
      await dump(o, given, log);
      return undefined;
    }
    if (command === 'faults') {
      // The running agent's local table (per SMMU, device and process), from its HTTP endpoint.
      const url = `http://${o.httpListen}/faults`;
      const res = await fetch(url).catch((err: Error) => {
        throw new Error(
          `no agent answers at ${url} (${err.message}): is smmu-agent running with --http-listen ${o.httpListen}?`,
        );
      });
      process.stdout.write(await res.text());
      return undefined;
    }
    if (command === 'loadgen') return startLoadgen(o, given, log);
    if (command !== 'run')
      throw new OptionError(`unknown command "${command}": use run, replay, dump, faults or loadgen`);
    const source = openSource(o, given, log);
    // Set-up errors (no tracefs, no permission, no such event) stop the agent here, with a hint.
    if (source instanceof TracefsSource) await source.open();
    if (o.stateDir) mkdirSync(o.stateDir, { recursive: true });
    // Before anything in the state directory is read or written: one agent per directory.
    const lock = o.stateDir ? lockStateDir(o.stateDir) : undefined;
    if (lock?.tookOver) log.warn({ lock: lock.path }, lock.tookOver);
    const identity = resolveIdentity(o);
    // With a state directory batches survive restarts and the sequence continues; without one
    // every start is a new epoch and unacknowledged batches die with the process.
    const spool = o.stateDir
      ? await SegmentSpool.open({
          dir: join(o.stateDir, 'spool'),
          budgetBytes: o.spoolBudgetBytes,
          memoryBytes: Math.min(o.spoolMemoryBytes, o.spoolBudgetBytes),
          replaceDamaged: true,
          fsync: o.spoolFsync as 'always' | 'interval' | 'never',
          logger: log,
        })
      : new MemorySpool(o.spoolBudgetBytes);
    if (!o.stateDir)
      log.warn('no --state-dir: the spool is in memory, so a restart loses unacknowledged batches');
    const metrics = agentMetrics();
    const counters = new FaultCounters(
      source instanceof SmmuModelSource ? { stallTime: source.model.stallTimeNs } : {},
    );
    registerFaultMetrics(metrics.registry, () => counters.snapshot());
    if (spool instanceof SegmentSpool) registerSpoolMetrics(metrics.registry, () => spool.stats);
    const columnCoding = o.columnCoding === 'words' ? WORD_CODING : FIELD_CODING;
    useWireGzipFor(columnCoding);
    const pipeline = new AgentPipeline(
      {
        identity,
        batch: { maxEvents: o.batchMaxEvents, maxDelayMs: o.batchMaxDelayMs },
        transport: transportOptions(o),
        drainTimeoutMs: o.drainTimeoutMs,
        columnCoding,
      },
      source,
      spool,
      metrics,
      [counters],
      log,
    );
    const http = o.httpListen
      ? await startHttp({
          listen: o.httpListen,
          registry: metrics.registry,
          notReady: () => (pipeline.failure ? `pipeline failed: ${pipeline.failure.message}` : null),
          routes: {
            '/faults': () => ({ body: `${formatTable(counters.snapshot())}\n` }),
            '/faults.json': () => ({ type: 'application/json', body: JSON.stringify(counters.snapshot()) }),
          },
        })
      : undefined;
    pipeline.start();
    log.info(
      {
        ...identity,
        source: source.event,
        collectors: o.collector,
        http: http?.address,
        compression: o.compression === 'gzip' ? `gzip ${wireGzipSetting(columnCoding)}` : 'none',
      },
      'agent started',
    );
    let stopped: Promise<StopResult> | undefined;
    // Exit code 4: stopped with unacknowledged batches in the memory spool, their events lost
    // (the log says how many); 3: stopped, some batches unacknowledged but kept on disk.
    const stop = async () => {
      stopped ??= pipeline.stop();
      const r = await stopped;
      await http?.close();
      lock?.release();
      log.info({ ...pipeline.totals, ...r }, 'agent stopped');
      return r.lostEvents > 0 ? 4 : r.drained ? 0 : 3;
    };
    // A finite source (--max-events) or a failed pipeline ends the agent by itself.
    void pipeline.done().then(async () => {
      if (stopped) return;
      const code = await stop();
      process.exit(pipeline.failure ? 1 : code);
    });
    return { stop };
  },
);
