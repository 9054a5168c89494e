import { IConstruct } from 'constructs';
import { Ensure } from '../core/ensure';
import { propError } from '../core/errors';
import { doBlock, sqlLiteral } from '../core/sql-text';
import { requireEnum } from '../core/validation';

/** An extension of a database, reconciled at every start of the primary. */
export interface PostgresExtension {
  /** The extension's name as CREATE EXTENSION takes it, such as `pg_stat_statements` or `uuid-ossp`. */
  readonly name: string;
  /**
   * Whether the extension should exist: ABSENT drops it unless objects of the database depend on it.
   * @default Ensure.PRESENT
   */
  readonly ensure?: Ensure;
  /**
   * Version to create, or to update an installed extension to (ALTER EXTENSION ... UPDATE TO).
   * @default - the default version of the image's control file at creation; an installed extension is never updated
   */
  readonly version?: string;
  /**
   * Schema of the extension's objects, created if missing; a relocatable extension installed
   * elsewhere is moved there (ALTER EXTENSION ... SET SCHEMA).
   * @default - the control file's schema, or the first schema of the search path (`public`)
   */
  readonly schema?: string;
}

/** An extension as the provisioning renders it. */
export interface ExtensionModel {
  readonly name: string;
  readonly ensure: Ensure;
  readonly version?: string;
  readonly schema?: string;
}

/** What an extension needs that a CREATE EXTENSION cannot give it. */
interface PreloadNeeds {
  /** The library shared_preload_libraries must name: its functions fail, or it collects nothing, without it. */
  readonly library: string;
  /** The parameter naming the one database the extension may be created in, and its default. */
  readonly databaseParameter?: { readonly name: string; readonly default: string };
}

/**
 * Extensions that must be preloaded, by name: declaring one in a database adds its library to
 * shared_preload_libraries (a restart parameter: the pods roll once). Data, not code: another
 * such extension is one line.
 */
export const PRELOADED_EXTENSIONS: { readonly [extension: string]: PreloadNeeds } = {
  // contrib, in every major's image: its view errors out unless the module is loaded.
  pg_stat_statements: { library: 'pg_stat_statements' },
  // Third-party (Debian's postgresql-<major>-cron): its scheduler is a background worker of the library.
  pg_cron: { library: 'pg_cron', databaseParameter: { name: 'cron.database_name', default: 'postgres' } },
  pgaudit: { library: 'pgaudit' },
  pg_wait_sampling: { library: 'pg_wait_sampling' },
  timescaledb: { library: 'timescaledb' },
};

/** An extension name as the catalogs spell them: contrib's `uuid-ossp` has a hyphen. */
const EXTENSION_NAME = /^[a-z_][a-z0-9_-]{0,62}$/;
const EXTENSION_VERSION = /^[A-Za-z0-9_.-]{1,63}$/;
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * A database's extensions, checked at synth; what the image holds only the server can tell, so a
 * CREATE EXTENSION that fails is logged at reconcile, not refused here.
 * @param databaseParameters extraParameters, for the database an extension such as pg_cron must be created in
 */
export function resolveExtensions(scope: IConstruct, prop: string, database: string, extensions: PostgresExtension[] | undefined,
  databaseParameters: { readonly [parameter: string]: string }): ExtensionModel[] {
  const seen = new Set<string>();
  return (extensions ?? []).map((extension, index) => {
    const at = `${prop}[${index}]`;
    if (typeof extension.name !== 'string' || !EXTENSION_NAME.test(extension.name)) {
      throw propError(scope, `${at}.name`, extension.name, 'is not an extension name',
        'use lower-case letters, digits, "_" and "-" as the extension\'s control file is named, such as "pg_stat_statements"');
    }
    if (seen.has(extension.name)) throw propError(scope, `${at}.name`, extension.name, 'is declared twice in this database', 'declare it once');
    seen.add(extension.name);
    const ensure = requireEnum(scope, `${at}.ensure`, extension.ensure ?? Ensure.PRESENT, { Ensure });
    if (ensure === Ensure.ABSENT && (extension.version !== undefined || extension.schema !== undefined)) {
      throw propError(scope, `${at}.ensure`, ensure, 'is given with a version or a schema, which a dropped extension has not',
        'remove version and schema, or set ensure to Ensure.PRESENT');
    }
    if (extension.version !== undefined && !EXTENSION_VERSION.test(extension.version)) {
      throw propError(scope, `${at}.version`, extension.version, 'is not an extension version',
        'give a version as pg_available_extension_versions lists it, such as "1.10"');
    }
    if (extension.schema !== undefined && (!SCHEMA_NAME.test(extension.schema) || extension.schema.startsWith('pg_'))) {
      throw propError(scope, `${at}.schema`, extension.schema, 'is not a plain schema name outside the reserved pg_ prefix',
        'use lower-case letters, digits and "_", such as "extensions"');
    }
    const only = PRELOADED_EXTENSIONS[extension.name]?.databaseParameter;
    const onlyDatabase = only && (databaseParameters[only.name] ?? only.default);
    if (ensure === Ensure.PRESENT && onlyDatabase !== undefined && onlyDatabase !== database) {
      throw propError(scope, `${at}.name`, extension.name, `may only be created in the database ${only!.name} names ("${onlyDatabase}")`,
        `declare it in that database, or set extraParameters["${only!.name}"] to "${database}"`);
    }
    return { name: extension.name, ensure, version: extension.version, schema: extension.schema };
  });
}

