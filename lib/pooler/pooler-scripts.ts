import { PoolerModel } from './pgbouncer-model';
import { AUTH_USER_INCLUDE, AUTH_USER_SECRET_DIR, userSecretDir } from './pooler-layout';

/** The environment the pooler's scripts read; the Deployment sets it, the e2e tests rewrite it. */
export const USERLIST_ENVIRONMENT = ['SECRETS_DIR', 'AUTH_DIR'] as const;
export const DRAIN_ENVIRONMENT = ['PGBOUNCER_RUN_DIR', 'DRAIN_DELAY_SECONDS'] as const;

/**
 * userlist.sh, the init container: PgBouncer's userlist from the mounted Secrets, written to an
 * in-memory volume, so no password is in the ConfigMap, the YAML or a command line. POSIX sh,
 * as the default image is Alpine's busybox.
 */
export function renderUserlistScript(model: PoolerModel): string {
  const dirs = [...(model.authUser ? [AUTH_USER_SECRET_DIR] : []), ...model.users.map((_, index) => userSecretDir(index))];
  const authUser = model.authUser ? `
# The auth user's name, which pgbouncer.ini includes: a bare word, as ini values are unquoted.
name=$(secret_line ${AUTH_USER_SECRET_DIR} username)
case $name in
  *[!A-Za-z0-9_.-]*)
    echo "userlist: the auth user's name must be letters, digits, '_', '.' or '-'" >&2
    exit 1
    ;;
esac
printf 'auth_user = %s\\n' "$name" > "$AUTH_DIR/${AUTH_USER_INCLUDE}.tmp"
mv -f -- "$AUTH_DIR/${AUTH_USER_INCLUDE}.tmp" "$AUTH_DIR/${AUTH_USER_INCLUDE}"
` : '';
  return `#!/bin/sh
# userlist.sh of pooler "${model.name}", rendered by cdk8s-postgres.
# Writes PgBouncer's userlist from the Secrets mounted in $SECRETS_DIR (one directory per role,
# files username and password) to $AUTH_DIR, an in-memory volume. Passwords stay in plain text:
# with SCRAM, PgBouncer needs the auth user's, and derives the rest's secrets itself.
set -eu

: "\${SECRETS_DIR:?}" "\${AUTH_DIR:?}"
umask 077

# secret_line <dir> <key>: a Secret's value, which must be one non-empty line.
secret_line() {
  value=$(cat -- "$SECRETS_DIR/$1/$2")
  case $value in
    '' | *'
'*)
      echo "userlist: $1/$2 must hold one non-empty line" >&2
      return 1
      ;;
  esac
  printf '%s' "$value"
}

# entry <dir>: a userlist line, with " doubled inside the quotes as PgBouncer reads it.
# printf is a shell builtin: the values never reach another process's command line.
entry() {
  user=$(secret_line "$1" username)
  password=$(secret_line "$1" password)
  user=$(printf '%s' "$user" | sed -e 's/"/""/g')
  password=$(printf '%s' "$password" | sed -e 's/"/""/g')
  printf '"%s" "%s"\\n' "$user" "$password"
}

: > "$AUTH_DIR/userlist.txt.tmp"
set -- ${dirs.join(' ')}
for dir in "$@"; do
  entry "$dir" >> "$AUTH_DIR/userlist.txt.tmp"
done
mv -f -- "$AUTH_DIR/userlist.txt.tmp" "$AUTH_DIR/userlist.txt"
${authUser}echo "userlist: ${dirs.length} role(s) written" >&2
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
