import { createHash } from 'crypto';
import { IConstruct } from 'constructs';
import { REPLICATION_GROUP } from './cluster-layout';
import { DatabaseModel, renderDatabase, renderDatabaseDrop, renderDatabaseExtensions } from './databases';
import { NamedRoleModel, renderNamedRole, renderNamedRoleGrants, renderRoleDrop, requireNotAbsent, ROLE_NAME } from './named-roles';
import { renderTablespaceSql, TablespaceModel } from './tablespaces';
import { PostgresCredentials, ResolvedCredentials, resolveCredentials } from '../core/credentials';
import { Ensure } from '../core/ensure';
import { propError } from '../core/errors';
import { PASSWORD_LOOKUP_FUNCTION } from '../core/password-lookup';
import { RoleAttributes, roleAttributeOptions } from '../core/role-attributes';

/** A role the primary's bootstrap keeps in step with a mounted Secret. */
export interface RoleModel {
  /** Subdirectory of the secrets volume holding `username` and `password`. */
  readonly secretDir: string;
  readonly credentials: ResolvedCredentials;
  /** CREATE/ALTER ROLE options besides the password: LOGIN and the library's own or the declared attributes. */
  readonly options: string;
  readonly memberOf: readonly string[];
  /** Functions the role may execute besides PUBLIC's. */
  readonly functions?: readonly string[];
  /** Views the role may read besides PUBLIC's. */
  readonly views?: readonly string[];
}

/** Every role and database the primary provisions, as the renderers take them at synth. */
export interface ProvisioningModel {
  /** The superuser and the replication role first, then the others by their Secret. */
  readonly roles: readonly RoleModel[];
  readonly databases: readonly DatabaseModel[];
  /** Roles declared by name: created before, or dropped after, the roles of Secrets and the databases. */
  readonly namedRoles: readonly NamedRoleModel[];
  /** Created (or dropped) after the roles, before the databases. */
  readonly tablespaces: readonly TablespaceModel[];
  /** Roles allowed to call the password lookup function. */
  readonly passwordLookupRoles: readonly RoleModel[];
}

/** Where a role's Secret and memberships come from in the props or a method call, for error messages. */
export interface RoleSource {
  /** The prop of the credentials, such as `roles[0].credentials` or `addPasswordLookup(authUser)`. */
  readonly credentials: string;
  /** The prop of the memberships, when there are any. */
  readonly memberOf?: string;
  /** The prop of the attributes, when there are any. */
  readonly attributes?: string;
}

/**
 * What pg_rewind needs of a role that is not a superuser (PostgreSQL 11 and later): the HA mode
 * rewinds with the replication role, since pg_hba.conf rejects the superuser over the network.
 */
const REWIND_FUNCTIONS = [
  'pg_catalog.pg_ls_dir(text, boolean, boolean)',
  'pg_catalog.pg_stat_file(text, boolean)',
  'pg_catalog.pg_read_binary_file(text)',
  'pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)',
];

/**
 * What the plain mode's settings agent does as the replication role (which already reads every
 * page through a base backup and drops slots): reload, and read the errors of the files it
 * reloaded, which only superusers may by default.
 */
const SETTINGS_AGENT_GRANTS = {
  functions: ['pg_catalog.pg_reload_conf()', 'pg_catalog.pg_show_all_file_settings()', 'pg_catalog.pg_hba_file_rules()'],
  views: ['pg_catalog.pg_file_settings', 'pg_catalog.pg_hba_file_rules'],
};

/** Where the replication role's Secret is mounted: the one Secret replicas need. */
export const REPLICATION_SECRET_DIR = 'replication';

/**
 * The roles of a cluster as constructs add them. Roles are added while the app is built and
 * rendered at synth, so a pooler or exporter added after the cluster still gets its role: the
 * construct keeps this registry and hands the renderers its value, `model()`, at synth.
 */
export class Provisioning {
  /** The roles in the order added; a role given more memberships is replaced, never changed. */
  private readonly added: RoleModel[] = [];
  /** Secrets that may hold only their one role, such as a metrics exporter's. */
  private readonly exclusiveSecrets = new Set<string>();
  /** The secret directories of the roles allowed to call the password lookup function. */
  private readonly passwordLookupDirs: string[] = [];
  /** The secret directories of the roles whose attributes the props declare, which a second declaration may not change. */
  private readonly declaredAttributes = new Set<string>();
  private tablespaces: readonly TablespaceModel[] = [];

