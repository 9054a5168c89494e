import { IConstruct } from 'constructs';
import { propError } from '../core/errors';
import { validateCidr } from '../core/names';
import { ResolvedTls } from '../core/tls';
import { requireEnum } from '../core/validation';

/** How a client reaches PostgreSQL, the first field of a pg_hba.conf line. */
export enum HbaConnection {
  /** Through the pod's Unix socket. */
  LOCAL = 'local',
  /** Over TCP with TLS. */
  HOSTSSL = 'hostssl',
  /** Over TCP without TLS: only to reject. */
  HOSTNOSSL = 'hostnossl',
  /** Over TCP with or without TLS: needs `allowUnencrypted`. */
  HOST = 'host',
}

/** How a client proves who it is; trust, password and md5 are not offered. */
export enum HbaMethod {
  /** A password, by SCRAM-SHA-256. */
  SCRAM_SHA_256 = 'scram-sha-256',
  /** A client certificate signed by the cluster's CA, its CN the role name or mapped by `identMap` (hostssl only). */
  CERT = 'cert',
  /** The operating system user of the socket's peer, mapped by `identMap` (local only). */
  PEER = 'peer',
  /** Refused. */
  REJECT = 'reject',
}

/** One pg_hba.conf line of the props. */
export interface HbaRule {
  /** How the client connects. */
  readonly connection: HbaConnection;
  /**
   * Databases the rule matches: names, `all`, `sameuser` or `samerole`.
   * @default ['all']
   */
  readonly databases?: string[];
  /**
   * Roles the rule matches: names, `+group` for a group's members, or `all`.
   * @default ['all']
   */
  readonly users?: string[];
  /**
   * Client network, a CIDR such as '10.1.0.0/16', or `all`; not for LOCAL.
   * @default - required for every connection but LOCAL
   */
  readonly address?: string;
  /** How the client authenticates. */
  readonly method: HbaMethod;
  /**
   * A map of `identMaps` that turns the certificate's CN or the peer's user into role names (CERT and PEER only).
   * @default - the CN or user must be the role's name
   */
  readonly identMap?: string;
  /**
   * Admit TCP clients without TLS through a HOST rule, whose passwords and data then cross the network in clear text.
   * @default false
   */
  readonly allowUnencrypted?: boolean;
}

/** One line of pg_ident.conf: a system user name a map lets log in as a role. */
export interface IdentMapping {
  /** The map's name, which `hbaRules[].identMap` names. */
  readonly mapName: string;
  /** The certificate's CN or the peer's user name, or a regular expression starting with `/` (its first group is `\1`). */
  readonly systemUsername: string;
  /** The role it may log in as; `\1` stands for the regular expression's first group. */
  readonly databaseUsername: string;
}

/** A rule as pg_hba.conf takes it, fields in order. */
export interface HbaRuleModel {
  readonly connection: HbaConnection;
  readonly databases: string[];
  readonly users: string[];
  readonly address: string;
  readonly method: HbaMethod;
  readonly options: string;
}

