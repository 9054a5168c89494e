/** A parameter a newer PostgreSQL major no longer knows, and what to do instead. */
export interface RemovedParameter {
  /** The first major without it. */
  readonly removedIn: number;
  /** The parameter that replaces it under a new name, if any. */
  readonly renamedTo?: string;
  /** What to do instead, from that major's release notes. */
  readonly fix: string;
}

/**
 * Parameters postgresql.conf took in one major and a later major no longer knows, found by
 * diffing the generated catalogs (test/postgres-versions.test.ts checks the table against them),
 * with the replacement the release notes give.
 */
export const REMOVED_PARAMETERS: { readonly [parameter: string]: RemovedParameter } = {
  // 15: "Remove server variable stats_temp_directory": statistics now live in shared memory.
  stats_temp_directory: { removedIn: 15, fix: 'drop it: statistics are kept in shared memory since PostgreSQL 15' },
  // 16: "Remove server variable promote_trigger_file": pg_ctl promote and pg_promote() do it.
  promote_trigger_file: { removedIn: 16, fix: 'drop it and promote with pg_promote() or pg_ctl promote' },
  // 16: "Remove server variable vacuum_defer_cleanup_age": superseded by feedback and slots.
  vacuum_defer_cleanup_age: {
    removedIn: 16, fix: 'drop it: settings.hotStandbyFeedback and the replicas\' replication slots hold back cleanup for standbys',
  },
  // 17: "Remove the feature which simulated per-database users".
  db_user_namespace: { removedIn: 17, fix: 'drop it and give each database\'s users role names of their own' },
  // 17: "Remove server variable old_snapshot_threshold" (the "snapshot too old" feature), no replacement.
  old_snapshot_threshold: {
    removedIn: 17, fix: 'drop it; to bound how long old snapshots hold back cleanup, set idle_in_transaction_session_timeout or transaction_timeout',
  },
  // 17: "Remove server variable trace_recovery_messages since it is no longer needed".
  trace_recovery_messages: { removedIn: 17, fix: 'drop it: recovery messages follow log_min_messages' },
  // 18: "Rename server variable ssl_ecdh_curve to ssl_groups" (several groups, colon-separated).
  ssl_ecdh_curve: { removedIn: 18, renamedTo: 'ssl_groups', fix: 'use ssl_groups, which takes a colon-separated list' },
};

/**
 * Parameters that only some catalogs have whatever their major, which no major removed: they came
 * with a minor release newer than some catalogs' servers, or with a distribution's patch.
 */
export const MINOR_RELEASE_PARAMETERS: { readonly [parameter: string]: string } = {
  // The Debian-built 15.20 and 17.12 have both; the older embedded 14.23, 16.14 and 18.4 neither.
  output_plugin_libraries: 'added by the minor releases of November 2026 (15.19 and the like)',
  extension_destdir: 'added by Debian\'s packages (a patch for testing extensions before installation)',
};