/** The libraries the declared extensions need preloaded, in the order first declared. */
export function extensionPreloadLibraries(extensionNames: readonly string[]): string[] {
  return [...new Set(extensionNames.flatMap((name) => {
    const needs = Object.prototype.hasOwnProperty.call(PRELOADED_EXTENSIONS, name) ? PRELOADED_EXTENSIONS[name] : undefined;
    return needs ? [needs.library] : [];
  }))];
}

/**
 * The SQL bringing one database's extensions to the declared state, run connected to it. A
 * failure (no control file in the image, no update path, objects depending on one to drop) is a
 * WARNING in the log and the next extension is reconciled: the server still starts.
 */
export function renderExtensionSql(database: string, extensions: readonly ExtensionModel[]): string[] {
  return extensions.map((extension) => (extension.ensure === Ensure.ABSENT
    ? dropExtension(database, extension) : ensureExtension(database, extension)));
}

function ensureExtension(database: string, extension: ExtensionModel): string {
  const name = sqlLiteral(extension.name);
  const where = `extension "${extension.name}" in database "${database}"`;
  const options = [
    ...(extension.schema ? [['SCHEMA %I', sqlLiteral(extension.schema)]] : []),
    ...(extension.version ? [['VERSION %L', sqlLiteral(extension.version)]] : []),
  ];
  const create = `format('${['CREATE EXTENSION %I', ...options.map(([option]) => option), 'CASCADE'].join(' ')}', ${[name, ...options.map(([, value]) => value)].join(', ')})`;
  return doBlock([
    'DECLARE',
    '  installed_version text;',
    '  installed_schema name;',
    'BEGIN',
    '  SELECT e.extversion, n.nspname INTO installed_version, installed_schema',
    `    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = ${name};`,
    '  IF installed_version IS NULL THEN',
    ...(extension.schema ? [`    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', ${sqlLiteral(extension.schema)});`] : []),
    `    EXECUTE ${create};`,
    `    RAISE NOTICE ${sqlLiteral(`${where} created`)};`,
    '    RETURN;',
    '  END IF;',
    ...(extension.version ? [
      `  IF installed_version <> ${sqlLiteral(extension.version)} THEN`,
      `    EXECUTE format('ALTER EXTENSION %I UPDATE TO %L', ${name}, ${sqlLiteral(extension.version)});`,
      `    RAISE NOTICE ${sqlLiteral(`${where} updated from version % to ${extension.version}`)}, installed_version;`,
      '  END IF;',
    ] : []),
    ...(extension.schema ? [
      `  IF installed_schema <> ${sqlLiteral(extension.schema)} THEN`,
      `    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', ${sqlLiteral(extension.schema)});`,
      `    EXECUTE format('ALTER EXTENSION %I SET SCHEMA %I', ${name}, ${sqlLiteral(extension.schema)});`,
      `    RAISE NOTICE ${sqlLiteral(`${where} moved from schema % to ${extension.schema}`)}, installed_schema;`,
      '  END IF;',
    ] : []),
    'EXCEPTION WHEN OTHERS THEN',
    `  RAISE WARNING ${sqlLiteral(`${where} not reconciled: %; the image must hold the extension (pg_available_extension_versions `
      + 'lists what it holds, and the update paths between versions), and a moved extension must be relocatable')}, SQLERRM;`,
    'END',
  ]);
}

function dropExtension(database: string, extension: ExtensionModel): string {
  const name = sqlLiteral(extension.name);
  const where = `extension "${extension.name}" in database "${database}"`;
  return doBlock([
    'DECLARE',
    '  detail text;',
    'BEGIN',
    `  IF EXISTS (SELECT FROM pg_extension WHERE extname = ${name}) THEN`,
    `    EXECUTE format('DROP EXTENSION %I', ${name});`,
    `    RAISE NOTICE ${sqlLiteral(`${where} dropped`)};`,
    '  END IF;',
    'EXCEPTION WHEN dependent_objects_still_exist THEN',
    '  GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;',
    `  RAISE WARNING ${sqlLiteral(`${where} is declared absent but objects depend on it (%); it stays. Drop them, or run `
      + `DROP EXTENSION "${extension.name}" CASCADE in that database if they may go with it`)}, detail;`,
    'END',
  ]);
}
