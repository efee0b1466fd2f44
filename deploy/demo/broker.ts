// One local Kafka broker on 127.0.0.1:9092 for running the parts separately (README):
// `npm run broker` starts it (and leaves it running), `npm run broker -- stop` removes it.
import { removeByName, startKafka } from '../kafka/container';

const NAME = 'smmu-fleet-kafka';
const PORT = 9092;

async function main(command: string): Promise<void> {
  if (command === 'stop') {
    await removeByName(NAME);
    process.stdout.write(`broker ${NAME} removed\n`);
    return;
  }
  if (command !== 'start') {
    process.stderr.write('usage: npm run broker -- [start|stop]\n');
    process.exit(2);
  }
  const broker = await startKafka({ port: PORT, name: NAME });
  process.stdout.write(
    `Kafka ${broker.image} running as ${NAME} at ${broker.brokers.join(',')}; stop it with: npm run broker -- stop\n`,
  );
}

main(process.argv[2] ?? 'start').then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`broker: ${err.message}\n`);
    process.exit(1);
  },
);
