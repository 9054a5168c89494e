import { existsSync, mkdirSync, readFileSync } from 'fs';
import { dirname, join } from 'path';
import { NodeServer } from './node-server';

/** What the S3-compatible server is started with. */
export interface S3ServerOptions {
  /** Its files: `<dir>/data` (one directory per bucket), `<dir>/s3rver.log` (one line a request). */
  readonly dir: string;
  /** The loopback port it listens on, over HTTPS. */
  readonly port: number;
  /** The server's certificate and key (PEM), for the endpoint's DNS name. */
  readonly certificate: string;
  readonly key: string;
  /** The domain under which `<bucket>.s3.<domain>` names a bucket (host style); requests to `s3.<domain>` name it in the path. */
  readonly serviceEndpoint: string;
  /** The bucket it is started with. */
  readonly bucket: string;
  /** The only key pair it accepts (SigV4). */
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/**
 * The child's program: s3rver with buckets in the path of requests to `s3.<serviceEndpoint>` and
 * in the host name of `<bucket>.s3.<serviceEndpoint>` (vhostBuckets off, or it would take any
 * other name for a bucket), the test's key pair instead of its built-in one, and a file that
 * says it listens.
 */
const PROGRAM = `
const options = JSON.parse(process.env.S3_SERVER_OPTIONS);
const S3rver = require(options.module);
const AWSAccount = require(options.accountModule);
AWSAccount.DUMMY_ACCOUNT.revokeAccessKey('S3RVER');
new AWSAccount(100000000001, 'e2e').createKeyPair(options.accessKeyId, options.secretAccessKey);
new S3rver({
  address: '127.0.0.1', port: options.port, key: options.key, cert: options.certificate, directory: options.data,
  serviceEndpoint: options.serviceEndpoint, vhostBuckets: false, configureBuckets: [{ name: options.bucket }],
}).run().then(() => require('fs').writeFileSync(options.ready, ''), (error) => { console.error(error); process.exit(1); });
`;

/** s3rver (an S3-compatible server from npm, on a local directory) in a child process (NodeServer). */
export class LocalS3Server {
  /** Starts the server and waits until it listens; fails with its log when it exits first. */
  public static async start(options: S3ServerOptions): Promise<LocalS3Server> {
    const data = join(options.dir, 'data');
    const ready = join(options.dir, 'ready');
    const log = join(options.dir, 's3rver.log');
    mkdirSync(data, { recursive: true });
    const module = require.resolve('s3rver');
    const env = {
      ...process.env,
      S3_SERVER_OPTIONS: JSON.stringify({ ...options, module, accountModule: join(dirname(module), 'models', 'account.js'), data, ready }),
    };
    const server = await NodeServer.start(`s3rver on port ${options.port}`, ['-e', PROGRAM], { env, log }, () => existsSync(ready));
    return new LocalS3Server(server, data, log);
  }

  private constructor(private readonly server: NodeServer, private readonly data: string, public readonly log: string) {}

  /** Whether the bucket holds the object `key`, as s3rver's store keeps it on disk. */
  public hasObject(bucket: string, key: string): boolean {
    return existsSync(join(this.data, bucket, `${key}._S3rver_object`));
  }

  /** The bytes of object `key`, as s3rver's store keeps it on disk. */
  public object(bucket: string, key: string): Buffer {
    return readFileSync(join(this.data, bucket, `${key}._S3rver_object`));
  }

  /** Stops the server at once. */
  public kill(): void {
    this.server.kill();
  }
}
