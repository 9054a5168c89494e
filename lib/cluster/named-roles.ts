import { IConstruct } from 'constructs';
import { REPLICATION_GROUP } from './cluster-layout';
import { Ensure } from '../core/ensure';
import { propError } from '../core/errors';
import { RoleAttributes, roleAttributeOptions } from '../core/role-attributes';
import { doBlock, sqlIdentifier, sqlLiteral } from '../core/sql-text';
import { requireEnum } from '../core/validation';

/**
 * A role declared by its name, without a Secret: a group role that login roles are members of,
 * a login role that authenticates without a password (a client certificate), or a role to drop.
 */
export interface PostgresNamedRole {
  /** Role name: lower-case letters, digits and `_`, starting with a letter or `_`, not with `pg_`. */
  readonly name: string;
  /**
   * Whether the role should exist. ABSENT drops it when it owns nothing and holds no privilege in
   * any database; otherwise it is made NOLOGIN and the refusal is logged with the fix.
   * @default Ensure.PRESENT
   */
  readonly ensure?: Ensure;
  /**
   * LOGIN: whether the role may log in. It has no password (PASSWORD NULL), so only through an
   * authentication method that needs none.
   * @default false
   */
  readonly login?: boolean;
  /**
   * Its attributes, set to this state at every start of the primary.
   * @default - every attribute's default: NOCREATEDB NOCREATEROLE NOBYPASSRLS INHERIT, no connection limit, no expiry
   */
  readonly attributes?: RoleAttributes;
  /**
   * Roles it is granted, such as `pg_read_all_data` or another named role.
   * @default - none
   */
  readonly memberOf?: string[];
}

/** A named role as the provisioning renders it. */
export interface NamedRoleModel {
  readonly name: string;
  readonly ensure: Ensure;
  /** ALTER ROLE options: LOGIN or NOLOGIN, then the attributes. */
  readonly options: string;
  readonly memberOf: readonly string[];
}

/** A role name the rendered SQL may embed: no quote, no upper case that an unquoted reference would fold. */
export const ROLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Names CREATE ROLE refuses, or that GRANT reads as something else than a role. */
const RESERVED_ROLE_NAMES = new Set(['public', 'none', 'current_role', 'current_user', 'session_user']);

/** Throws unless `name` is a role name a declaration may create: plain, not reserved, not the library's own group. */
export function requireDeclarableRoleName(scope: IConstruct, prop: string, name: string): void {
  if (typeof name !== 'string' || !ROLE_NAME.test(name)) {
    throw propError(scope, prop, name, 'is not a plain role name', 'use lower-case letters, digits and "_", starting with a letter or "_", at most 63 characters');
  }
  if (name.startsWith('pg_') || RESERVED_ROLE_NAMES.has(name)) {
    throw propError(scope, prop, name, 'is reserved by PostgreSQL', 'choose a name that is not "public", "none", "current_user" and does not start with "pg_"');
  }
  if (name === REPLICATION_GROUP) {
    throw propError(scope, prop, name, 'is the group role the cluster manages for its replication role', 'choose another name');
  }
}

/** The named roles of the props, checked: plain unique names, and no attributes or memberships on one to drop. */
export function resolveNamedRoles(scope: IConstruct, roles: PostgresNamedRole[] | undefined): NamedRoleModel[] {
  const seen = new Set<string>();
  const resolved = (roles ?? []).map((role, index) => {
    const prop = `namedRoles[${index}]`;
    requireDeclarableRoleName(scope, `${prop}.name`, role.name);
    if (seen.has(role.name)) throw propError(scope, `${prop}.name`, role.name, 'is declared twice', 'declare each role once');
    seen.add(role.name);
    const ensure = requireEnum(scope, `${prop}.ensure`, role.ensure ?? Ensure.PRESENT, { Ensure });
    if (ensure === Ensure.ABSENT && (role.login !== undefined || role.attributes !== undefined || (role.memberOf ?? []).length > 0)) {
      throw propError(scope, `${prop}.ensure`, ensure, 'is given with login, attributes or memberOf, which a dropped role has not',
        'remove them, or set ensure to Ensure.PRESENT');
    }
    const memberOf = [...new Set(role.memberOf ?? [])].sort();
    memberOf.forEach((group, groupIndex) => {
      if (!ROLE_NAME.test(group)) {
        throw propError(scope, `${prop}.memberOf[${groupIndex}]`, group, 'is not a plain role name', 'use lower-case letters, digits and "_", such as "pg_monitor"');
      }
      if (group === role.name) throw propError(scope, `${prop}.memberOf[${groupIndex}]`, group, 'is the role itself', 'remove it');
    });
    const login = role.login ?? false;
    return { name: role.name, ensure, options: `${login ? 'LOGIN' : 'NOLOGIN'} ${roleAttributeOptions(scope, `${prop}.attributes`, role.attributes)}`, memberOf };
  });
  resolved.forEach((role, index) => role.memberOf.forEach((group) => requireNotAbsent(scope, resolved, `namedRoles[${index}].memberOf`, group)));
  return resolved;
}

