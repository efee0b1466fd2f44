// The process metrics every daemon exports (CPU, memory, GC, event-loop delay: prom-client's
// defaults) in a registry of its own, under the daemon's prefix.
import { collectDefaultMetrics, Registry } from 'prom-client';

/** A registry holding the process metrics, named `<prefix>process_cpu_seconds_total` etc. */
export function processRegistry(prefix: string): Registry {
  const registry = new Registry();
  // Event-loop delay sampled every 100 ms, not prom-client's 10 ms: ten wake-ups a second
  // instead of a hundred keep an idle daemon's CPU floor low; a stall longer than 100 ms is
  // still seen whole.
  collectDefaultMetrics({ register: registry, prefix, eventLoopMonitoringPrecision: 100 });
  return registry;
}
