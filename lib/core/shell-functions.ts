/**
 * Bash functions the cluster's scripts share: reading a mounted Secret and writing libpq
 * passfiles and connection strings from it, so no password reaches argv or a log line. They
 * need `CREDENTIALS_DIR` and a `log` function.
 */
export const CREDENTIAL_FUNCTIONS = `# secret <dir> <username|password>: a value from a mounted Secret, which must be one line.
secret() {
  local value
  value=$(cat -- "$CREDENTIALS_DIR/$1/$2")
  if [[ -z $value || $value == *$'\\n'* ]]; then
    log "secret file $1/$2 must hold one non-empty line"
    return 1
  fi
  printf '%s' "$value"
}

# A libpq passfile field: backslash and colon are escaped.
passfile_field() {
  local field=\${1//\\\\/\\\\\\\\}
  printf '%s' "\${field//:/\\\\:}"
}

# A libpq connection-string value, single-quoted.
conninfo_value() {
  local value=\${1//\\\\/\\\\\\\\}
  printf "'%s'" "\${value//\\'/\\\\\\'}"
}

# write_passfile <file> <secret dir>: a passfile that authenticates that Secret's role anywhere.
write_passfile() {
  local user password
  user=$(secret "$2" username)
  password=$(secret "$2" password)
  (
    umask 077
    printf '*:*:*:%s:%s\\n' "$(passfile_field "$user")" "$(passfile_field "$password")" > "$1.tmp"
  )
  mv -f -- "$1.tmp" "$1"
}`;

/**
 * A script's temporary server: started on the rendered configuration (CONFIG_FILE) where no
 * client can reach it, and, by the EXIT trap, stopped with its private directory `workdir` (its
 * socket) removed when the script fails half-way.
 */
export const TEMPORARY_SERVER_FUNCTIONS = `# A failed run stops the temporary server and removes its private directory.
temporary_server=""
workdir=""
cleanup() {
  if [[ -n $temporary_server ]]; then
    pg_ctl --pgdata="$temporary_server" --mode=immediate --silent stop || true
  fi
  if [[ -n $workdir ]]; then
    rm -rf -- "$workdir"
  fi
}
trap cleanup EXIT

# start_temporary_server <data directory> [-c name=value ...]: PostgreSQL with its socket in the
# private $workdir and no TCP listener, so no client connects, and synchronous replication off,
# as no replica confirms commits meanwhile; its log goes to the container's stderr even with
# logAnalysis's collector. It waits as long as a recovery replays: pg_ctl still
# fails at once when the server exits.
start_temporary_server() {
  local pgdata=$1
  shift
  temporary_server=$pgdata
  pg_ctl --pgdata="$pgdata" --wait --timeout=86400 --silent \\
    --options="-c config_file=$CONFIG_FILE -c listen_addresses='' -c unix_socket_directories=$workdir -c synchronous_standby_names='' -c logging_collector=off $*" \\
    start >&2
}`;

/**
 * Shell lines that write `file` from the `entry <dir>` function's output for each of `dirs`,
 * into a temporary file first: the daemon never reads half a file.
 */
export function entriesFile(file: string, dirs: readonly string[]): string {
  return `: > "${file}.tmp"
set -- ${dirs.join(' ')}
for dir in "$@"; do
  entry "$dir" >> "${file}.tmp"
done
mv -f -- "${file}.tmp" "${file}"`;
}

/**
 * POSIX sh: `secret_line <dir> <key>`, a mounted Secret's value under CREDENTIALS_DIR, which must
 * be one non-empty line, for the init steps of images without bash (PgBouncer's, Pgpool-II's).
 * `tag` begins its error message.
 */
export function posixSecretLine(tag: string): string {
  return `# secret_line <dir> <key>: a Secret's value, which must be one non-empty line.
secret_line() {
  value=$(cat -- "$CREDENTIALS_DIR/$1/$2")
  case $value in
    '' | *'
'*)
      echo "${tag}: $1/$2 must hold one non-empty line" >&2
      return 1
      ;;
  esac
  printf '%s' "$value"
}`;
}

/** POSIX sh: `colon_field <value>`, backslash and colon escaped, as libpq's passfile and Pgpool-II's pool_passwd read them. */
export const COLON_FIELD_FUNCTION = `colon_field() {
  printf '%s' "$1" | sed -e 's/\\\\/\\\\\\\\/g' -e 's/:/\\\\:/g'
}`;

/**
 * A script's `log`: a UTC timestamp, the script's name and, for a pod's steps, whose (`subject`,
 * a shell word such as "$POD_NAME"), on stderr, so every step's lines read alike in the pod's logs.
 */
export function logFunction(tag: string, subject?: string): string {
  return `log() {
  printf '%s ${tag}${subject ? ' %s' : ''}: %s\\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"${subject ? ` "${subject}"` : ''} "$*" >&2
}`;
}
