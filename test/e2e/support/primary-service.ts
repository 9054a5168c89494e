import { LeaderForwarder } from './leader-forwarder';
import { PatroniCluster, PatroniMember } from './patroni-harness';

/** A readiness probe as rendered in the container spec. */
export interface ReadinessProbe {
  readonly periodSeconds: number;
  readonly timeoutSeconds: number;
  readonly failureThreshold: number;
}

interface Endpoint {
  label?: 'primary' | 'replica';
  ready: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The HA cluster's `-rw` Service as Kubernetes keeps it when a leader's Patroni stalls, which
 * LeaderForwarder (the lock holder in the store) cannot show: its endpoints are the pods labelled
 * `role: primary` that pass their readiness probe. A member's label is the role its Patroni last
 * reported (`GET /patroni`, polled every 200 ms, as Patroni patches its pod on a change): a
 * frozen Patroni keeps its last label, a member not running has no pod endpoint. Readiness is
 * the rendered probe run as the kubelet runs it: `GET /readiness` every periodSeconds within
 * timeoutSeconds, NotReady after failureThreshold failures in a row, Ready after one success.
 * A new connection goes to one endpoint at random (kube-proxy's iptables mode); established ones
 * stay where they are.
 */
export class PrimaryService {
  public static async start(cluster: PatroniCluster, readiness: ReadinessProbe): Promise<PrimaryService> {
    const service = new PrimaryService(cluster, readiness);
    service.forwarder = await LeaderForwarder.to(cluster, () => service.choose());
    service.loops = cluster.members.flatMap((member) => [service.followLabel(member), service.probe(member)]);
    return service;
  }

  /** Every change of a member's label or readiness: time, member, what. */
  public readonly events: string[] = [];
  private readonly endpoints = new Map<string, Endpoint>();
  private forwarder?: LeaderForwarder;
  private loops: Promise<void>[] = [];
  private running = true;

  private constructor(private readonly cluster: PatroniCluster, private readonly readiness: ReadinessProbe) {
    for (const member of cluster.members) this.endpoints.set(member.name, { ready: false });
  }

  public get port(): number {
    return this.forwarder!.port;
  }

  /** The members new connections may go to now. */
  public get primaries(): string[] {
    return [...this.endpoints].filter(([name, e]) => e.label === 'primary' && e.ready && this.cluster.member(name).running).map(([name]) => name);
  }

  public async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    await this.forwarder?.stop();
  }

  private choose(): string | undefined {
    const primaries = this.primaries;
    return primaries[Math.floor(Math.random() * primaries.length)];
  }

  private set(member: PatroniMember, change: Partial<Endpoint>): void {
    const endpoint = this.endpoints.get(member.name)!;
    for (const [key, value] of Object.entries(change) as [keyof Endpoint, never][]) {
      if (endpoint[key] !== value) this.events.push(`${new Date().toISOString()} ${member.name} ${key} ${value}`);
      endpoint[key] = value;
    }
  }

  private async followLabel(member: PatroniMember): Promise<void> {
    while (this.running) {
      if (!member.running) {
        this.set(member, { label: undefined });
      } else {
        const response = await member.restCall('/patroni', { timeoutMs: 1000 });
        try {
          // Patroni 4 says `primary`, 3.x `master`.
          if (response.status !== 0) this.set(member, { label: ['primary', 'master'].includes(JSON.parse(response.body).role) ? 'primary' : 'replica' });
        } catch {
          // A member still starting may answer with something else: its label stays.
        }
      }
      await sleep(200);
    }
  }

  private async probe(member: PatroniMember): Promise<void> {
    let failures = 0;
    while (this.running) {
      const startedAt = Date.now();
      if (!member.running) {
        failures = 0;
        this.set(member, { ready: false });
      } else if ((await member.restCall('/readiness', { timeoutMs: this.readiness.timeoutSeconds * 1000 })).status === 200) {
        failures = 0;
        this.set(member, { ready: true });
      } else if (++failures >= this.readiness.failureThreshold) {
        this.set(member, { ready: false });
      }
      // The next probe a period after this one started; stop() need not wait a whole period.
      const end = startedAt + this.readiness.periodSeconds * 1000;
      while (this.running && Date.now() < end) await sleep(Math.min(200, end - Date.now()));
    }
  }
}
