import { createHmac } from 'crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'fs';
import { request } from 'https';
import { dirname, join } from 'path';
import { NodeServer } from './node-server';

/** What the Azure Blob Storage emulator is started with. */
export interface AzureServerOptions {
  /** Its files: `<dir>/data` (Azurite's store), `<dir>/azurite.log`, its certificate and key. */
  readonly dir: string;
  /** The loopback port its blob service listens on, over HTTPS. */
  readonly port: number;
  /** The server's certificate and key (PEM), for the endpoint's DNS name. */
  readonly certificate: string;
  readonly key: string;
  /** The only storage account it serves, and its shared key (base64). */
  readonly account: string;
  readonly accountKey: string;
  /** The container it is started with (pgBackRest does not create one). */
  readonly container: string;
}

/**
 * Azurite's blob service (Azure's own Storage emulator, from npm) in a child process, path style
 * (`https://<host>:<port>/<account>/<container>`), with the test's account instead of its
 * well-known development one, and no telemetry (Azurite 3.35 sends it unless told not to).
 */
export class LocalAzureServer {
  /** Starts the server, waits until it listens and creates the container; fails with its log when it exits first. */
  public static async start(options: AzureServerOptions): Promise<LocalAzureServer> {
    const data = join(options.dir, 'data');
    const log = join(options.dir, 'azurite.log');
    mkdirSync(data, { recursive: true });
    writeFileSync(join(options.dir, 'tls.crt'), options.certificate);
    writeFileSync(join(options.dir, 'tls.key'), options.key, { mode: 0o600 });
    const main = join(dirname(require.resolve('azurite/package.json')), 'dist', 'src', 'blob', 'main.js');
    const args = [
      '--blobHost', '127.0.0.1', '--blobPort', String(options.port), '--location', data,
      '--cert', join(options.dir, 'tls.crt'), '--key', join(options.dir, 'tls.key'),
      '--skipApiVersionCheck', '--disableTelemetry', '--disableProductStyleUrl',
    ];
    const env = { ...process.env, AZURITE_ACCOUNTS: `${options.account}:${options.accountKey}` };
    const child = await NodeServer.start(`Azurite on port ${options.port}`, [main, ...args], { env, log },
      () => readFileSync(log, 'utf8').includes('successfully listens'));
    const server = new LocalAzureServer(child, log, options);
    const status = await server.signedRequest('PUT', `/${options.container}`, 'restype=container');
    if (status !== 201) throw new Error(`Azurite answered ${status} to the creation of container ${options.container}: see ${log}`);
    return server;
  }

  private constructor(private readonly server: NodeServer, public readonly log: string, private readonly options: AzureServerOptions) {}

  /** Whether the container holds blob `name`, asked over the REST API with the account's key. */
  public async hasBlob(name: string): Promise<boolean> {
    const status = await this.signedRequest('HEAD', `/${this.options.container}/${name}`);
    if (status !== 200 && status !== 404) throw new Error(`Azurite answered ${status} to HEAD of blob ${name}: see ${this.log}`);
    return status === 200;
  }

  /** Stops the server at once. */
  public kill(): void {
    this.server.kill();
  }

  /**
   * A request signed with the account's shared key (Azure's SharedKey scheme, path style: the
   * canonical resource names the account twice); resolves with the status.
   */
  private signedRequest(method: string, path: string, query?: string): Promise<number> {
    const { account, accountKey, port } = this.options;
    const headers = { 'x-ms-date': new Date().toUTCString(), 'x-ms-version': '2021-08-06' };
    const canonicalHeaders = Object.entries(headers).map(([name, value]) => `${name}:${value}`).join('\n');
    const canonicalQuery = query ? `\n${query.split('&').map((pair) => pair.replace('=', ':')).sort().join('\n')}` : '';
    // VERB, eleven standard headers (empty), the x-ms- headers, the resource.
    const stringToSign = [method, ...Array(11).fill(''), canonicalHeaders, `/${account}/${account}${path}${canonicalQuery}`].join('\n');
    const signature = createHmac('sha256', Buffer.from(accountKey, 'base64')).update(stringToSign, 'utf8').digest('base64');
    return new Promise((resolve, reject) => {
      const req = request({
        host: '127.0.0.1', port, method, path: `/${account}${path}${query ? `?${query}` : ''}`, rejectUnauthorized: false,
        headers: { ...headers, 'Authorization': `SharedKey ${account}:${signature}`, 'Content-Length': 0 },
      }, (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
  }
}
