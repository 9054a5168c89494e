import { posix } from 'path';
import { IConstruct } from 'constructs';
import { CLUSTER_PATHS } from './cluster-layout';
import { ClaimTemplate, readWriteOnceClaimSpec } from '../core/claim-template';
import { PostgresCredentials, ResolvedCredentials, resolveCredentials } from '../core/credentials';
import { Ensure } from '../core/ensure';
import { propError } from '../core/errors';
import { k8s } from '../core/kube';
import { validateDnsSubdomain } from '../core/names';
import { volumeMount } from '../core/pod-volumes';
import { parseQuantity } from '../core/quantity';
import { requireEnum } from '../core/validation';

/** A tablespace on a volume of its own in every instance. */
export interface PostgresTablespace {
  /**
   * Tablespace name: lower-case letters, digits and `_`, starting with a letter, at most 48
   * characters; `pg_` is PostgreSQL's. Its volume is `tablespace-<name>` (`_` as `-`).
   */
  readonly name: string;
  /** Size of the tablespace's volume in each instance, such as '50Gi'. */
  readonly size: string;
  /**
   * StorageClass of the tablespace's volume.
   * @default - the data volume's StorageClass
   */
  readonly storageClassName?: string;
  /**
   * Secret of the owning role, a login role kept in step with it like those of `roles`.
   * @default - the superuser
   */
  readonly owner?: PostgresCredentials;
  /**
   * Ensure.ABSENT drops the tablespace at the primary's next start if it holds nothing, and
   * otherwise logs the refusal and keeps it. Keep the entry while the StatefulSets exist:
   * removing it removes a volume claim template, which the API server refuses.
   * @default Ensure.PRESENT
   */
  readonly ensure?: Ensure;
}

/** A tablespace as the renderers take it. */
export interface TablespaceModel {
  readonly name: string;
  readonly size: string;
  readonly storageClassName?: string;
  readonly owner?: ResolvedCredentials;
  readonly ensure: Ensure;
}

/** Lower-case, not `pg_`: a volume name `tablespace-<name>` stays within a DNS label's 63 characters. */
const TABLESPACE_NAME = /^[a-z][a-z0-9_]{0,47}$/;

/** Validates the tablespaces of the props; the data volume's StorageClass is the default. */
export function resolveTablespaces(scope: IConstruct, tablespaces: PostgresTablespace[] | undefined,
  dataStorageClassName?: string): TablespaceModel[] {
  const seen = new Set<string>();
  return (tablespaces ?? []).map((tablespace, index) => {
    const prop = `tablespaces[${index}]`;
    const name = tablespace.name;
    if (typeof name !== 'string' || !TABLESPACE_NAME.test(name)) {
      throw propError(scope, `${prop}.name`, name, 'is not a plain lower-case identifier of at most 48 characters',
        'use lower-case letters, digits and "_", starting with a letter, such as "archive_2024"');
    }
    if (name.startsWith('pg_')) {
      throw propError(scope, `${prop}.name`, name, 'starts with "pg_", which PostgreSQL reserves for its own tablespaces (pg_default, pg_global)',
        'choose a name without the "pg_" prefix');
    }
    if (seen.has(name)) throw propError(scope, `${prop}.name`, name, 'is given twice', 'give each tablespace once');
    seen.add(name);
    parseQuantity(scope, `${prop}.size`, tablespace.size);
    const storageClassName = tablespace.storageClassName ?? dataStorageClassName;
    if (tablespace.storageClassName !== undefined) validateDnsSubdomain(scope, `${prop}.storageClassName`, tablespace.storageClassName, 'StorageClass');
    return {
      name,
      size: tablespace.size,
      ...(storageClassName ? { storageClassName } : {}),
      ...(tablespace.owner ? { owner: resolveCredentials(scope, `${prop}.owner`, tablespace.owner) } : {}),
      ensure: requireEnum(scope, `${prop}.ensure`, tablespace.ensure ?? Ensure.PRESENT, { Ensure }),
    };
  });
}

/** The claim and volume name of a tablespace. */
function volumeName(tablespace: TablespaceModel): string {
  return `tablespace-${tablespace.name.replace(/_/g, '-')}`;
}