/** Throws when a membership names a role declared absent: the GRANT would fail, or keep it alive. */
export function requireNotAbsent(scope: IConstruct, roles: readonly NamedRoleModel[], prop: string, group: string): void {
  if (roles.some((role) => role.name === group && role.ensure === Ensure.ABSENT)) {
    throw propError(scope, prop, group, 'is a role namedRoles declares absent', 'remove the membership, or keep the role');
  }
}

/** Creates a present named role if missing and sets its attributes; its memberships come later (namedRoleGrants), once every role exists. */
export function renderNamedRole(role: NamedRoleModel): string[] {
  return [
    `SELECT format('CREATE ROLE %I', ${sqlLiteral(role.name)}) WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = ${sqlLiteral(role.name)}) \\gexec`,
    `ALTER ROLE ${sqlIdentifier(role.name)} WITH ${role.options} PASSWORD NULL;`,
  ];
}

export function renderNamedRoleGrants(role: NamedRoleModel): string[] {
  return role.memberOf.map((group) => `GRANT ${sqlIdentifier(group)} TO ${sqlIdentifier(role.name)};`);
}

/**
 * Drops a role declared absent when nothing in any database depends on it (pg_shdepend holds
 * every database's owners and grants); otherwise makes it NOLOGIN, so it can no longer log in,
 * and logs what holds it and the fix. A role a Secret of the cluster names is never dropped:
 * `declaredRoles` is the session's table of those names.
 */
export function renderRoleDrop(role: NamedRoleModel, declaredRoles: string): string {
  const name = sqlLiteral(role.name);
  const refusal = `role "${role.name}" is declared absent but`;
  return doBlock([
    'DECLARE',
    '  holders text;',
    'BEGIN',
    `  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = ${name}) THEN`,
    '    RETURN;',
    '  END IF;',
    `  IF EXISTS (SELECT FROM ${declaredRoles} WHERE name = ${name}) THEN`,
    `    RAISE WARNING ${sqlLiteral(`${refusal} a Secret of the cluster names it: it stays. Remove it from namedRoles, or give that Secret another role`)};`,
    '    RETURN;',
    '  END IF;',
    "  SELECT string_agg(DISTINCT coalesce(d.datname, '(databases and tablespaces it owns or may use)'), ', ') INTO holders",
    '    FROM pg_shdepend s LEFT JOIN pg_database d ON d.oid = s.dbid',
    `    WHERE s.refclassid = 'pg_authid'::regclass AND s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = ${name});`,
    '  IF holders IS NULL THEN',
    '    BEGIN',
    `      EXECUTE format('DROP ROLE %I', ${name});`,
    `      RAISE NOTICE ${sqlLiteral(`role "${role.name}" dropped`)};`,
    '      RETURN;',
    '    EXCEPTION WHEN dependent_objects_still_exist THEN',
    '      GET STACKED DIAGNOSTICS holders = PG_EXCEPTION_DETAIL;',
    '    END;',
    '  END IF;',
    `  EXECUTE format('ALTER ROLE %I NOLOGIN', ${name});`,
    `  RAISE WARNING ${sqlLiteral(`${refusal} objects depend on it in: %. It can no longer log in (NOLOGIN) and is kept. `
      + `To drop it, run REASSIGN OWNED BY "${role.name}" TO <new owner>; DROP OWNED BY "${role.name}"; in each of those databases `
      + '(ALTER DATABASE ... OWNER TO for a database it owns); the next start of the primary drops it')}, holders;`,
    'END',
  ]);
}
