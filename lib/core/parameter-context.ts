/**
 * When a change of a PostgreSQL parameter takes effect (`pg_settings.context`): what the change
 * impact report classifies settings changes by.
 */
export enum ParameterContext {
  /** Fixed at initdb; cannot change. */
  INTERNAL = 'internal',
  /** Needs a server restart (`pending_restart` after a reload). */
  POSTMASTER = 'postmaster',
  /** A reload (SIGHUP) applies it. */
  SIGHUP = 'sighup',
  /** A reload applies it to new sessions; superusers may set it per session. */
  SUPERUSER_BACKEND = 'superuser-backend',
  /** A reload applies it to new sessions. */
  BACKEND = 'backend',
  /** A reload applies it; superusers may also set it per session. */
  SUPERUSER = 'superuser',
  /** A reload applies it; any user may also set it per session. */
  USER = 'user',
}
