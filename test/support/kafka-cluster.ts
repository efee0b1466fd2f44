/**
 * A 3-broker Apache Kafka cluster (KRaft, every node broker and controller) for fault tests.
 *
 * Same image as startKafka() (resolveKafkaImage). The containers share the host's network and
 * every listener is bound to 127.0.0.1, so the brokers reach each other's controller and
 * replication ports on loopback, and each advertises exactly the port clients use. Internal
 * topics are replicated 3 times with min.insync.replicas=2, the default for new topics too, so
 * acks=all survives one broker down. Heaps are small (-Xmx256m) to fit a 2-core machine.
 *
 * Brokers keep their container, ports and data across kill()/stop() and start(), like a machine
 * that crashed or was restarted. With KAFKA_BROKERS set there is nothing to kill: tests skip.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel } from 'kafkajs';
import { GenericContainer, getContainerRuntimeClient, type StartedTestContainer, Wait } from 'testcontainers';
import {
  freePort,
  KAFKA_CONTAINER_LABEL,
  removeByName,
  resolveKafkaImage,
  waitForKafka,
} from '../../deploy/kafka/container';

const CLUSTER_ID = 'c3KRaftSmmuFleetTestQ';
const REPLICATION = 3;
const MIN_ISR = 2;

export interface ClusterNode {
  /** KRaft node id (1..3). */
  id: number;
  /** Its client address, 127.0.0.1:port. */
  address: string;
  /** SIGKILL: a crash. */
  kill(): Promise<void>;
  /** SIGTERM: a controlled shutdown (partition leadership moves first). */
  stop(): Promise<void>;
  /** Starts the node again (same address, same data) and waits until it answers. */
  start(): Promise<void>;
}

export interface KafkaCluster {
  brokers: string[];
  nodes: ClusterNode[];
  /** The node with this id. */
  node(id: number): ClusterNode;
  /** A kafkajs client for the whole cluster (quiet, for admin and test consumers). */
  kafka(clientId: string): Kafka;
  /** Waits until every replica of every partition of these topics is in sync again. */
  waitInSync(topics: string[], timeoutMs?: number): Promise<void>;
  /** Removes the three containers (idempotent). */
  stop(): Promise<void>;
}

interface NodePorts {
  id: number;
  client: number;
  controller: number;
}

function nodeEnv(n: NodePorts, all: NodePorts[], heapOpts: string): Record<string, string> {
  return {
    CLUSTER_ID,
    KAFKA_NODE_ID: String(n.id),
    KAFKA_PROCESS_ROLES: 'broker,controller',
    KAFKA_LISTENERS: `PLAINTEXT://127.0.0.1:${n.client},CONTROLLER://127.0.0.1:${n.controller}`,
    KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://127.0.0.1:${n.client}`,
    KAFKA_CONTROLLER_QUORUM_VOTERS: all.map((v) => `${v.id}@127.0.0.1:${v.controller}`).join(','),
    KAFKA_LOG_DIRS: '/var/lib/kafka/data',
    KAFKA_DEFAULT_REPLICATION_FACTOR: String(REPLICATION),
    KAFKA_MIN_INSYNC_REPLICAS: String(MIN_ISR),
    KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: String(REPLICATION),
    KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS: '3',
    KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: String(REPLICATION),
    KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: String(MIN_ISR),
    KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR: String(REPLICATION),
    KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR: String(MIN_ISR),
    // Topics are made by the programs, with their replication (a crashed broker's replicas
    // leave the ISR once its session, 4 s in the image's defaults, expires).
    KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'false',
    KAFKA_HEAP_OPTS: heapOpts,
  };
}

/** Starts three brokers; resolves once each answers and the controller quorum has a leader. */
export async function startKafkaCluster(
  opts: { heapOpts?: string; startupTimeoutMs?: number } = {},
): Promise<KafkaCluster> {
  const image = await resolveKafkaImage();
  const client = await getContainerRuntimeClient();
  const heap = opts.heapOpts ?? '-Xmx256m -Xms128m';
  const timeoutMs = opts.startupTimeoutMs ?? 180_000;
  const ports: NodePorts[] = [];
  const taken = new Set<number>();
  const port = async () => {
    for (;;) {
      const p = await freePort();
      if (taken.has(p)) continue;
      taken.add(p);
      return p;
    }
  };
  for (let id = 1; id <= 3; id++) ports.push({ id, client: await port(), controller: await port() });
  const tag = randomBytes(3).toString('hex');
  const names = ports.map((n) => `smmu-kafka-c${n.id}-${n.client}-${tag}`);
  const brokers = ports.map((n) => `127.0.0.1:${n.client}`);

  const started: StartedTestContainer[] = [];
  const removeAll = () => Promise.all(names.map((name) => removeByName(name)));
  try {
    // All three at once: a broker is ready only once the controller quorum (2 of 3) exists.
    const containers = await Promise.all(
      ports.map((n, i) =>
        new GenericContainer(image)
          .withName(names[i])
          .withLabels({ [KAFKA_CONTAINER_LABEL]: process.env.SMMU_TEST_RUN_ID ?? 'adhoc' })
          .withNetworkMode('host')
          .withEnvironment(nodeEnv(n, ports, heap))
          .withWaitStrategy(Wait.forLogMessage('Kafka Server started'))
          .withStartupTimeout(timeoutMs)
          .start(),
      ),
    );
    started.push(...containers);
    await waitForKafka(brokers, 60_000);
  } catch (err) {
    await removeAll();
    throw err;
  }

  const nodes: ClusterNode[] = ports.map((n, i) => {
    const address = brokers[i];
    const docker = () => client.container.getById(started[i].getId());
    const ignoreNotRunning = (err: { statusCode?: number }) => {
      if (err.statusCode !== 304 && err.statusCode !== 409) throw err;
    };
    return {
      id: n.id,
      address,
      kill: async () => {
        await docker().kill({ signal: 'SIGKILL' }).catch(ignoreNotRunning);
        await docker().wait();
      },
      stop: async () => {
        await docker().stop({ t: 30 }).catch(ignoreNotRunning);
      },
      start: async () => {
        await docker().start();
        await waitForKafka([address], 180_000);
      },
    };
  });
  const kafka = (clientId: string) =>
    new Kafka({ clientId, brokers, logLevel: logLevel.NOTHING, retry: { retries: 10 } });
  let removed = false;
  return {
    brokers,
    nodes,
    node: (id) => {
      const found = nodes.find((x) => x.id === id);
      if (!found) throw new Error(`no node ${id}`);
      return found;
    },
    kafka,
    waitInSync: async (topics, waitMs = 120_000) => {
      const a = kafka('cluster-in-sync').admin();
      await a.connect();
      const deadline = Date.now() + waitMs;
      let last = '';
      try {
        for (;;) {
          try {
            const md = await a.fetchTopicMetadata({ topics });
            const lagging = md.topics.flatMap((t) =>
              t.partitions
                .filter((p) => p.isr.length < p.replicas.length || p.leader < 0)
                .map((p) => `${t.name}/${p.partitionId} isr=${p.isr.join(',')}`),
            );
            if (lagging.length === 0) return;
            last = lagging.join('; ');
          } catch (err) {
            last = String(err);
          }
          if (Date.now() > deadline) throw new Error(`replicas not in sync after ${waitMs} ms: ${last}`);
          await sleep(250);
        }
      } finally {
        await a.disconnect();
      }
    },
    stop: async () => {
      if (removed) return;
      removed = true;
      await removeAll();
    },
  };
}
