/**
 * A real Apache Kafka broker for tests and the demo.
 *
 * `startKafka()` returns a single-node KRaft broker (roles broker,controller):
 *  - env KAFKA_BROKERS="host:port,..." set: that cluster is used as is; stop() does nothing and the
 *    broker fault controls (stopBroker, startBroker, restartBroker, pauseBroker, unpauseBroker) throw.
 *  - otherwise a container is started with testcontainers (DOCKER_HOST, e.g. the podman socket that
 *    test/infra/setup-host.sh starts; no Ryuk: every handle must be stopped).
 *
 * Image rule (resolveKafkaImage):
 *  1. opts.image, else env KAFKA_IMAGE;
 *  2. else localhost/smmu-fleet-kafka:4.1.1 when the container engine has it
 *     (built by test/infra/kafka-image.sh: Debian + OpenJDK 17 + Kafka jars from Maven Central);
 *  3. else the official apache/kafka:4.1.1 (pulled by an engine that can reach a registry).
 * Both images are configured through the same KAFKA_* environment variables (KAFKA_FOO_BAR -> foo.bar).
 * With podman as the engine, a port that an image declares (EXPOSE) but that is not published makes
 * testcontainers wait for a binding that never comes: apache/kafka declares 9092, so for images other
 * than the local one 9092 is also published, on a random host port, unused.
 *
 * The broker advertises the host-mapped port: a free host port P is chosen up front and published as
 * container port P == host port P, advertised as PLAINTEXT://127.0.0.1:P. Because the port and the
 * container's file system survive a stop/start of the same container, stopBroker()/startBroker()
 * model a broker outage with the same address and the same data.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, type KafkaConfig, logLevel, type SASLOptions } from 'kafkajs';
import {
  GenericContainer,
  getContainerRuntimeClient,
  ImageName,
  type PortWithOptionalBinding,
  type StartedTestContainer,
  Wait,
} from 'testcontainers';

export const KAFKA_VERSION = '4.1.1';
/** Built locally by test/infra/kafka-image.sh. */
export const KAFKA_LOCAL_IMAGE = `localhost/smmu-fleet-kafka:${KAFKA_VERSION}`;
/** The official image, for engines that can pull from a registry. */
export const KAFKA_OFFICIAL_IMAGE = `apache/kafka:${KAFKA_VERSION}`;
/** Label put on every broker container; its value is env SMMU_TEST_RUN_ID (test/run.sh) or 'adhoc'. */
export const KAFKA_CONTAINER_LABEL = 'smmu-fleet.test.kafka';

const READY_LOG_LINE = 'Kafka Server started';
const CONTROLLER_PORT = 9093;
const CLUSTER_ID = 'PEd_ZMErT0KDIqIelfEZvw';

/** What a secured broker needs from its set-up (test/support/kafka-security.ts makes one). */
export interface ContainerSecurity {
  /** Files to copy into the container. */
  files: Array<{ source: string; target: string }>;
  /** Broker environment (KAFKA_* settings with the JAAS configs, SCRAM_USERS). */
  env(port: number, host: string): Record<string, string>;
  /** kafkajs ssl/sasl of a user (the readiness check connects as 'admin'). */
  kafkajs(user: string): { ssl: { ca: string; cert?: string; key?: string }; sasl: SASLOptions };
}

export interface StartKafkaOptions {
  /** Image to run; default: see resolveKafkaImage(). */
  image?: string;
  /** Default partition count of auto-created topics (num.partitions). Default 1. */
  partitions?: number;
  /** Extra broker settings as KAFKA_* variables, e.g. { KAFKA_LOG_RETENTION_MS: '60000' }. */
  env?: Record<string, string>;
  /** JVM heap options. Default '-Xmx512m -Xms256m'. */
  heapOpts?: string;
  /** Bound on container start + readiness. Default 120 s. */
  startupTimeoutMs?: number;
  /** Copy the broker's log to stderr (also: env KAFKA_LOGS=1). */
  logs?: boolean;
  /**
   * SASL_SSL, SCRAM users and ACLs enforced (see kafka-security.ts); the local image only.
   * The broker is then reached with security.kafkajs('admin') or security.client(user).
   */
  security?: ContainerSecurity;
  /** Host port to publish and advertise (default: a free one). */
  port?: number;
  /** Container name (default: smmu-kafka-<port>-<random>). */
  name?: string;
}

