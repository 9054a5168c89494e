import { spawnSync } from 'child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { findObject } from './synth';

/** Secret values by Secret name and key. */
export type SecretValues = { [secretName: string]: { [key: string]: string } };

export function requirePatroni(): void {
  if (!existsSync('/usr/bin/patroni')) throw new Error('patroni is not installed at /usr/bin/patroni (apt-get install patroni): CI installs Debian\'s 3.0.2');
}

const podSpec = (objects: any[], name: string) => findObject(objects, 'StatefulSet', name).spec.template.spec;
const server = (objects: any[], name: string) => podSpec(objects, name).containers.find((c: any) => c.name === 'postgres');

/** The postgres container's environment for pod `<name>-0`, `$(VAR)` resolved, Secrets replaced by made-up values. */
export function patroniPodEnvironment(objects: any[], name: string, namespace: string): { [variable: string]: string } {
  const env: { [variable: string]: string } = { PATH: '/usr/bin:/bin' };
  for (const { name: variable, value, valueFrom } of server(objects, name).env) {
    if (value !== undefined) env[variable] = value.replace(/\$\((\w+)\)/g, (_: string, ref: string) => env[ref]);
    else if (valueFrom.fieldRef) env[variable] = ({ 'metadata.name': `${name}-0`, 'metadata.namespace': namespace } as any)[valueFrom.fieldRef.fieldPath];
    else env[variable] = `${valueFrom.secretKeyRef.name}-${valueFrom.secretKeyRef.key}`;
  }
  return env;
}

/**
 * Runs the rendered patroni-start.sh of cluster `name` as the pod would: the secrets volume's
 * files from `values` (made up where missing, or exactly `files`), patroni.yml, and a `patroni`
 * on PATH that runs python3 with `args` and the directory the script hands it. Returns the run
 * and the modes of the directory's files.
 */
export function startPatroni(objects: any[], name: string, namespace: string, args: string[],
  values: SecretValues = {}, files?: { [path: string]: string }) {
  requirePatroni();
  const dir = mkdtempSync(join(tmpdir(), 'patroni-start-'));
  try {
    const write = (path: string, text: string, mode = 0o644) => {
      mkdirSync(join(dir, path, '..'), { recursive: true });
      writeFileSync(join(dir, path), text, { mode });
    };
    const sources = podSpec(objects, name).volumes.find((v: any) => v.name === 'secrets').projected.sources;
    const secretFiles = files ?? Object.fromEntries(sources.flatMap(({ secret }: any) => secret.items
      .map(({ key, path }: any) => [path, values[secret.name]?.[key] ?? `${secret.name}-${key}`])));
    for (const [path, text] of Object.entries(secretFiles)) write(`secrets/${path}`, text, 0o440);
    write('config/patroni.yml', findObject(objects, 'ConfigMap', `${name}-patroni`).data['patroni.yml']);
    // Without the settings agent's launch: the agent needs the pod's paths and a Patroni that
    // stays up (test/e2e/ha-settings.e2e.test.ts runs it), and would hold the output pipes open.
    const script = findObject(objects, 'ConfigMap', `${name}-scripts`).data['patroni-start.sh'] as string;
    const withoutAgent = script.replace(/^# The settings agent .*\n(?:.*\n)*?\) < \/dev\/null &\n/m, '');
    if (withoutAgent === script) throw new Error('patroni-start.sh no longer starts the settings agent as this helper expects');
    write('patroni-start.sh', withoutAgent, 0o755);
    write('bin/patroni', `#!/bin/sh\nexec /usr/bin/python3 ${args.map((arg) => `'${arg.replace(/'/g, "'\\''")}'`).join(' ')} "$@"\n`, 0o755);
    mkdirSync(join(dir, 'run'), { mode: 0o700 });
    const env = {
      ...patroniPodEnvironment(objects, name, namespace), PATH: `${join(dir, 'bin')}:/usr/bin:/bin`,
      CREDENTIALS_DIR: join(dir, 'secrets'), PATRONICTL_CONFIG_FILE: join(dir, 'run'),
    };
    const result = spawnSync('bash', [join(dir, 'patroni-start.sh'), join(dir, 'config/patroni.yml')], { env, encoding: 'utf8' });
    const modes = Object.fromEntries(readdirSync(join(dir, 'run')).map((file) => [file, lstatSync(join(dir, 'run', file))])
      .map(([file, stat]: any) => [file, stat.isSymbolicLink() ? 'link' : (stat.mode % 0o1000).toString(8)]));
    return { status: result.status, stdout: result.stdout, output: `${result.stdout}${result.stderr}`, modes };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `patroni --validate-config` on the directory patroni-start.sh hands Patroni; the script's own log line left out. */
export function validatePatroniConfig(objects: any[], name: string, namespace: string, values: SecretValues = {}) {
  const { status, output } = startPatroni(objects, name, namespace, ['/usr/bin/patroni', '--validate-config'], values);
  return { status, output: output.replace(/^\S+ patroni-start: credentials written; starting Patroni\n/, '') };
}
