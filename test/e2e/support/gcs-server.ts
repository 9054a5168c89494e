import { existsSync, mkdirSync } from 'fs';
import { request } from 'http';
import { join } from 'path';
import { NodeServer } from './node-server';
import { freePort } from './postgres-bin';

/** What the fake GCS server is started with. */
export interface GcsServerOptions {
  /** Its files: `<dir>/tmp` (its blobs), `<dir>/gcs.log`. */
  readonly dir: string;
  /** The loopback port it listens on, over HTTPS. */
  readonly port: number;
  /** The server's certificate and key (PEM), for the endpoint's DNS name. */
  readonly certificate: string;
  readonly key: string;
}

/**
 * The child's program: the Cloud Storage emulator of firebase-tools (its GCS JSON API, which
 * takes the token `owner` as an admin's), started through its registry (it builds its URLs from
 * it) without the Storage rules runtime (a Java jar it would download; the JSON API does not use
 * it), behind a TLS server that forwards each connection to it, since pgBackRest reaches GCS over
 * HTTPS only and the emulator speaks HTTP.
 */
const PROGRAM = `
const options = JSON.parse(process.env.GCS_SERVER_OPTIONS);
const { StorageEmulator } = require(options.storageModule);
const { EmulatorRegistry } = require(options.registryModule);
const tls = require('tls');
const net = require('net');
const emulator = new StorageEmulator({ projectId: 'demo-e2e', host: '127.0.0.1', port: options.httpPort, rules: [], auto_download: false });
emulator._rulesRuntime.start = async () => {};
emulator._rulesManager.start = async () => [];
EmulatorRegistry.start(emulator).then(() => {
  tls.createServer({ cert: options.certificate, key: options.key }, (socket) => {
    const upstream = net.connect(options.httpPort, '127.0.0.1');
    socket.pipe(upstream).pipe(socket);
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
  }).listen(options.port, '127.0.0.1', () => require('fs').writeFileSync(options.ready, ''));
}, (error) => { console.error(error); process.exit(1); });
`;

/** The fake GCS server in a child process (NodeServer). */
export class LocalGcsServer {
  /** The token the emulator takes as an admin's (`Authorization: Bearer owner`). */
  public static readonly TOKEN = 'owner';

  /** Starts the server and waits until it listens; fails with its log when it exits first. */
  public static async start(options: GcsServerOptions): Promise<LocalGcsServer> {
    const tmp = join(options.dir, 'tmp');
    const ready = join(options.dir, 'ready');
    const log = join(options.dir, 'gcs.log');
    mkdirSync(tmp, { recursive: true });
    const httpPort = await freePort();
    const env = {
      ...process.env,
      TMPDIR: tmp,
      GCS_SERVER_OPTIONS: JSON.stringify({
        ...options, httpPort, ready,
        storageModule: require.resolve('firebase-tools/lib/emulator/storage'), registryModule: require.resolve('firebase-tools/lib/emulator/registry'),
      }),
    };
    const server = await NodeServer.start(`the GCS emulator on port ${options.port}`, ['-e', PROGRAM], { env, log, cwd: options.dir, timeoutMs: 60_000 },
      () => existsSync(ready));
    return new LocalGcsServer(server, httpPort, log);
  }

  private constructor(private readonly server: NodeServer, private readonly httpPort: number, public readonly log: string) {}

  /** Whether `bucket` holds object `name`, asked over its JSON API. */
  public hasObject(bucket: string, name: string): Promise<boolean> {
    return new Promise((resolve, reject) => {
      const req = request({
        host: '127.0.0.1', port: this.httpPort, path: `/storage/v1/b/${bucket}/o/${encodeURIComponent(name)}`,
        headers: { Authorization: `Bearer ${LocalGcsServer.TOKEN}` },
      }, (response) => {
        response.resume();
        response.on('end', () => (response.statusCode === 200 || response.statusCode === 404
          ? resolve(response.statusCode === 200) : reject(new Error(`the GCS emulator answered ${response.statusCode} for ${name}: see ${this.log}`))));
      });
      req.on('error', reject);
      req.end();
    });
  }

  /** Stops the server at once. */
  public kill(): void {
    this.server.kill();
  }
}
