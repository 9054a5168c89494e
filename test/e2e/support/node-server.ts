import { ChildProcess, spawn } from 'child_process';
import { openSync } from 'fs';
import { waitFor } from './postgres-bin';

/**
 * A storage emulator from npm (s3rver, Azurite, the GCS emulator) in a child Node process: the
 * tests run pgBackRest with spawnSync, which blocks the jest worker, so a server inside it could
 * not answer. Its output goes to `log`.
 */
export class NodeServer {
  /**
   * Starts `node <args>` and waits until `ready()` holds; fails, naming `log`, when it exits first.
   * @param what the server's name, for the errors
   */
  public static async start(what: string, args: string[], options: { env: NodeJS.ProcessEnv; log: string; cwd?: string; timeoutMs?: number },
    ready: () => boolean): Promise<NodeServer> {
    const out = openSync(options.log, 'a');
    const child = spawn(process.execPath, args, { env: options.env, ...(options.cwd ? { cwd: options.cwd } : {}), stdio: ['ignore', out, out] });
    await waitFor(`${what} to listen (log: ${options.log})`, () => {
      if (child.exitCode !== null) throw new Error(`${what} exited ${child.exitCode}: see ${options.log}`);
      return ready();
    }, options.timeoutMs);
    return new NodeServer(child);
  }

  private constructor(private readonly child: ChildProcess) {}

  /** Stops the server at once. */
  public kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}
