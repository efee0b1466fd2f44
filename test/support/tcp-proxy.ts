// A TCP proxy a test controls, to cut the network between agent and collector and restore it,
// or to drop what the target answers while requests still flow (acknowledgements lost).
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { Transform } from 'node:stream';

export class TcpProxy {
  private server: Server;
  private sockets = new Set<Socket>();
  private open = true;
  private dropping = false;
  port = 0;
  /** Bytes forwarded towards the target (requests) and back (responses). */
  bytesUp = 0;
  bytesDown = 0;

  constructor(private readonly target: { host: string; port: number }) {
    this.server = createServer((client) => {
      if (!this.open) {
        client.destroy();
        return;
      }
      const upstream = createConnection(this.target);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {});
      }
      client.on('data', (d: Buffer) => {
        this.bytesUp += d.length;
      });
      const down = new Transform({
        transform: (d: Buffer, _enc, done) => {
          this.bytesDown += d.length;
          done(null, this.dropping ? undefined : d);
        },
      });
      client.pipe(upstream).pipe(down).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as { port: number }).port;
    return `127.0.0.1:${this.port}`;
  }

  /** Drops every connection and refuses new ones. */
  cut(): void {
    this.open = false;
    for (const s of this.sockets) s.destroy();
  }

  restore(): void {
    this.open = true;
    this.dropping = false;
  }

  /** From now until restore(), drops every byte the target sends; requests still go through. */
  dropResponses(): void {
    this.dropping = true;
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