export interface BrokerStopOptions {
  /** true (default): SIGTERM and a controlled shutdown; false: SIGKILL (a crash, slower restart). */
  graceful?: boolean;
  /** Seconds to wait for a graceful stop before SIGKILL. Default 30. */
  timeoutSec?: number;
}

export interface KafkaBroker {
  /** Bootstrap addresses, e.g. ['127.0.0.1:40123']. */
  brokers: string[];
  /** True when KAFKA_BROKERS named an existing cluster (nothing was started). */
  external: boolean;
  /** Image that was started (undefined when external). */
  image?: string;
  /** The started container (undefined when external). Prefer the methods below to drive it. */
  container?: StartedTestContainer;
  /** Stops and removes the container (idempotent). No-op for an external cluster. */
  stop(): Promise<void>;
  /** Takes the broker down; the container, its port and its data stay. */
  stopBroker(opts?: BrokerStopOptions): Promise<void>;
  /** Starts the broker stopped by stopBroker() and waits until it answers (same address, same data). */
  startBroker(opts?: { timeoutMs?: number }): Promise<void>;
  /** stopBroker() then startBroker(). */
  restartBroker(opts?: BrokerStopOptions & { timeoutMs?: number }): Promise<void>;
  /** Freezes the broker's processes (connections stay open, nothing is answered). */
  pauseBroker(): Promise<void>;
  /** Resumes a paused broker. */
  unpauseBroker(): Promise<void>;
}

async function runtime(): Promise<Awaited<ReturnType<typeof getContainerRuntimeClient>>> {
  try {
    return await getContainerRuntimeClient();
  } catch (err) {
    throw new Error(
      `no container engine (DOCKER_HOST=${process.env.DOCKER_HOST ?? '<unset>'}): export the lines that ` +
        `test/infra/setup-host.sh prints, or set KAFKA_BROKERS. ${(err as Error)?.message ?? err}`,
    );
  }
}

/** Picks the image to run; see the rule at the top of this file. */
export async function resolveKafkaImage(explicit?: string): Promise<string> {
  const chosen = explicit ?? process.env.KAFKA_IMAGE;
  if (chosen) return chosen;
  const client = await runtime();
  if (await client.image.exists(ImageName.fromString(KAFKA_LOCAL_IMAGE))) return KAFKA_LOCAL_IMAGE;
  return KAFKA_OFFICIAL_IMAGE;
}

/**
 * Host name the broker advertises. A local engine (unix socket) publishes its ports on this machine:
 * 127.0.0.1. (testcontainers itself would answer with the bridge gateway when /.dockerenv exists.)
 * A remote engine (DOCKER_HOST=tcp://...) publishes them on its own host. KAFKA_ADVERTISED_HOST overrides.
 */
function advertisedHostFor(engineHost: string): string {
  const override = process.env.KAFKA_ADVERTISED_HOST;
  if (override) return override;
  const dockerHost = process.env.DOCKER_HOST ?? '';
  if (dockerHost === '' || dockerHost.startsWith('unix://') || dockerHost.startsWith('npipe://'))
    return '127.0.0.1';
  return engineHost === 'localhost' ? '127.0.0.1' : engineHost;
}

/**
 * A container whose published ports listen on one host address only: testcontainers 11 publishes
 * on every address of the host, and a broker for tests on this host needs only the loopback.
 */
