import { ChildProcess, spawn } from 'child_process';
import { KubeObject } from '../testing/change-impact/manifests';

/** What `kubectl port-forward` needs for one endpoint key: the resource, its namespace and its remote port. */
export interface ForwardSpec {
  readonly target: string;
  readonly resource: string;
  readonly namespace?: string;
  readonly remotePort: number;
}

/** Forwarded endpoints, the targets kubectl could not forward (with its message), and how to stop the forwards. */
export interface Forwards {
  readonly endpoints: { [target: string]: string };
  readonly failures: { [target: string]: string };
  stop(): void;
}

const portNamed = (ports: any[] | undefined, name: string, field: 'containerPort' | 'port'): number | undefined =>
  (ports ?? []).find((p) => p.name === name)?.[field];

/**
 * The forward of each target: a pod's container ports `postgres` and `metrics` (from its
 * StatefulSet's template), a Service's ports of those names.
 */
export function forwardSpecs(objects: KubeObject[], targets: string[]): ForwardSpec[] {
  return targets.flatMap((target): ForwardSpec[] => {
    const [resource, portName = 'postgres'] = target.split(':');
    const [kind, name] = resource.split('/');
    if (kind === 'service') {
      const service = objects.find((o) => o.kind === 'Service' && o.metadata?.name === name);
      const port = portNamed(service?.spec?.ports, portName, 'port');
      return port === undefined ? [] : [{ target, resource, namespace: service!.metadata.namespace, remotePort: port }];
    }
    const set = objects.find((o) => o.kind === 'StatefulSet' && name.startsWith(`${o.metadata?.name}-`) && /^\d+$/.test(name.slice(o.metadata.name.length + 1)));
    const port = (set?.spec?.template?.spec?.containers ?? []).map((c: any) => portNamed(c.ports, portName, 'containerPort')).find((p: number | undefined) => p !== undefined);
    return port === undefined ? [] : [{ target, resource, namespace: set!.metadata.namespace, remotePort: port }];
  });
}

/** One `kubectl port-forward` to a local port kubectl picks, resolved with it once kubectl prints it. */
function forward(kubectl: string, context: string, spec: ForwardSpec, timeoutMs: number): { child: ChildProcess; local: Promise<number> } {
  const args = ['--context', context, ...(spec.namespace ? ['--namespace', spec.namespace] : []), 'port-forward', spec.resource, `:${spec.remotePort}`];
  const child = spawn(kubectl, args, { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
  const local = new Promise<number>((resolve, reject) => {
    let output = '';
    let errors = '';
    const timer = setTimeout(() => reject(new Error(`kubectl port-forward ${spec.resource} printed no local port within ${timeoutMs} ms`)), timeoutMs);
    const settle = (outcome: () => void) => { clearTimeout(timer); outcome(); };
    child.stdout!.on('data', (chunk) => {
      output += String(chunk);
      const port = /Forwarding from 127\.0\.0\.1:(\d+) ->/.exec(output)?.[1];
      if (port) settle(() => resolve(Number(port)));
    });
    child.stderr!.on('data', (chunk) => { errors += String(chunk); });
    child.on('error', (error) => settle(() => reject(error)));
    child.on('exit', (code) => settle(() => reject(new Error(`kubectl port-forward ${spec.resource} exited ${code}: ${errors.trim().split('\n')[0] ?? ''}`))));
  });
  return { child, local };
}

/** Forwards every spec through `kubectl --context <context> port-forward`, all at once. */
export async function portForwards(specs: ForwardSpec[], context: string, kubectl: string, timeoutMs: number): Promise<Forwards> {
  const started = specs.map((spec) => ({ spec, ...forward(kubectl, context, spec, timeoutMs) }));
  const endpoints: { [target: string]: string } = {};
  const failures: { [target: string]: string } = {};
  await Promise.all(started.map(async ({ spec, local }) => {
    try {
      endpoints[spec.target] = `127.0.0.1:${await local}`;
    } catch (error) {
      failures[spec.target] = (error as Error).message;
    }
  }));
  return { endpoints, failures, stop: () => started.forEach(({ child }) => child.exitCode === null && child.kill()) };
}
