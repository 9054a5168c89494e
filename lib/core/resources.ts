import { IConstruct } from 'constructs';
import { propError } from './errors';
import { k8s } from './kube';
import { parseQuantity } from './quantity';

/** CPU and memory of a container, as Kubernetes quantities (`'250m'`, `'1Gi'`). */
export interface ContainerResources {
  /**
   * CPU request.
   * @default - the component's default
   */
  readonly cpuRequest?: string;
  /**
   * CPU limit.
   * @default - the component's default
   */
  readonly cpuLimit?: string;
  /**
   * Memory request.
   * @default - the memory limit, so the kernel does not reclaim the container's memory first
   */
  readonly memoryRequest?: string;
  /**
   * Memory limit.
   * @default - the component's default
   */
  readonly memoryLimit?: string;
}

/** Resources with every default applied, validated. */
export interface ResolvedResources {
  readonly cpuRequest: string;
  readonly cpuLimit: string;
  readonly memoryRequest: string;
  readonly memoryLimit: string;
  readonly memoryLimitBytes: number;
}

/** Applies a component's defaults and checks quantities and request <= limit. */
export function resolveResources(scope: IConstruct, given: ContainerResources | undefined,
  defaults: { cpuRequest: string; cpuLimit: string; memoryLimit: string }): ResolvedResources {
  const memoryLimit = given?.memoryLimit ?? defaults.memoryLimit;
  // The limit first: an unset request defaults to it, and its error must name the limit.
  const memoryLimitBytes = parseQuantity(scope, 'resources.memoryLimit', memoryLimit);
  const resources = {
    cpuRequest: given?.cpuRequest ?? defaults.cpuRequest,
    cpuLimit: given?.cpuLimit ?? defaults.cpuLimit,
    memoryRequest: given?.memoryRequest ?? memoryLimit,
    memoryLimit,
  };
  for (const [request, limit] of [['cpuRequest', 'cpuLimit'], ['memoryRequest', 'memoryLimit']] as const) {
    const requested = parseQuantity(scope, `resources.${request}`, resources[request]);
    if (requested > parseQuantity(scope, `resources.${limit}`, resources[limit])) {
      throw propError(scope, `resources.${request}`, resources[request], `is more than resources.${limit} ${resources[limit]}`,
        `lower resources.${request} or raise resources.${limit}`);
    }
  }
  return { ...resources, memoryLimitBytes };
}

/** The Kubernetes form of resolved resources. */
export function resourceRequirements(resources: ResolvedResources): k8s.ResourceRequirements {
  return {
    requests: { cpu: k8s.Quantity.fromString(resources.cpuRequest), memory: k8s.Quantity.fromString(resources.memoryRequest) },
    limits: { cpu: k8s.Quantity.fromString(resources.cpuLimit), memory: k8s.Quantity.fromString(resources.memoryLimit) },
  };
}