class BoundContainer extends GenericContainer {
  constructor(
    image: string,
    private readonly hostIp: string,
  ) {
    super(image);
  }
  override withExposedPorts(...ports: PortWithOptionalBinding[]): this {
    super.withExposedPorts(...ports);
    for (const bindings of Object.values(this.hostConfig.PortBindings ?? {}))
      for (const binding of bindings as { HostIp?: string }[]) binding.HostIp = this.hostIp;
    return this;
  }
}

/** A TCP port that is free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('could not read the listening port'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

/**
 * Waits until the cluster answers a metadata request (kafkajs admin listTopics), retrying until
 * timeoutMs. Throws the last error on timeout.
 */
export async function waitForKafka(
  brokers: string[],
  timeoutMs = 60_000,
  client: Pick<KafkaConfig, 'ssl' | 'sasl'> = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    const kafka = new Kafka({
      ...client,
      clientId: 'smmu-fleet-test-readiness',
      brokers,
      logLevel: logLevel.NOTHING,
      connectionTimeout: 2_000,
      requestTimeout: 5_000,
      retry: { retries: 0 },
    });
    const admin = kafka.admin();
    try {
      await admin.connect();
      await admin.listTopics();
      return;
    } catch (err) {
      lastError = err;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    await sleep(250);
  }
  throw new Error(
    `Kafka at ${brokers.join(',')} not ready after ${timeoutMs} ms: ${(lastError as Error)?.message ?? lastError}`,
  );
}

function brokerEnv(port: number, advertisedHost: string, opts: StartKafkaOptions): Record<string, string> {
  return {
    CLUSTER_ID,
    KAFKA_NODE_ID: '1',
    KAFKA_PROCESS_ROLES: 'broker,controller',
    KAFKA_LISTENERS: `PLAINTEXT://:${port},CONTROLLER://:${CONTROLLER_PORT}`,
    KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://${advertisedHost}:${port}`,
    KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
    KAFKA_INTER_BROKER_LISTENER_NAME: 'PLAINTEXT',
    KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    KAFKA_CONTROLLER_QUORUM_VOTERS: `1@127.0.0.1:${CONTROLLER_PORT}`,
    KAFKA_LOG_DIRS: '/var/lib/kafka/data',
    KAFKA_NUM_PARTITIONS: String(opts.partitions ?? 1),
    KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'true',
    KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
    KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS: '1',
    KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
    KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
    KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR: '1',
    KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR: '1',
    KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
    // After a crash (SIGKILL) the restarted broker can only register once its old session has
    // expired: 4 s instead of the default 9 s keeps a crash-restart around 5 s.
    KAFKA_BROKER_SESSION_TIMEOUT_MS: '4000',
    KAFKA_BROKER_HEARTBEAT_INTERVAL_MS: '1000',
    KAFKA_HEAP_OPTS: opts.heapOpts ?? '-Xmx512m -Xms256m',
    ...opts.security?.env(port, advertisedHost),
    ...opts.env,
  };
}

function externalBroker(list: string): KafkaBroker {
  const brokers = list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  const unsupported = async (): Promise<never> => {
    throw new Error('broker fault controls need a broker started by startKafka(), not KAFKA_BROKERS');
  };
  return {
    brokers,
    external: true,
    stop: async () => undefined,
    stopBroker: unsupported,
    startBroker: unsupported,
    restartBroker: unsupported,
    pauseBroker: unsupported,
    unpauseBroker: unsupported,
  };
}

/** Removes a broker container by name (no error when there is none). */
export async function removeByName(name: string): Promise<void> {
  const client = await runtime();
  await client.container.dockerode
    .getContainer(name)
    .remove({ force: true, v: true })
    .catch(() => undefined);
}

