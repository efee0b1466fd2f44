// Accelerator jobs: each SVA binding (device, process) runs one job at a time, a DMA stream
// over one of the process's mappings with an access pattern and a read/write mix. A job
// ends after `passes` x mappingPages page touches; the next one picks a new mapping/pattern.
import type { Rng } from './rng';

export const PATTERN_SEQUENTIAL = 0;
export const PATTERN_STRIDED = 1;
export const PATTERN_RANDOM = 2;
export const PATTERN_HOTSET = 3;

export class Job {
  /** Binding index (device, process). */
  readonly binding: number;
  /** Global mapping index (process x mappingsPerProcess + mapping). */
  mapping = 0;
  pattern = PATTERN_SEQUENTIAL;
  /** Touches left before the job ends. */
  remaining = 0;
  private pos = 0;
  private lane = 0;
  private stride = 1;
  private hotBase = 0;
  private hotSize = 1;

  constructor(binding: number) {
    this.binding = binding;
  }

  /** Starts a job over `pages` pages of `mapping`. */
  start(
    mapping: number,
    pattern: number,
    pages: number,
    touches: number,
    stride: number,
    hotSetFraction: number,
    rng: Rng,
  ): void {
    this.mapping = mapping;
    this.pattern = pattern;
    this.remaining = Math.max(1, Math.round(touches));
    this.pos = pattern === PATTERN_SEQUENTIAL ? 0 : rng.int(pages);
    this.lane = 0;
    this.stride = Math.min(stride, pages);
    this.hotSize = Math.max(1, Math.round(pages * hotSetFraction));
    this.hotBase = rng.int(pages - this.hotSize + 1);
  }

  /** Page index (within the mapping) of the next touch. */
  nextPage(pages: number, hotProbability: number, rng: Rng): number {
    this.remaining--;
    switch (this.pattern) {
      case PATTERN_SEQUENTIAL: {
        const p = this.pos;
        this.pos = p + 1 === pages ? 0 : p + 1;
        return p;
      }
      case PATTERN_STRIDED: {
        // Lanes 0..stride-1 in turn, so every page is visited once per pass.
        const p = this.pos;
        let n = p + this.stride;
        if (n >= pages) {
          this.lane = this.lane + 1 >= this.stride ? 0 : this.lane + 1;
          n = this.lane;
        }
        this.pos = n;
        return p;
      }
      case PATTERN_RANDOM:
        return rng.int(pages);
      default:
        return rng.float() < hotProbability ? this.hotBase + rng.int(this.hotSize) : rng.int(pages);
    }
  }
}
