import { PoolerModel } from './pgbouncer-model';
import { AUTH_USER_INCLUDE, AUTH_USER_SECRET_DIR, STATS_USERS_INCLUDE, statsUserSecretDir, userSecretDir } from './pooler-layout';
import { ResolvedCredentials } from '../core/credentials';
import { entriesFile, posixSecretLine } from '../core/shell-functions';

/** The environment the pooler's scripts read; the Deployment sets it, the e2e tests rewrite it. */
export const USERLIST_ENVIRONMENT = ['CREDENTIALS_DIR', 'AUTH_DIR'] as const;
export const DRAIN_ENVIRONMENT = ['PGBOUNCER_RUN_DIR', 'DRAIN_DELAY_SECONDS'] as const;

/**
 * userlist.sh, the init container: PgBouncer's userlist from the mounted Secrets, written to an
 * in-memory volume, so no password is in the ConfigMap, the YAML or a command line. POSIX sh,
 * as the default image is Alpine's busybox.
 * @param statsUserSecrets stats users whose names live in Secrets, granted after the props (exporters')
 */
export function renderUserlistScript(model: PoolerModel, statsUserSecrets: readonly ResolvedCredentials[] = []): string {
  const statsDirs = statsUserSecrets.map((_, index) => statsUserSecretDir(index));
  const dirs = [...(model.authUser ? [AUTH_USER_SECRET_DIR] : []), ...model.users.map((_, index) => userSecretDir(index)), ...statsDirs];
  // Names are read into variables first: a failing command substitution inside an argument
  // would not stop the script under set -e.
  const statsVariable = (index: number) => `stats_user_${index}`;
  const includes = [
    ...(model.authUser ? [`
# The auth user's name, which pgbouncer.ini includes.
auth_user=$(role_name ${AUTH_USER_SECRET_DIR})
include_line ${AUTH_USER_INCLUDE} "auth_user = $auth_user"`] : []),
    ...(statsDirs.length > 0 ? [`
# stats_users, which pgbouncer.ini includes: the props' names and those in the Secrets.
${statsDirs.map((dir, index) => `${statsVariable(index)}=$(role_name ${dir})`).join('\n')}
include_line ${STATS_USERS_INCLUDE} "stats_users = ${[...model.statsUsers, ...statsDirs.map((_, index) => `$${statsVariable(index)}`)].join(',')}"`] : []),
  ];
  const includeFunctions = includes.length === 0 ? '' : `
# role_name <dir>: a role name for an ini line, where values are bare words.
role_name() {
  name=$(secret_line "$1" username)
  case $name in
    *[!A-Za-z0-9_.-]*)
      echo "userlist: the role name in $1 must be letters, digits, '_', '.' or '-'" >&2
      return 1
      ;;
  esac
  printf '%s' "$name"
}

# include_line <file> <line>: an ini file of one line in $AUTH_DIR, replaced at once.
include_line() {
  printf '%s\\n' "$2" > "$AUTH_DIR/$1.tmp"
  mv -f -- "$AUTH_DIR/$1.tmp" "$AUTH_DIR/$1"
}
`;
  return `#!/bin/sh
# userlist.sh of pooler "${model.name}", rendered by cdk8s-postgres.
# Writes PgBouncer's userlist from the Secrets mounted in $CREDENTIALS_DIR (one directory per role,
# files username and password) to $AUTH_DIR, an in-memory volume. Passwords stay in plain text:
# with SCRAM, PgBouncer needs the auth user's, and derives the rest's secrets itself.
set -eu

: "\${CREDENTIALS_DIR:?}" "\${AUTH_DIR:?}"
umask 077

${posixSecretLine('userlist')}
${includeFunctions}
# entry <dir>: a userlist line, with " doubled inside the quotes as PgBouncer reads it.
# printf is a shell builtin: the values never reach another process's command line.
entry() {
  user=$(secret_line "$1" username)
  password=$(secret_line "$1" password)
  user=$(printf '%s' "$user" | sed -e 's/"/""/g')
  password=$(printf '%s' "$password" | sed -e 's/"/""/g')
  printf '"%s" "%s"\\n' "$user" "$password"
}

${entriesFile('$AUTH_DIR/userlist.txt', dirs)}
${includes.map((include) => `${include}\n`).join('')}echo "userlist: ${dirs.length} role(s) written" >&2
`;
}

/**
 * drain.sh, the preStop hook: readiness fails at once (the probe looks for the marker), the pod
 * stays up while Services forget it, then PgBouncer's safe shutdown (SIGINT) lets open
 * transactions finish before it exits, within the termination grace period.
 */
export function renderDrainScript(model: PoolerModel): string {
  return `#!/bin/sh
# drain.sh of pooler "${model.name}", rendered by cdk8s-postgres: the preStop hook.
set -eu

: "\${PGBOUNCER_RUN_DIR:?}" "\${DRAIN_DELAY_SECONDS:?}"
touch "$PGBOUNCER_RUN_DIR/draining"
sleep "$DRAIN_DELAY_SECONDS"
pid=$(cat "$PGBOUNCER_RUN_DIR/pgbouncer.pid")
kill -INT "$pid"
while kill -0 "$pid" 2> /dev/null; do
  sleep 1
done
`;
}

/**
 * start.sh, the main container's command. The run directory outlives a container restart, so
 * it clears what the last container left: a drain marker would keep the pod unready for good,
 * and a stale pidfile holding PID 1 makes PgBouncer, PID 1 again, refuse to start.
 */
export function renderStartScript(model: PoolerModel): string {
  return `#!/bin/sh
# start.sh of pooler "${model.name}", rendered by cdk8s-postgres: clears the last container's
# drain marker and pidfile, then runs PgBouncer with the config file given as $1.
set -eu

: "\${PGBOUNCER_RUN_DIR:?}"
rm -f -- "$PGBOUNCER_RUN_DIR/draining" "$PGBOUNCER_RUN_DIR/pgbouncer.pid"
exec pgbouncer "$1"
`;
}
