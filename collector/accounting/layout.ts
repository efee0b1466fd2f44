// The raw topic's partition layout, guarded: exactness needs every batch of a host in one
// partition (its replay filter and its totals live in that partition's state). The collector
// places a batch with Kafka's default partitioner, murmur2(host) mod the partition count, so
// adding partitions moves hosts: their new batches land where no earlier batch of theirs was
// counted, and replays of those would be counted a second time.
//
// The aggregator therefore records the partition count its group's state was built with in every
// checkpoint (PartitionCheckpoint.raw_partitions) and checks each raw message before counting
// it: a partition beyond that count, or a host found in another partition than the count places
// it, stops that partition's counting at that offset. Everything before is counted exactly and
// checkpointed; nothing after it is counted, the partition's lag grows, /readyz fails with the
// reason and the error is logged. README.md "Replication, partitions and growing the raw topic" gives the
// procedure.
import { HostPlacement } from '../../common/kafka/topics';
import type { Logger } from '../../common/runtime/log';

export class RawTopicLayout {
  /** Placement under the partition count the group's state was built with (0 until learned). */
  private readonly placement: HostPlacement;
  /** Stopped partitions and why. */
  private readonly stopped = new Map<number, string>();

  constructor(
    private readonly topic: string,
    private readonly groupId: string,
    private readonly log: Logger,
  ) {
    this.placement = new HostPlacement(topic);
  }

  private get count(): number {
    return this.placement.count;
  }

  /** The count to record in checkpoints (0 while unknown). */
  get partitions(): number {
    return this.count;
  }

  /**
   * Learns the count once per process: what the group's checkpoints recorded (recorded(q) for
   * each current partition q, first found wins), else, for a group without one, the topic's
   * current count.
   */
  async learn(current: () => Promise<number>, recorded: (q: number) => Promise<number>): Promise<void> {
    if (this.count > 0) return;
    const now = await current();
    for (let q = 0; q < now; q++) {
      const n = await recorded(q);
      if (n > 0) {
        this.placement.count = n;
        return;
      }
    }
    this.placement.count = now;
  }

  /** A partition is (re)opened; `recorded` is its checkpoint's count (0: none, or older format). */
  open(p: number, recorded: number): void {
    this.stopped.delete(p);
    if (p >= this.count) {
      this.stop(p, `partition ${p} is beyond the ${this.count} partitions the counting was built with`);
    } else if (recorded > 0 && recorded !== this.count) {
      this.stop(p, `its checkpoint was built with ${recorded} partitions, the group with ${this.count}`);
    }
  }

  /** True when the partition's message may be counted; false stops the partition there. */
  accepts(p: number, offset: number, host: string | undefined): boolean {
    if (this.stopped.has(p)) return false;
    if (host === undefined) return true;
    const want = this.placement.of(host);
    if (want === p) return true;
    this.stop(
      p,
      `host ${host} at offset ${offset} belongs in partition ${want} of ${this.count}: the topic's partitions were changed`,
    );
    return false;
  }

  forget(p: number): void {
    this.stopped.delete(p);
  }

  /** Why counting stopped (for /readyz), or undefined. */
  refusal(): string | undefined {
    const [first] = this.stopped.values();
    return first;
  }

  private stop(p: number, why: string): void {
    const msg = `raw topic ${this.topic}, group ${this.groupId}: counting of partition ${p} stopped: ${why}. Adding partitions moves hosts between partitions, which exact counting cannot follow; see README.md "Replication, partitions and growing the raw topic"`;
    this.stopped.set(p, msg);
    this.log.error({ partition: p, partitions: this.count }, msg);
  }
}
