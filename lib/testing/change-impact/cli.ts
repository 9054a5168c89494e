#!/usr/bin/env node
import * as fs from 'fs';
import { ChangeImpact } from './change-impact';
import { USAGE_EXIT_CODE } from './exit-codes';
import { Acknowledgement } from './report-types';
import { postgresMajors } from '../../core/postgres-versions';

const USAGE = 'usage: cdk8s-postgres-impact --before <dir|file> --after <dir|file> [--allow topology-change,refused-apply,primary-restart,new-secrets] '
  + '[--postgres-major 17] [--json] [--output report.md]';

/** The parsed command line. */
export interface CliArguments {
  readonly before: string;
  readonly after: string;
  readonly allow: Acknowledgement[];
  /** The clusters' postgresVersion, whose parameter contexts classify the settings changes; the library's default major when unset. */
  readonly postgresMajor?: number;
  readonly json: boolean;
  readonly output?: string;
}

function usageError(message: string): Error {
  return new Error(`cdk8s-postgres-impact: ${message}`);
}

function acknowledgements(value: string): Acknowledgement[] {
  const known = Object.values(Acknowledgement) as string[];
  return value.split(',').map((item) => item.trim()).filter(Boolean).map((item) => {
    if (!known.includes(item)) throw usageError(`--allow "${item}" is not a finding to acknowledge; use ${known.join(', ')}`);
    return item as Acknowledgement;
  });
}

function postgresMajor(value: string): number {
  const majors = postgresMajors();
  if (!majors.includes(Number(value))) {
    throw usageError(`--postgres-major "${value}" is not a PostgreSQL major the library supports; use one of ${majors.join(', ')}`);
  }
  return Number(value);
}

/** Parses the arguments; throws one line naming the option and the fix. */
export function parseArguments(argv: string[]): CliArguments {
  const values: { [option: string]: string } = {};
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const option = argv[i];
    if (option === '--json') { json = true; continue; }
    if (!['--before', '--after', '--allow', '--postgres-major', '--output'].includes(option)) throw usageError(`unknown option "${option}"; ${USAGE}`);
    const value = argv[++i];
    if (value === undefined || value.startsWith('--')) throw usageError(`${option} needs a value; ${USAGE}`);
    values[option] = value;
  }
  for (const required of ['--before', '--after']) {
    if (!values[required]) throw usageError(`${required} is missing: give the ${required === '--before' ? 'deployed' : 'newly synthesized'} manifests (a directory or a YAML file)`);
  }
  const major = values['--postgres-major'] !== undefined ? { postgresMajor: postgresMajor(values['--postgres-major']) } : {};
  return { before: values['--before'], after: values['--after'], allow: acknowledgements(values['--allow'] ?? ''), ...major, json, output: values['--output'] };
}

/** Runs the report; returns the exit code. */
export function main(argv: string[]): number {
  let args: CliArguments;
  let text: string;
  let code: number;
  try {
    args = parseArguments(argv);
    const report = ChangeImpact.compareDirectories(args.before, args.after, { allow: args.allow, postgresMajor: args.postgresMajor });
    text = args.json ? report.json : report.markdown;
    code = report.exitCode;
  } catch (error) {
    process.stderr.write(`${(error as Error).message.startsWith('cdk8s-postgres-impact') ? '' : 'cdk8s-postgres-impact: '}${(error as Error).message}\n`);
    return USAGE_EXIT_CODE;
  }
  if (args.output) fs.writeFileSync(args.output, `${text}\n`);
  else process.stdout.write(`${text}\n`);
  return code;
}

if (require.main === module) {
  process.exitCode = main(process.argv.slice(2));
}
