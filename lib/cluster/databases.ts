import { IConstruct } from 'constructs';
import { PostgresStatefulClusterProps } from './cluster-props';
import { ExtensionModel, renderExtensionSql, resolveExtensions } from './extensions';
import { ResolvedCredentials, resolveCredentials } from '../core/credentials';
import { Ensure } from '../core/ensure';
import { propError } from '../core/errors';
import { doBlock, sqlIdentifier, sqlLiteral } from '../core/sql-text';
import { requireEnum, requireInteger } from '../core/validation';

/** A declared database, checked at synth. */
export interface DatabaseModel {
  readonly name: string;
  readonly ensure: Ensure;
  /** The owner's Secret; none for the superuser. */
  readonly owner?: ResolvedCredentials;
  /** `postgres`, which initdb makes: only its extensions are declared. */
  readonly builtIn: boolean;
  readonly encoding?: string;
  readonly locale?: string;
  readonly template: string;
  readonly connectionLimit: number;
  readonly extensions: readonly ExtensionModel[];
}

const DATABASE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
/** An encoding name as pg_char_to_encoding reads it (`UTF8`, `utf-8`, `LATIN1`). */
const ENCODING = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;
/** A locale name as the C library spells it (`en_US.UTF-8`, `de_DE@euro`, `C`). */
const LOCALE = /^[A-Za-z][A-Za-z0-9_.@-]{0,62}$/;
const BUILT_IN = 'postgres';

/**
 * The declared databases: plain unique names, `postgres` only for its extensions, creation-only
 * options (encoding, locale, template) and an owner only on a database that should exist.
 */
export function resolveDatabases(scope: IConstruct, props: PostgresStatefulClusterProps): DatabaseModel[] {
  const seen = new Set<string>();
  return (props.databases ?? []).map((database, index) => {
    const prop = `databases[${index}]`;
    if (typeof database.name !== 'string' || !DATABASE_NAME.test(database.name)) {
      throw propError(scope, `${prop}.name`, database.name, 'is not a plain lower-case identifier',
        'use lower-case letters, digits and "_", starting with a letter or "_", at most 63 characters');
    }
    if (['template0', 'template1'].includes(database.name) || seen.has(database.name)) {
      throw propError(scope, `${prop}.name`, database.name, 'already exists', 'choose another database name');
    }
    seen.add(database.name);
    const ensure = requireEnum(scope, `${prop}.ensure`, database.ensure ?? Ensure.PRESENT, { Ensure });
    const builtIn = database.name === BUILT_IN;
    const declared = {
      owner: database.owner, encoding: database.encoding, locale: database.locale, template: database.template,
      connectionLimit: database.connectionLimit,
    };
    const set = Object.entries(declared).filter(([, value]) => value !== undefined).map(([key]) => key);
    if (builtIn && (set.length > 0 || ensure === Ensure.ABSENT)) {
      throw propError(scope, `${prop}.${set[0] ?? 'ensure'}`, set.length > 0 ? (declared as any)[set[0]] : ensure,
        'is set on the postgres database, which initdb makes and the cluster\'s own agents log in to', 'declare only its extensions');
    }
    if (ensure === Ensure.ABSENT && (set.length > 0 || (database.extensions ?? []).length > 0)) {
      throw propError(scope, `${prop}.ensure`, ensure, `is given with ${[...set, ...(database.extensions?.length ? ['extensions'] : [])].join(', ')}, which a dropped database has not`,
        'remove them, or set ensure to Ensure.PRESENT');
    }
    for (const [key, pattern] of [['encoding', ENCODING], ['locale', LOCALE], ['template', DATABASE_NAME]] as const) {
      const value = database[key];
      if (value !== undefined && (typeof value !== 'string' || !pattern.test(value))) {
        throw propError(scope, `${prop}.${key}`, value, `is not a plain ${key} name`, `give one such as ${{ encoding: '"UTF8"', locale: '"en_US.UTF-8"', template: '"template0"' }[key]}`);
      }
    }
    return {
      name: database.name,
      ensure,
      ...(database.owner ? { owner: resolveCredentials(scope, `${prop}.owner`, database.owner) } : {}),
      builtIn,
      encoding: database.encoding,
      locale: database.locale,
      // template1 holds what the cluster installs in it (the password lookup); another encoding or locale needs template0.
      template: database.template ?? (database.encoding || database.locale ? 'template0' : 'template1'),
      connectionLimit: requireInteger(scope, `${prop}.connectionLimit`, database.connectionLimit ?? -1, -1, 2 ** 31 - 1),
      extensions: resolveExtensions(scope, `${prop}.extensions`, database.name, database.extensions, props.extraParameters ?? {}),
    };
  });
}