/** Where a tablespace's volume is mounted, the same path in every instance. */
export function tablespaceMountPath(tablespace: TablespaceModel): string {
  return posix.join(CLUSTER_PATHS.tablespacesDir, tablespace.name);
}

/**
 * The tablespace's LOCATION: a directory inside its volume, as the data directory is inside
 * the data volume, since PostgreSQL insists on owning it with mode 0700 and a volume's root
 * belongs to root. Replicas replay CREATE TABLESPACE at this path, so it is the same everywhere.
 */
export function tablespaceLocation(tablespace: TablespaceModel): string {
  return posix.join(tablespaceMountPath(tablespace), 'data');
}

/** The claim templates of the tablespaces, with the workload's fixed selector labels. */
export function tablespaceClaims(tablespaces: readonly TablespaceModel[], selector: { [key: string]: string }): ClaimTemplate[] {
  return tablespaces.map((tablespace) => new ClaimTemplate(volumeName(tablespace), selector,
    readWriteOnceClaimSpec(tablespace.size, tablespace.storageClassName)));
}

/** The mounts of the tablespaces' volumes, for every container that reads or writes the data. */
export function tablespaceMounts(tablespaces: readonly TablespaceModel[]): k8s.VolumeMount[] {
  return tablespaces.map((tablespace) => volumeMount(volumeName(tablespace), tablespaceMountPath(tablespace)));
}

/**
 * bash: make_tablespace_dirs, run on every instance before the server starts (a replica
 * replaying CREATE TABLESPACE stops when the directory is missing), and empty_tablespace_dirs,
 * run before a replica clones: pg_basebackup writes each tablespace at the primary's path and
 * needs it empty, and what a replica that lost its data volume left there is stale.
 */
export function tablespaceShellFunctions(tablespaces: readonly TablespaceModel[]): string {
  return `# The tablespaces' directories, inside their volumes (lib/cluster/tablespaces.ts).
tablespace_dirs=(${tablespaces.map((tablespace) => `'${tablespaceLocation(tablespace)}'`).join(' ')})
make_tablespace_dirs() {
  if ((\${#tablespace_dirs[@]} > 0)); then
    mkdir -p -- "\${tablespace_dirs[@]}"
    chmod 0700 -- "\${tablespace_dirs[@]}"
  fi
}
empty_tablespace_dirs() {
  local dir
  for dir in "\${tablespace_dirs[@]}"; do
    find "$dir" -mindepth 1 -delete
  done
}`;
}

/**
 * The SQL that keeps the tablespaces in step, in the provisioning psql (no transaction block,
 * which CREATE and DROP TABLESPACE refuse). `ownerDir` names the secrets directory of an
 * owner's role. An absent tablespace is dropped only when empty: DROP TABLESPACE refuses
 * otherwise, and that refusal is logged with the fix while provisioning goes on.
 */
export function renderTablespaceSql(tablespaces: readonly TablespaceModel[], ownerDir: (owner: ResolvedCredentials) => string): string[] {
  return tablespaces.flatMap((tablespace) => {
    const name = tablespace.name;
    const exists = `EXISTS (SELECT FROM pg_tablespace WHERE spcname = '${name}')`;
    if (tablespace.ensure === Ensure.ABSENT) {
      return [
        '\\set ON_ERROR_STOP 0',
        `SELECT 'DROP TABLESPACE ${name}' WHERE ${exists} \\gexec`,
        '\\set ON_ERROR_STOP 1',
        '\\if :ERROR',
        `\\warn 'tablespace ${name} kept (ensure absent): it still holds objects; move them (ALTER TABLE ... SET TABLESPACE pg_default, ALTER DATABASE ... SET TABLESPACE) or drop them, then restart the primary'`,
        '\\endif',
      ];
    }
    const owner = tablespace.owner
      ? [`\\set owner \`cat "$CREDENTIALS_DIR/${ownerDir(tablespace.owner)}/username"\``]
      : ['SELECT current_user AS owner \\gset'];
    return [
      ...owner,
      `SELECT format('CREATE TABLESPACE ${name} OWNER %I LOCATION %L', :'owner', '${tablespaceLocation(tablespace)}') WHERE NOT ${exists} \\gexec`,
      `ALTER TABLESPACE ${name} OWNER TO :"owner";`,
    ];
  });
}
