#!/usr/bin/env node
import * as fs from 'fs';
import { StatusCheck } from './status-check';
import { STATUS_USAGE_EXIT_CODE } from './status-render';
import { StatusCheckOptions, StatusCredentials } from './status-types';
import { SslMode } from '../core/tls';

const USAGE = 'usage: cdk8s-postgres-status --manifests <dir|file> [--endpoints endpoints.json] [--endpoint <target>=<host:port> ...] [--context <kube context>] [--kubectl kubectl] '
  + '[--credentials credentials.json] [--sslmode prefer] [--ca-file ca.crt] [--max-lag-bytes 16777216] [--max-lag-seconds 30] '
  + '[--max-archive-ready 16] [--max-pool-wait-seconds 5] [--timeout 5] [--json]';

/** The environment variables of the login used where credentials.json names none. */
export const CREDENTIAL_VARIABLES = { username: 'CDK8S_POSTGRES_STATUS_USER', password: 'CDK8S_POSTGRES_STATUS_PASSWORD' };

const VALUE_OPTIONS = ['--manifests', '--endpoints', '--endpoint', '--context', '--kubectl', '--credentials', '--sslmode', '--ca-file',
  '--max-lag-bytes', '--max-lag-seconds', '--max-archive-ready', '--max-pool-wait-seconds', '--timeout'];

const NUMBERS: { [option: string]: keyof StatusCheckOptions } = {
  '--max-lag-bytes': 'maxLagBytes', '--max-lag-seconds': 'maxLagSeconds', '--max-archive-ready': 'maxArchiveReady',
  '--max-pool-wait-seconds': 'maxPoolWaitSeconds', '--timeout': 'timeoutSeconds',
};

/** The parsed command line: where the manifests are, the check's options, the output format. */
export interface StatusCliArguments {
  readonly manifests: string;
  readonly options: StatusCheckOptions;
  readonly json: boolean;
}

function usageError(message: string): Error {
  return new Error(`cdk8s-postgres-status: ${message}`);
}

/** A JSON object file; its parse error is not repeated, since a credentials file's text must never reach the output. */
function jsonFile(option: string, file: string): { [key: string]: any } {
  if (!fs.existsSync(file)) throw usageError(`${option} ${file} does not exist`);
  let value: unknown;
  try {
    value = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    throw usageError(`${option} ${file} is not valid JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw usageError(`${option} ${file} is not a JSON object`);
  return value as { [key: string]: any };
}

function credentials(where: string, value: any): StatusCredentials {
  if (typeof value?.username !== 'string' || typeof value?.password !== 'string' || (value.database !== undefined && typeof value.database !== 'string')) {
    throw usageError(`${where} needs "username" and "password" strings (and optionally "database")`);
  }
  return { username: value.username, password: value.password, database: value.database };
}

/**
 * Parses the arguments and reads the endpoint and credentials files; throws one line naming the
 * option and the fix. `env` gives the default login (CDK8S_POSTGRES_STATUS_USER and _PASSWORD).
 */
export function parseStatusArguments(argv: string[], env: NodeJS.ProcessEnv = {}): StatusCliArguments {
  const values: { [option: string]: string } = {};
  const endpoints: { [target: string]: string } = {};
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const option = argv[i];
    if (option === '--json') { json = true; continue; }
    if (!VALUE_OPTIONS.includes(option)) throw usageError(`unknown option "${option}"; ${USAGE}`);
    const value = argv[++i];
    if (value === undefined || value.startsWith('--')) throw usageError(`${option} needs a value; ${USAGE}`);
    if (option === '--endpoint') {
      const [target, address] = value.split(/=(.*)/s);
      if (!address) throw usageError(`--endpoint "${value}" is not <target>=<host:port>, such as pod/db-primary-0=127.0.0.1:5432`);
      endpoints[target] = address;
    } else {values[option] = value;}
  }
  if (!values['--manifests']) throw usageError('--manifests is missing: give the directory cdk8s synth wrote (or one YAML file)');
  const fromFile = values['--endpoints'] ? jsonFile('--endpoints', values['--endpoints']) : {};
  for (const [target, address] of Object.entries(fromFile)) {
    if (typeof address !== 'string') throw usageError(`--endpoints: the value of ${target} is not a "host:port" string`);
  }
  const byComponent = values['--credentials'] ? jsonFile('--credentials', values['--credentials']) : {};
  const { '*': fileDefault, ...perComponent } = byComponent;
  const envUser = env[CREDENTIAL_VARIABLES.username];
  const envPassword = env[CREDENTIAL_VARIABLES.password];
  if ((envUser === undefined) !== (envPassword === undefined)) {
    throw usageError(`set both ${CREDENTIAL_VARIABLES.username} and ${CREDENTIAL_VARIABLES.password}, or neither`);
  }
  const defaultCredentials = envUser !== undefined ? { username: envUser, password: envPassword! }
    : fileDefault !== undefined ? credentials('--credentials: "*"', fileDefault) : undefined;
  const sslMode = values['--sslmode'];
  if (sslMode !== undefined && !(Object.values(SslMode) as string[]).includes(sslMode)) {
    throw usageError(`--sslmode "${sslMode}" is not one of ${Object.values(SslMode).join(', ')}`);
  }
  const thresholds: { [key: string]: number } = {};
  for (const [option, key] of Object.entries(NUMBERS)) {
    if (values[option] === undefined) continue;
    const value = Number(values[option]);
    if (!Number.isFinite(value) || value < 0 || (option === '--timeout' && value === 0)) throw usageError(`${option} "${values[option]}" is not a non-negative number`);
    thresholds[key] = value;
  }
  return {
    manifests: values['--manifests'],
    json,
    options: {
      endpoints: { ...fromFile, ...endpoints },
      kubeContext: values['--context'],
      kubectl: values['--kubectl'],
      credentials: Object.fromEntries(Object.entries(perComponent).map(([component, value]) => [component, credentials(`--credentials: "${component}"`, value)])),
      defaultCredentials,
      sslMode: sslMode as SslMode | undefined,
      caFile: values['--ca-file'],
      ...thresholds,
    },
  };
}

/** Runs the check; resolves to the exit code. */
export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    const args = parseStatusArguments(argv, env);
    const report = await StatusCheck.checkDirectory(args.manifests, args.options);
    process.stdout.write(`${args.json ? report.json : report.table}\n`);
    return report.exitCode;
  } catch (error) {
    const message = (error as Error).message;
    process.stderr.write(`${message.startsWith('cdk8s-postgres-status') ? '' : 'cdk8s-postgres-status: '}${message}\n`);
    return STATUS_USAGE_EXIT_CODE;
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
}