/** The extension names of the props' databases that should exist, for their preloaded libraries (read before the databases are checked). */
export function declaredExtensionNames(props: PostgresStatefulClusterProps): string[] {
  return (props.databases ?? []).filter((database) => database.ensure !== Ensure.ABSENT)
    .flatMap((database) => (database.extensions ?? []).filter((extension) => extension.ensure !== Ensure.ABSENT).map((extension) => extension.name));
}

/**
 * A database that should exist: created with its creation-only options if missing, then its
 * owner, connection limit and connections allowed set to the declared state; creation-only
 * options that differ from the existing database's are logged, since they cannot change.
 * psql's `owner` variable holds the owner's name.
 */
export function renderDatabase(database: DatabaseModel): string[] {
  const name = sqlLiteral(database.name);
  const options = [
    ['TEMPLATE %I', sqlLiteral(database.template)],
    ...(database.encoding ? [['ENCODING %L', sqlLiteral(database.encoding)]] : []),
    ...(database.locale ? [['LOCALE %L', sqlLiteral(database.locale)]] : []),
  ];
  const checks = [
    ...(database.encoding ? [[`pg_encoding_to_char(encoding) <> pg_encoding_to_char(pg_char_to_encoding(${sqlLiteral(database.encoding)}))`,
      `encoding ${database.encoding}`, 'pg_encoding_to_char(encoding)']] : []),
    ...(database.locale ? [[`(datcollate, datctype) <> (${sqlLiteral(database.locale)}, ${sqlLiteral(database.locale)})`,
      `locale ${database.locale}`, "datcollate || '/' || datctype"]] : []),
  ];
  return [
    `SELECT format('CREATE DATABASE %I OWNER %I ${options.map(([option]) => option).join(' ')}', ${name}, :'owner', ${options.map(([, value]) => value).join(', ')})`,
    `  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = ${name}) \\gexec`,
    `SELECT format('ALTER DATABASE %I OWNER TO %I', ${name}, :'owner') \\gexec`,
    `ALTER DATABASE ${sqlIdentifier(database.name)} WITH ALLOW_CONNECTIONS true CONNECTION LIMIT ${database.connectionLimit};`,
    ...checks.map(([differs, declared, actual]) => doBlock([
      'DECLARE',
      '  actual text;',
      'BEGIN',
      `  SELECT ${actual} INTO actual FROM pg_database WHERE datname = ${name} AND ${differs};`,
      '  IF actual IS NOT NULL THEN',
      `    RAISE WARNING ${sqlLiteral(`database "${database.name}" has % but the props declare ${declared}, which only its creation sets: `
        + 'it keeps its own. To change it, create a new database with it and move the data (pg_dump, pg_restore)')}, actual;`,
      '  END IF;',
      'END',
    ])),
  ];
}

/**
 * A database declared absent: closed to new connections at once, then dropped unless sessions
 * are still in it, which are left to finish and logged. In the plain mode no client can be
 * connected while the primary provisions; in the HA mode Patroni's callback runs on a live server.
 * A session that slipped in between the check and the drop fails the drop, which is logged, and
 * the provisioning goes on.
 */
export function renderDatabaseDrop(database: DatabaseModel): string[] {
  const name = sqlLiteral(database.name);
  const sessions = `SELECT FROM pg_stat_activity WHERE datname = ${name} AND pid <> pg_backend_pid()`;
  return [
    doBlock([
      'DECLARE',
      '  sessions bigint;',
      'BEGIN',
      `  IF NOT EXISTS (SELECT FROM pg_database WHERE datname = ${name}) THEN`,
      '    RETURN;',
      '  END IF;',
      `  EXECUTE format('ALTER DATABASE %I WITH ALLOW_CONNECTIONS false', ${name});`,
      `  SELECT count(*) INTO sessions FROM pg_stat_activity WHERE datname = ${name} AND pid <> pg_backend_pid();`,
      '  IF sessions > 0 THEN',
      `    RAISE WARNING ${sqlLiteral(`database "${database.name}" is declared absent but % sessions are connected to it: it takes no new `
        + `connections and is kept. End them (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${database.name}') `
        + 'and restart the primary, or restart it when they are done')}, sessions;`,
      '  END IF;',
      'END',
    ]),
    '\\set ON_ERROR_STOP 0',
    `SELECT format('DROP DATABASE %I', ${name}) WHERE EXISTS (SELECT FROM pg_database WHERE datname = ${name}) AND NOT EXISTS (${sessions}) \\gexec`,
    '\\set ON_ERROR_STOP 1',
  ];
}

/** A database's extensions, reconciled connected to it. */
export function renderDatabaseExtensions(database: DatabaseModel): string[] {
  return database.extensions.length === 0 ? [] : [`\\connect ${database.name}`, ...renderExtensionSql(database.name, database.extensions)];
}