  /** @param rewind whether the replication role runs pg_rewind (the HA mode), or else the plain mode's settings agent */
  constructor(private readonly scope: IConstruct, superuser: ResolvedCredentials, replication: ResolvedCredentials,
    private readonly databases: readonly DatabaseModel[], private readonly namedRoles: readonly NamedRoleModel[], rewind: boolean) {
    this.added.push({ secretDir: 'superuser', credentials: superuser, options: 'SUPERUSER LOGIN', memberOf: [] });
    this.added.push({
      secretDir: REPLICATION_SECRET_DIR, credentials: replication, options: 'LOGIN REPLICATION', memberOf: [REPLICATION_GROUP],
      ...(rewind ? { functions: REWIND_FUNCTIONS } : SETTINGS_AGENT_GRANTS),
    });
    databases.forEach((database, index) => {
      if (database.owner) this.addRole(database.owner, [], { credentials: `databases[${index}].owner` });
    });
  }

  /**
   * What is provisioned now, as a value: the superuser and the replication role first, then the
   * others by their Secret, so the order constructs were declared in never changes the rendered files.
   */
  public model(): ProvisioningModel {
    const [superuser, replication, ...others] = this.added;
    const roles = [superuser, replication, ...[...others].sort((a, b) => a.secretDir.localeCompare(b.secretDir))];
    return {
      roles,
      databases: this.databases,
      namedRoles: this.namedRoles,
      tablespaces: this.tablespaces,
      passwordLookupRoles: this.passwordLookupDirs.map((dir) => this.added.find((role) => role.secretDir === dir)!),
    };
  }

  /**
   * Adds a login role, or more memberships to a role already added from the same Secret keys.
   * An exclusive role's Secret may hold no other role, before or after. Attributes are declared
   * once per role: a role added again without them keeps them.
   */
  public addRole(credentials: PostgresCredentials, memberOf: string[], source: RoleSource, exclusive = false,
    attributes?: RoleAttributes): RoleModel {
    const resolved = resolveCredentials(this.scope, source.credentials, credentials);
    const shared = this.added.some((role) => role.credentials.secretName === resolved.secretName);
    if (this.exclusiveSecrets.has(resolved.secretName) || (exclusive && shared)) {
      throw propError(this.scope, `${source.credentials}.secretName`, resolved.secretName,
        exclusive ? 'already holds another role of the cluster, which would gain this role\'s rights'
          : 'belongs to a role that must keep its Secret to itself (a metrics exporter\'s)',
        'give each role a Secret of its own');
    }
    if (exclusive) this.exclusiveSecrets.add(resolved.secretName);
    for (const role of memberOf) {
      if (!ROLE_NAME.test(role)) {
        throw propError(this.scope, source.memberOf ?? 'memberOf', role, 'is not a plain role name',
          'use lower-case letters, digits and "_", such as "pg_monitor"');
      }
      requireNotAbsent(this.scope, this.namedRoles, source.memberOf ?? 'memberOf', role);
    }
    const attributesProp = source.attributes ?? 'attributes';
    const options = attributes && `LOGIN ${roleAttributeOptions(this.scope, attributesProp, attributes)}`;
    const existingIndex = this.added.findIndex((role) => sameSecret(role.credentials, resolved));
    if (existingIndex >= 0) {
      const existing = this.added[existingIndex];
      if (options && (existingIndex < 2 || (this.declaredAttributes.has(existing.secretDir) && existing.options !== options))) {
        throw propError(this.scope, attributesProp, attributes, existingIndex < 2
          ? 'are declared for the superuser\'s or the replication role\'s Secret, whose attributes the cluster sets'
          : 'differ from the attributes declared earlier for the role of the same Secret', 'declare a role\'s attributes once, on a role of its own Secret');
      }
      if (options) this.declaredAttributes.add(existing.secretDir);
      const merged = {
        ...existing,
        options: options ?? existing.options,
        memberOf: [...existing.memberOf, ...memberOf.filter((role) => !existing.memberOf.includes(role))].sort(),
      };
      this.added[existingIndex] = merged;
      return merged;
    }
    const secretDir = roleSecretDir(resolved);
    if (options) this.declaredAttributes.add(secretDir);
    const added = {
      secretDir, credentials: resolved, options: options ?? `LOGIN ${roleAttributeOptions(this.scope, attributesProp)}`, memberOf: [...memberOf].sort(),
    };
    this.added.push(added);
    return added;
  }

