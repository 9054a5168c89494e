import { IConstruct } from 'constructs';
import { propError } from './errors';
import { k8s } from './kube';

/** A container that runs beside a component's daemon in each of its pods, such as a metrics exporter. */
export interface Sidecar {
  /** The container; its name and ports must be free in the pod. */
  readonly container: k8s.Container;
  /**
   * A port the component's Service exposes for the sidecar.
   * @default - none
   */
  readonly servicePort?: k8s.ServicePort;
  /**
   * Annotations for the pod template, such as `prometheus.io/scrape`.
   * @default - none
   */
  readonly podAnnotations?: { [key: string]: string };
  /**
   * Containers run before the pod's own daemon starts, such as one writing a passfile.
   * @default - none
   */
  readonly initContainers?: k8s.Container[];
  /**
   * Volumes the sidecar's containers mount; their names must be free in the pod.
   * @default - none
   */
  readonly volumes?: k8s.Volume[];
}

/**
 * A component's sidecars. Added while the app is built and rendered at synth, so a sidecar
 * declared after the component still lands in its pods; a name or port already taken in the pod
 * or on the Service is refused when the sidecar is added.
 *
 * A component reserves its pods' containers and its Service's ports when it is built, and at
 * synth its typed spec functions take the sidecars' parts with `withContainers`,
 * `withServicePorts` and `withAnnotations`.
 */
export class SidecarSet {
  private readonly sidecars: Sidecar[] = [];
  private readonly pods: k8s.PodSpec[] = [];
  private readonly services: k8s.ServicePort[][] = [];
  private readonly listening: number[] = [];

  constructor(private readonly scope: IConstruct) {}

  /** The pod's containers and init containers, whose names and ports no sidecar may take. */
  public reservePod(spec: k8s.PodSpec): void {
    this.pods.push(spec);
  }

  /**
   * Ports the pod's daemon listens on without declaring a container port, such as one bound to
   * localhost only: a sidecar listening on all addresses could not bind them.
   */
  public reserveListeningPorts(ports: number[]): void {
    this.listening.push(...ports);
  }

  /** The Service's ports, whose numbers and names no sidecar's Service port may take. */
  public reserveServicePorts(ports: k8s.ServicePort[]): void {
    this.services.push(ports);
  }

  /** The pod spec with the sidecars' containers, init containers and volumes after the component's own, at synth. */
  public withContainers(spec: k8s.PodSpec): k8s.PodSpec {
    const initContainers = [...spec.initContainers ?? [], ...this.sidecars.flatMap((s) => s.initContainers ?? [])];
    const volumes = [...spec.volumes ?? [], ...this.sidecars.flatMap((s) => s.volumes ?? [])];
    return {
      ...spec,
      ...(initContainers.length > 0 ? { initContainers } : {}),
      containers: [...spec.containers, ...this.sidecars.map((s) => s.container)],
      ...(volumes.length > 0 ? { volumes } : {}),
    };
  }

  /** The Service's ports with the sidecars' after the component's own, at synth. */
  public withServicePorts(ports: k8s.ServicePort[]): k8s.ServicePort[] {
    return [...ports, ...this.sidecars.flatMap((s) => (s.servicePort ? [s.servicePort] : []))];
  }

  /** The pod template's annotations with the sidecars', at synth. */
  public withAnnotations(own: { [key: string]: string }): { [key: string]: string } {
    return Object.assign({}, ...this.sidecars.map((s) => s.podAnnotations ?? {}), own);
  }

  /** The ports the sidecars' containers listen on. */
  public containerPorts(): number[] {
    return this.sidecars.flatMap((s) => (s.container.ports ?? []).map((port) => port.containerPort));
  }

  public add(sidecar: Sidecar): void {
    const container = sidecar.container;
    const containers = [...this.pods.flatMap((pod) => [...pod.containers, ...(pod.initContainers ?? [])]),
      ...this.sidecars.flatMap((s) => [s.container, ...s.initContainers ?? []])];
    const taken = (what: string, value: unknown, fix: string) =>
      propError(this.scope, `sidecar ${what}`, value, 'is already taken in the pod or on its Service', fix);
    for (const name of [container, ...sidecar.initContainers ?? []].map((c) => c.name)) {
      if (containers.some((other) => other.name === name)) throw taken('container name', name, 'give the sidecar another name; a component takes one exporter');
    }
    const volumes = [...this.pods.flatMap((pod) => pod.volumes ?? []), ...this.sidecars.flatMap((s) => s.volumes ?? [])];
    for (const volume of sidecar.volumes ?? []) {
      if (volumes.some((other) => other.name === volume.name)) throw taken('volume name', volume.name, 'give the sidecar\'s volume another name');
    }
    const containerPorts = containers.flatMap((other) => other.ports ?? []);
    const takenPorts = [...new Set([...containerPorts.map((p) => p.containerPort), ...this.listening])];
    for (const port of container.ports ?? []) {
      if (takenPorts.includes(port.containerPort)) {
        throw taken('port', port.containerPort, `choose another port than ${takenPorts.join(', ')}`);
      }
      if (port.name !== undefined && containerPorts.some((other) => other.name === port.name)) {
        throw taken('port name', port.name, 'choose another port name');
      }
    }
    const servicePorts = [...this.services.flat(), ...this.sidecars.flatMap((s) => (s.servicePort ? [s.servicePort] : []))];
    if (sidecar.servicePort && servicePorts.some((other) => other.port === sidecar.servicePort!.port || other.name === sidecar.servicePort!.name)) {
      throw taken('Service port', sidecar.servicePort.port, `choose another port than ${[...new Set(servicePorts.map((p) => p.port))].join(', ')}`);
    }
    this.sidecars.push(sidecar);
  }
}
