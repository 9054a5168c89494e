import { AddressInfo, createConnection, createServer, Server, Socket } from 'net';
import { PatroniCluster } from './patroni-harness';

/**
 * The HA cluster's read-write Service on loopback. In Kubernetes it selects the pod whose role
 * label Patroni sets to the leader's; kube-proxy sends each new TCP connection to the endpoint it
 * knows then and never moves an established one. So this forwarder: every new connection goes to
 * the member Patroni's `GET /cluster` names running leader (polled every `pollMs`, about as fast
 * as kube-proxy follows a label change), connections already piped stay with their member,
 * and with no running leader a connection is closed at once, as kube-proxy rejects one to a
 * Service without endpoints. `lagMs` delays each change, as a slow endpoint propagation would.
 */
export class LeaderForwarder {
  public static async start(cluster: PatroniCluster, lagMs = 0, pollMs = 200): Promise<LeaderForwarder> {
    const forwarder = new LeaderForwarder(cluster, lagMs, pollMs);
    await new Promise<void>((resolve) => forwarder.server.listen(0, '127.0.0.1', resolve));
    forwarder.poll = forwarder.follow();
    return forwarder;
  }

  /** A forwarder whose new connections go to the member `choose` names when they arrive (none: closed at once), for a Service modelled elsewhere. */
  public static async to(cluster: PatroniCluster, choose: () => string | undefined): Promise<LeaderForwarder> {
    const forwarder = new LeaderForwarder(cluster, 0, 0, choose);
    await new Promise<void>((resolve) => forwarder.server.listen(0, '127.0.0.1', resolve));
    return forwarder;
  }

  /** The member new connections go to; undefined while no member is the running leader. */
  public leader?: string;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private poll?: Promise<void>;
  private running = true;
  /** The leader as last polled; `leader` becomes it lagMs later. */
  private observed?: string;

  private constructor(private readonly cluster: PatroniCluster, private readonly lagMs: number, private readonly pollMs: number,
    private readonly choose = () => this.leader) {
    this.server = createServer((client) => this.forward(client));
  }

  public get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Stops following the leader, closes the listener and every piped connection. */
  public async stop(): Promise<void> {
    this.running = false;
    await this.poll;
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private async follow(): Promise<void> {
    while (this.running) {
      const members = await this.cluster.status();
      const leader = members?.find((m) => m.role === 'leader' && m.state === 'running')?.name;
      if (leader !== this.observed) {
        this.observed = leader;
        setTimeout(() => (this.leader = leader), this.lagMs);
      }
      await new Promise((resolve) => setTimeout(resolve, this.pollMs));
    }
  }

  private forward(client: Socket): void {
    const target = this.choose();
    if (target === undefined) {
      client.destroy();
      return;
    }
    const server = createConnection(this.cluster.member(target).pgPort, '127.0.0.1');
    for (const [from, to] of [[client, server], [server, client]]) {
      this.sockets.add(from);
      from.pipe(to);
      from.on('error', () => to.destroy());
      from.on('close', () => {
        this.sockets.delete(from);
        to.destroy();
      });
    }
  }
}