  /** The tablespaces the primary keeps in step; their owners become login roles kept in step with their Secrets. */
  public withTablespaces(tablespaces: readonly TablespaceModel[]): this {
    tablespaces.forEach((tablespace, index) => {
      if (tablespace.owner) this.addRole(tablespace.owner, [], { credentials: `tablespaces[${index}].owner` });
    });
    this.tablespaces = tablespaces;
    return this;
  }

  /** Lets the role of these credentials call the password lookup function in every database. */
  public addPasswordLookup(credentials: PostgresCredentials, prop: string): void {
    const role = this.addRole(credentials, [], { credentials: prop });
    if (!this.passwordLookupDirs.includes(role.secretDir)) this.passwordLookupDirs.push(role.secretDir);
  }
}

/** The role provisioned for a database's owner: the superuser when it names none. */
function ownerOf(provisioning: ProvisioningModel, database: DatabaseModel): RoleModel {
  return database.owner ? roleOf(provisioning, database.owner) : provisioning.roles[0];
}

/** The role provisioned from these credentials. */
function roleOf(provisioning: ProvisioningModel, credentials: ResolvedCredentials): RoleModel {
  return provisioning.roles.find((role) => sameSecret(role.credentials, credentials))!;
}

/** A role's directory in the secrets volume, named after its Secret: stable whatever the order roles are added in. */
function roleSecretDir(credentials: ResolvedCredentials): string {
  const digest = createHash('sha256').update(`${credentials.secretName}\0${credentials.usernameKey}\0${credentials.passwordKey}`).digest('hex');
  return `role-${credentials.secretName}-${digest.slice(0, 8)}`;
}

function sameSecret(a: ResolvedCredentials, b: ResolvedCredentials): boolean {
  return a.secretName === b.secretName && a.usernameKey === b.usernameKey && a.passwordKey === b.passwordKey;
}

/**
 * Session settings of the psql that runs the provisioning SQL, for its PGOPTIONS (every
 * connection, \connect's too, starts with them). ALTER ROLE ... PASSWORD reaches the server as
 * text, and the server settings could log it: a client's settings override postgresql.conf,
 * ALTER SYSTEM and ALTER ROLE/DATABASE ... SET, and the superuser may set each of these.
 */
const PROVISIONING_SESSION_SETTINGS: { readonly [parameter: string]: string } = {
  // The statement logs: every statement, by duration, by sample, by sampled transaction.
  'log_statement': 'none',
  'log_min_duration_statement': '-1',
  'log_min_duration_sample': '-1',
  'log_transaction_sample_rate': '0',
  // The STATEMENT line under any message, a failing ALTER ROLE's error included.
  'log_min_error_statement': 'panic',
  // Parse trees and plans, which hold the literals.
  'debug_print_parse': 'off',
  'debug_print_rewritten': 'off',
  'debug_print_plan': 'off',
  // pg_stat_activity.query, which also reaches the log in a deadlock report and in the
  // postmaster's "failed process was running" after a crash.
  'track_activities': 'off',
  // pg_stat_statements keeps utility statements' text (track_utility); none keeps nothing.
  // Harmless when the module is not loaded: the setting is then a placeholder.
  'pg_stat_statements.track': 'none',
};

/** The provisioning session's table of the role names the Secrets hold. */
const SECRET_ROLES = 'pg_temp.secret_roles';

/** PGOPTIONS for the provisioning psql: the session settings, as `-c name=value` options. */
export const PROVISIONING_PGOPTIONS = Object.entries(PROVISIONING_SESSION_SETTINGS).map(([name, value]) => `-c ${name}=${value}`).join(' ');

/**
 * The SQL the primary runs at every start, through psql over a private socket. psql reads role
 * names and passwords from the mounted Secrets with backquoted `cat` and quotes them itself
 * (:'var' and :"var"), so no password is in the script or argv; run with PROVISIONING_PGOPTIONS,
 * no statement reaches a log. Every statement is idempotent: a restart after a Secret changed
 * sets the new password, and the declared roles, databases and extensions are brought to their
 * declared state. What cannot be done safely (dropping a role that owns objects, a database in
 * use, an extension the image lacks) is a WARNING in the log, and the rest goes on.
 *
 * The order: named roles, then the roles of Secrets (which may be members of named roles), the
 * named roles' memberships, tablespaces, databases, then the roles to drop (once the databases
 * and tablespaces they owned are gone), and last each database's extensions.
 */
