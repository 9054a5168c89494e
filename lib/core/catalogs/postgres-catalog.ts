import { ParameterContext } from '../parameter-context';
import { SettingType } from '../setting-values';

/** One setting of a PostgreSQL server, as pg_settings describes it. */
export interface CatalogSetting {
  /** What applying a change takes. */
  readonly context: ParameterContext;
  /** Whether postgresql.conf takes it (`postgres --describe-config` lists it); developer and preset options are not. */
  readonly inFile?: true;
  /** Type, range, unit and enum values. */
  readonly type: SettingType;
}

/** The settings of one PostgreSQL major, generated from a real server by scripts/postgres-catalog.sh. */
export interface PostgresCatalog {
  /** The server's `version()` the catalog was generated from. */
  readonly server: string;
  /** Every setting, by lower-cased name. */
  readonly settings: { readonly [parameter: string]: CatalogSetting };
}
