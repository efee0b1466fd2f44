// Fault-service latency of stalled events: the time from the record entering the event
// queue to CMD_RESUME (IRQ thread, IOPF queue, handle_mm_fault, response).
//
// It is a pure function of the seed and the record's words, so anyone holding the model's
// configuration (the counters, a test) derives the same stall time for a record as the
// model does, without a side channel next to the EventBlock.

import { faultKind } from '../../../../common/smmu/record';
import type { StallTimeFn } from '../../smmu/counters';
import type { LatencyConfig } from './config';
import { fmix32, hashCombine, seedHash } from './rng';

export type { StallTimeFn };

export function createStallTimeModel(latency: LatencyConfig, seed: number | string): StallTimeFn {
  const s = seedHash(seed, 'latency');
  const medians = [latency.translationNs, latency.accessNs, latency.permissionNs, latency.otherNs];
  const { sigma, majorFaultProbability, majorFaultNs } = latency;
  return (words, w) => {
    let h = s;
    for (let k = 0; k < 8; k++) h = hashCombine(h, words[w + k]);
    const h2 = fmix32(h ^ 0x68e31da4);
    const h3 = fmix32(h2 ^ 0xb5297a4d);
    const kind = faultKind(words, w);
    const median = kind === 0 && h3 / 4294967296 < majorFaultProbability ? majorFaultNs : medians[kind];
    if (sigma === 0) return Math.round(median);
    // Box-Muller: a standard normal from two uniforms in (0, 1].
    const u1 = (h + 1) / 4294967296;
    const u2 = h2 / 4294967296;
    const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    return Math.round(median * Math.exp(sigma * z));
  };
}