export function renderProvisioningSql(provisioning: ProvisioningModel): string {
  const readRole = (role: RoleModel) => [
    `\\set role_name \`cat "$CREDENTIALS_DIR/${role.secretDir}/username"\``,
    `\\set role_password \`cat "$CREDENTIALS_DIR/${role.secretDir}/password"\``,
  ];
  const present = provisioning.namedRoles.filter((role) => role.ensure === Ensure.PRESENT);
  const absent = provisioning.namedRoles.filter((role) => role.ensure === Ensure.ABSENT);
  const lines = [
    `SELECT 'CREATE ROLE ${REPLICATION_GROUP} NOLOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${REPLICATION_GROUP}') \\gexec`,
    ...present.flatMap(renderNamedRole),
    // The names the Secrets hold, which no absent role may drop.
    ...(absent.length > 0 ? [`CREATE TEMPORARY TABLE ${SECRET_ROLES} (name name);`] : []),
  ];
  for (const role of provisioning.roles) {
    lines.push(
      ...readRole(role),
      ...(absent.length > 0 ? [`INSERT INTO ${SECRET_ROLES} VALUES (:'role_name');`] : []),
      "SELECT format('CREATE ROLE %I', :'role_name') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role_name') \\gexec",
      `ALTER ROLE :"role_name" WITH ${role.options} PASSWORD :'role_password';`,
      ...role.memberOf.map((group) => `GRANT ${group} TO :"role_name";`),
      ...(role.functions ?? []).map((fn) => `GRANT EXECUTE ON FUNCTION ${fn} TO :"role_name";`),
      ...(role.views ?? []).map((view) => `GRANT SELECT ON ${view} TO :"role_name";`),
    );
  }
  lines.push(...present.flatMap(renderNamedRoleGrants));
  lines.push(...renderTablespaceSql(provisioning.tablespaces, (owner) => roleOf(provisioning, owner).secretDir));
  const existing = provisioning.databases.filter((database) => database.ensure === Ensure.PRESENT);
  for (const database of existing.filter((d) => !d.builtIn)) {
    lines.push(`\\set owner \`cat "$CREDENTIALS_DIR/${ownerOf(provisioning, database).secretDir}/username"\``, ...renderDatabase(database));
  }
  lines.push(...provisioning.databases.filter((database) => database.ensure === Ensure.ABSENT).flatMap(renderDatabaseDrop));
  lines.push(...absent.map((role) => renderRoleDrop(role, SECRET_ROLES)));
  lines.push(...existing.flatMap(renderDatabaseExtensions));
  if (provisioning.passwordLookupRoles.length > 0) {
    // PgBouncer 1.18 has no auth_dbname: the function must exist in every database it routes
    // to. template1 comes first, so databases created later inherit it.
    const names = new Set(['template1', 'postgres', ...existing.map((d) => d.name)]);
    for (const database of names) {
      lines.push(`\\connect ${database}`, ...renderPasswordLookup(provisioning.passwordLookupRoles, readRole));
    }
  }
  return lines.join('\n');
}

function renderPasswordLookup(roles: readonly RoleModel[], readRole: (role: RoleModel) => string[]): string[] {
  const [schema] = PASSWORD_LOOKUP_FUNCTION.split('.');
  return [
    `CREATE SCHEMA IF NOT EXISTS ${schema};`,
    `REVOKE ALL ON SCHEMA ${schema} FROM PUBLIC;`,
    // SECURITY DEFINER reads pg_shadow for the caller; superusers are never handed out, so a
    // pooler cannot log anyone in as one.
    `CREATE OR REPLACE FUNCTION ${PASSWORD_LOOKUP_FUNCTION}(p_usename text) RETURNS TABLE (usename name, passwd text)`,
    '  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog',
    '  AS $$ SELECT usename, passwd FROM pg_shadow WHERE usename = p_usename AND NOT usesuper $$;',
    `REVOKE ALL ON FUNCTION ${PASSWORD_LOOKUP_FUNCTION}(text) FROM PUBLIC;`,
    ...roles.flatMap((role) => [
      ...readRole(role),
      `GRANT USAGE ON SCHEMA ${schema} TO :"role_name";`,
      `GRANT EXECUTE ON FUNCTION ${PASSWORD_LOOKUP_FUNCTION}(text) TO :"role_name";`,
    ]),
  ];
}
