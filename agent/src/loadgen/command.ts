// `smmu-agent loadgen`: the load generator as a program. Prints its summary (LoadgenSummary)
// as one JSON line on stdout when it ends; exit codes as the agent's: 0 every stream drained,
// 3 some batches unacknowledged at the drain timeout, 4 events lost with the memory spools,
// 1 a stream's pipeline failed.

import { startHttp } from '../../../common/runtime/http';
import type { Logger } from '../../../common/runtime/log';
import type { Daemon } from '../../../common/runtime/main';
import { agentMetrics } from '../metrics';
import { type ModelOptions, modelConfigInput, openModelSource, readModelFile } from '../model-options';
import { type TransportFlags, transportOptions } from '../transport/transport-options';
import { Loadgen, type LoadgenSummary } from './loadgen';
import { LOADGEN_CHUNK_NS, type LoadgenFlags, loadgenPlan } from './plan';

export type LoadgenOptions = LoadgenFlags &
  TransportFlags &
  ModelOptions & {
    batchMaxEvents: number;
    batchMaxDelayMs: number;
    spoolBudgetBytes: number;
    drainTimeoutMs: number;
    httpListen: string;
  };

export function exitCode(s: LoadgenSummary): number {
  if (s.failedStreams > 0) return 1;
  if (s.lostEvents > 0) return 4;
  return s.drainedStreams === s.streams ? 0 : 3;
}

export async function startLoadgen(
  o: LoadgenOptions,
  given: ReadonlySet<string>,
  log: Logger,
): Promise<Daemon> {
  const plan = loadgenPlan(o, given);
  const file = readModelFile(o.modelConfig);
  const model = modelConfigInput(o, given, file, BigInt(Date.now()) * 1_000_000n);
  const chunkNs = file.chunkNs ?? LOADGEN_CHUNK_NS;
  // Checked once here, so a bad model file is a usage error before any stream opens.
  openModelSource({ ...model, chunkNs }, o.modelConfig);
  const metrics = agentMetrics();
  const loadgen = new Loadgen(
    plan,
    {
      batch: { maxEvents: o.batchMaxEvents, maxDelayMs: o.batchMaxDelayMs },
      transport: transportOptions(o),
      drainTimeoutMs: o.drainTimeoutMs,
      spoolBudgetBytes: o.spoolBudgetBytes,
    },
    (seed) => openModelSource({ ...model, chunkNs, seed }, o.modelConfig),
    metrics,
    log,
  );
  const http = o.httpListen
    ? await startHttp({ listen: o.httpListen, registry: metrics.registry, notReady: () => null })
    : undefined;
  log.info(
    { streams: plan.streams.length, ratePerStream: o.rate, seconds: o.duration, collectors: o.collector },
    'loadgen started',
  );
  let code: Promise<number> | undefined;
  const stop = () => {
    code ??= loadgen.stop().then((summary) => {
      http?.server.close();
      const { perStream: _, ...totals } = summary;
      log.info(totals, 'loadgen stopped');
      process.stdout.write(`${JSON.stringify(summary)}\n`);
      return exitCode(summary);
    });
    return code;
  };
  void loadgen.run().then(async () => process.exit(await stop()));
  return { stop };
}
