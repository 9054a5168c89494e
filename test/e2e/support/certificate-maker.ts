import { mkdirSync } from 'fs';
import { giveToDaemonUser, runOk } from './postgres-bin';

/**
 * Runs a pod's `certificate` init container, if it has one, as the kubelet would: its command
 * and environment, with the volume it fills at the path where the daemon's container mounts it
 * (`localize` turns that pod path into the local one). Returns the local directory, if any.
 */
export function makePodCertificate(pod: any, localize: (podPath: string) => string): string | undefined {
  const init = (pod.initContainers ?? []).find((container: any) => container.name === 'certificate');
  if (!init) return undefined;
  const volumeName = init.volumeMounts[0].name;
  const daemonMount = pod.containers.flatMap((container: any) => container.volumeMounts ?? []).find((mount: any) => mount.name === volumeName);
  const dir = localize(daemonMount.mountPath);
  mkdirSync(dir, { recursive: true });
  giveToDaemonUser(dir);
  const env: { [name: string]: string } = Object.fromEntries(init.env.map((variable: any) => [variable.name, variable.value]));
  runOk(init.command[0], init.command.slice(1), { ...env, CERTIFICATE_DIR: dir });
  return dir;
}