/** The library's rules of authentication beside the user's. */
export interface HbaRulesModel {
  readonly rules: HbaRuleModel[];
  readonly identMaps: IdentMapping[];
  /** Whether a CERT rule makes the server verify client certificates against the cluster's CA. */
  readonly clientCertificates: boolean;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;
const WEAK_METHODS = ['trust', 'password', 'md5', 'ident', 'ldap', 'radius', 'pam'];
/** A system user name or a regular expression: one pg_ident.conf field, with nothing that would end, split or quote it. */
const SYSTEM_USERNAME = /^[^\s"#,]{1,256}$/;
const DATABASE_USERNAME = /^([a-z_][a-z0-9_]{0,62}|[a-z_0-9]*\\1[a-z_0-9]*)$/;

/** Validates hbaRules and identMaps against each other and the cluster's TLS. */
export function resolveHbaRules(scope: IConstruct, rules: HbaRule[] | undefined, identMaps: IdentMapping[] | undefined,
  tls: ResolvedTls | undefined): HbaRulesModel {
  const maps = (identMaps ?? []).map((mapping, index) => resolveIdentMapping(scope, `identMaps[${index}]`, mapping));
  const resolved = (rules ?? []).map((rule, index) => resolveRule(scope, `hbaRules[${index}]`, rule, new Set(maps.map((m) => m.mapName)), tls));
  return { rules: resolved, identMaps: maps, clientCertificates: resolved.some((rule) => rule.method === HbaMethod.CERT) };
}

function resolveRule(scope: IConstruct, prop: string, rule: HbaRule, maps: Set<string>, tls: ResolvedTls | undefined): HbaRuleModel {
  const connection = requireEnum(scope, `${prop}.connection`, rule.connection, { HbaConnection });
  if (typeof rule.method === 'string' && WEAK_METHODS.includes(rule.method)) {
    throw propError(scope, `${prop}.method`, rule.method, 'sends or skips the password in a way the library does not allow',
      'use HbaMethod.SCRAM_SHA_256 for passwords, HbaMethod.CERT for client certificates, or HbaMethod.REJECT');
  }
  const method = requireEnum(scope, `${prop}.method`, rule.method, { HbaMethod });
  if (connection === undefined || method === undefined) {
    throw propError(scope, prop, rule, 'lacks its connection or method', 'set both connection and method');
  }
  if (connection === HbaConnection.HOST && !rule.allowUnencrypted) {
    throw propError(scope, `${prop}.connection`, connection, 'also admits clients without TLS, whose passwords and data cross the network in clear text',
      'use HbaConnection.HOSTSSL, or set allowUnencrypted: true on the rule if you accept that');
  }
  if (connection === HbaConnection.HOSTNOSSL && method !== HbaMethod.REJECT) {
    throw propError(scope, `${prop}.connection`, connection, `admits clients without TLS (method ${method})`,
      'use HbaConnection.HOSTSSL, or HbaMethod.REJECT to turn unencrypted clients away');
  }
  if (rule.allowUnencrypted && connection !== HbaConnection.HOST) {
    throw propError(scope, `${prop}.allowUnencrypted`, true, `has no effect on a ${connection} rule`, 'drop allowUnencrypted');
  }
  if (connection === HbaConnection.HOSTSSL && !tls) {
    throw propError(scope, `${prop}.connection`, connection, 'matches no client: tls.disabled turns TLS off', 'turn TLS on (drop tls.disabled)');
  }
  if (method === HbaMethod.PEER && connection !== HbaConnection.LOCAL) {
    throw propError(scope, `${prop}.method`, method, 'works only over the Unix socket', 'use HbaConnection.LOCAL, or another method');
  }
  if (method === HbaMethod.CERT && connection !== HbaConnection.HOSTSSL) {
    throw propError(scope, `${prop}.method`, method, 'needs TLS', 'use HbaConnection.HOSTSSL');
  }
  if (method === HbaMethod.CERT && !tls?.authority) {
    throw propError(scope, `${prop}.method`, method, 'needs a CA to verify client certificates against, and the cluster\'s certificate is self-signed',
      'give tls.secretName or tls.issuer: the server verifies client certificates against the ca.crt of that Secret');
  }
  if (rule.identMap !== undefined) {
    if (method !== HbaMethod.CERT && method !== HbaMethod.PEER) {
      throw propError(scope, `${prop}.identMap`, rule.identMap, `is used only by HbaMethod.CERT and HbaMethod.PEER, not ${method}`, 'drop identMap');
    }
    if (!maps.has(rule.identMap)) {
      throw propError(scope, `${prop}.identMap`, rule.identMap, 'is not a map of identMaps', `add its lines to identMaps, or use one of: ${[...maps].join(', ') || '(none)'}`);
    }
  }
  const address = resolveAddress(scope, `${prop}.address`, connection, rule.address);
  return {
    connection,
    databases: names(scope, `${prop}.databases`, rule.databases, (name) => ['all', 'sameuser', 'samerole'].includes(name) || (IDENTIFIER.test(name) && name !== 'replication'),
      'use database names (lower-case identifiers), "all", "sameuser" or "samerole"; replication connections are the library\'s'),
    users: names(scope, `${prop}.users`, rule.users, (name) => name === 'all' || IDENTIFIER.test(name.replace(/^\+/, '')),
      'use role names (lower-case identifiers), "+group" or "all"'),
    address,
    method,
    options: rule.identMap !== undefined ? `map=${rule.identMap}` : '',
  };
}

function resolveAddress(scope: IConstruct, prop: string, connection: HbaConnection, address: string | undefined): string {
  if (connection === HbaConnection.LOCAL) {
    if (address !== undefined) throw propError(scope, prop, address, 'is given for a socket rule, which has no address', 'drop address');
    return '';
  }
  if (address === undefined) throw propError(scope, prop, address, 'is required for a TCP rule', 'give a CIDR such as "10.0.0.0/8", or "all"');
  if (address !== 'all') validateCidr(scope, prop, address);
  return address;
}

function names(scope: IConstruct, prop: string, values: string[] | undefined, valid: (name: string) => boolean, fix: string): string[] {
  const list = values ?? ['all'];
  if (list.length === 0) throw propError(scope, prop, list, 'matches nothing', `${fix}, or leave it unset for all`);
  list.forEach((name, index) => {
    if (typeof name !== 'string' || !valid(name)) throw propError(scope, `${prop}[${index}]`, name, 'is not a name pg_hba.conf takes here', fix);
  });
  return list;
}

function resolveIdentMapping(scope: IConstruct, prop: string, mapping: IdentMapping): IdentMapping {
  if (typeof mapping.mapName !== 'string' || !IDENTIFIER.test(mapping.mapName)) {
    throw propError(scope, `${prop}.mapName`, mapping.mapName, 'is not a plain lower-case identifier', 'use lower-case letters, digits and "_"');
  }
  if (typeof mapping.systemUsername !== 'string' || !SYSTEM_USERNAME.test(mapping.systemUsername)) {
    throw propError(scope, `${prop}.systemUsername`, mapping.systemUsername, 'is not one pg_ident.conf field',
      'give a user name or a regular expression starting with "/", without spaces, quotes, commas or "#"');
  }
  if (mapping.systemUsername.startsWith('/')) {
    try {
      new RegExp(mapping.systemUsername.slice(1));
    } catch {
      throw propError(scope, `${prop}.systemUsername`, mapping.systemUsername, 'is not a regular expression', 'fix the expression after "/"');
    }
  }
  if (typeof mapping.databaseUsername !== 'string' || !DATABASE_USERNAME.test(mapping.databaseUsername)) {
    throw propError(scope, `${prop}.databaseUsername`, mapping.databaseUsername, 'is not a role name',
      'use a lower-case role name, or one with \\1 standing for the regular expression\'s first group');
  }
  if (mapping.databaseUsername.includes('\\1') && !mapping.systemUsername.startsWith('/')) {
    throw propError(scope, `${prop}.databaseUsername`, mapping.databaseUsername, 'names \\1, and systemUsername is no regular expression',
      'start systemUsername with "/" and a group, such as "/^(.*)@example\\.com$"');
  }
  return { mapName: mapping.mapName, systemUsername: mapping.systemUsername, databaseUsername: mapping.databaseUsername };
}
