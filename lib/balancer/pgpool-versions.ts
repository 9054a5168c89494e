import { PGPOOL_43_PARAMETER_TYPES } from './pgpool-43-parameter-types';
import { PGPOOL_46_PARAMETER_TYPES } from './pgpool-46-parameter-types';
import { PGPOOL_43_PARAMETERS, PGPOOL_46_PARAMETERS } from './pgpool-parameters';
import { compareVersions } from '../core/dotted-versions';
import { gucSyntax, SettingSyntax, SettingType } from '../core/setting-values';

/** The pgpool.conf parameters of a Pgpool-II release and their types: what extraParameters may set. */
export interface PgpoolRelease {
  /** The release the data comes from ("4.3"). */
  readonly release: string;
  readonly parameters: ReadonlySet<string>;
  readonly types: { readonly [parameter: string]: SettingType };
  /** Pgpool-II reads values with a copy of PostgreSQL's guc.c parsers. */
  readonly syntax: SettingSyntax;
}

/**
 * The releases whose data the library has (Debian 12's 4.3.5, Debian 13's 4.6.1), oldest first.
 * A version reads the newest at or below it: 4.4 and 4.5 (the default image's 4.4.3) read 4.3's,
 * a subset of theirs (only socket_dir went, in 4.5, and the construct owns it), so a parameter they
 * added is refused, never one they lack accepted.
 */
const RELEASES: PgpoolRelease[] = [
  { release: '4.3', parameters: PGPOOL_43_PARAMETERS, types: PGPOOL_43_PARAMETER_TYPES, syntax: gucSyntax('Pgpool-II 4.3') },
  { release: '4.6', parameters: PGPOOL_46_PARAMETERS, types: PGPOOL_46_PARAMETER_TYPES, syntax: gucSyntax('Pgpool-II 4.6') },
];

/** The data a Pgpool-II version ("4.4.3") is checked against. */
export function pgpoolRelease(version: string): PgpoolRelease {
  return [...RELEASES].reverse().find((known) => compareVersions(version, known.release) >= 0) ?? RELEASES[0];
}

/** The newest release the library has data of, for messages. */
export const NEWEST_PGPOOL_RELEASE = RELEASES[RELEASES.length - 1].release;