/** Starts (or, with KAFKA_BROKERS, names) a Kafka cluster; see the top of this file. */
export async function startKafka(opts: StartKafkaOptions = {}): Promise<KafkaBroker> {
  const external = process.env.KAFKA_BROKERS?.trim();
  if (external) return externalBroker(external);

  const startupTimeoutMs = opts.startupTimeoutMs ?? 120_000;
  const deadline = Date.now() + startupTimeoutMs;
  const image = await resolveKafkaImage(opts.image);
  const client = await runtime();
  const advertisedHost = advertisedHostFor(client.info.containerRuntime.host);
  const showLogs = opts.logs ?? process.env.KAFKA_LOGS === '1';

  let container: StartedTestContainer | undefined;
  let port = 0;
  let lastError: unknown;
  // The chosen port may be taken between the probe and the container start: try a few.
  for (let attempt = 1; attempt <= 3 && container === undefined; attempt++) {
    port = opts.port ?? (await freePort());
    const name = opts.name ?? `smmu-kafka-${port}-${randomBytes(3).toString('hex')}`;
    // A broker on this host's engine is published on the loopback only; a remote engine's on all.
    let builder = (
      advertisedHost === '127.0.0.1' ? new BoundContainer(image, advertisedHost) : new GenericContainer(image)
    )
      .withName(name)
      .withLabels({ [KAFKA_CONTAINER_LABEL]: process.env.SMMU_TEST_RUN_ID ?? 'adhoc' })
      .withExposedPorts(
        ...(image === KAFKA_LOCAL_IMAGE
          ? [{ container: port, host: port }]
          : [{ container: port, host: port }, 9092]),
      )
      .withEnvironment(brokerEnv(port, advertisedHost, opts))
      .withCopyFilesToContainer(opts.security?.files ?? [])
      .withWaitStrategy(Wait.forLogMessage(READY_LOG_LINE))
      .withStartupTimeout(Math.max(1_000, deadline - Date.now()));
    if (showLogs) {
      builder = builder.withLogConsumer((stream) => {
        stream.on('data', (line) => process.stderr.write(`[kafka ${port}] ${line}`));
      });
    }
    try {
      container = await builder.start();
    } catch (err) {
      lastError = err;
      await removeByName(name); // a container created but never started is not removed for us
      if (!/address already in use|port is already allocated|bind/i.test(String(err))) break;
    }
  }
  if (container === undefined) {
    const hint =
      image === KAFKA_LOCAL_IMAGE
        ? ''
        : ` (no ${KAFKA_LOCAL_IMAGE} in the engine: run test/infra/kafka-image.sh)`;
    throw new Error(
      `could not start Kafka from ${image}${hint}: ${(lastError as Error)?.message ?? lastError}`,
    );
  }

  const started = container;
  const brokers = [`${advertisedHost}:${port}`];
  const readinessClient = opts.security?.kafkajs('admin') ?? {};
  const dockerContainer = () => client.container.getById(started.getId());
  let removed = false;

  const stop = async (): Promise<void> => {
    if (removed) return;
    removed = true;
    await started.stop({ timeout: 0, remove: true, removeVolumes: true }).catch(async (err: unknown) => {
      await removeByName(started.getName().replace(/^\//, ''));
      throw err;
    });
  };
  const stopBroker = async (o: BrokerStopOptions = {}): Promise<void> => {
    const c = dockerContainer();
    if (o.graceful === false) {
      await c.kill({ signal: 'SIGKILL' }).catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 304 && err.statusCode !== 409) throw err;
      });
      await c.wait();
    } else {
      await c.stop({ t: o.timeoutSec ?? 30 }).catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 304) throw err;
      });
    }
  };
  const startBroker = async (o: { timeoutMs?: number } = {}): Promise<void> => {
    await dockerContainer().start();
    await waitForKafka(brokers, o.timeoutMs ?? 90_000, readinessClient);
  };

  try {
    await waitForKafka(brokers, Math.max(5_000, deadline - Date.now()), readinessClient);
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }

  return {
    brokers,
    external: false,
    image,
    container: started,
    stop,
    stopBroker,
    startBroker,
    restartBroker: async (o = {}) => {
      await stopBroker(o);
      await startBroker(o);
    },
    pauseBroker: async () => {
      await dockerContainer().pause();
    },
    unpauseBroker: async () => {
      await dockerContainer().unpause();
    },
  };
}
