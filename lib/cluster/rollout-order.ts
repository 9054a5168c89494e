import { CLUSTER_PATHS, replicaSlotName } from './cluster-layout';
import { ClusterModel } from './cluster-model';
import { PATRONI_REST_PYTHON } from './patroni-rest-python';
import { TEMPLATE_REVISION_ENV, TEMPLATE_TAG } from './patroni-start-script';
import { k8s } from '../core/kube';
import { logFunction } from '../core/shell-functions';

/**
 * The order in which a pod template change (an image's new minor release, or any other) reaches
 * the pods: replicas first, the primary last, as CloudNativePG and the Patroni operators (Zalando,
 * PGO) order their rollouts. Without an operator, Kubernetes decides the order: the plain mode's
 * two StatefulSets roll at the same time, and the HA mode's one from the highest ordinal down,
 * wherever the leader is. So the order is kept by the primary's preStop hook, which Kubernetes
 * runs before it stops the pod and waits for up to terminationGracePeriodSeconds:
 *
 * - HA mode: the leader hands the leader lock over by a switchover (Patroni's REST API) to a
 *   healthy replica, preferring one already running a newer template (the `pod_template` member
 *   tag, which patroni-start.sh sets from the pod's revision label), before Patroni stops. When
 *   the leader's pod is replaced after the others (it has the lowest ordinal), the primary moves
 *   once, onto the new template; when it is replaced first, it moves to an old replica, and once
 *   more when that one is replaced.
 * - Plain mode: there is no other primary to hand over to, but a replica must run the new
 *   release before the primary does (a newer primary's WAL may not replay on an older replica).
 *   The primary's hook keeps PostgreSQL serving while the replicas restart: when a replica is
 *   not streaming at the hook's start, or its stream ends within ROLLOUT_DETECT_SECONDS, the
 *   replicas' StatefulSet is rolling too, and the hook waits until every replica streams again
 *   over a new connection (its new pod) before the fast shutdown, for at most two thirds of the
 *   grace period (a replica that stays down costs that wait, while the primary serves).
 *
 * Pods stopped for another reason (a drain, a deletion) take the same path: the leader hands
 * over; the plain primary waits ROLLOUT_DETECT_SECONDS longer, serving meanwhile.
 */

/** The pod label the StatefulSet controller sets to the revision (the template's hash) a pod was made from. */
export const TEMPLATE_REVISION_LABEL = 'controller-revision-hash';
/** How long the plain primary's hook watches for a replica's stream to end, the sign that the replicas roll too. */
export const ROLLOUT_DETECT_SECONDS = 5;

/** The hook's share of the grace period; the fast shutdown keeps the rest (at least 5 s). */
const waitSeconds = (model: ClusterModel) => Math.max(0, Math.floor((model.terminationGracePeriodSeconds * 2) / 3) - 5);

/** The preStop hook of the plain mode's primary (with no replica, it stops at once). */
export function primaryStopHook(model: ClusterModel): { lifecycle: k8s.Lifecycle } {
  return {
    lifecycle: {
      preStop: {
        exec: {
          command: ['bash', '-c', renderPrimaryStopScript(model), 'primary-stop', `--pgdata=${CLUSTER_PATHS.pgdata}`,
            `--host=${CLUSTER_PATHS.socketDir}`, `--port=${model.port}`, `--passfile=${CLUSTER_PATHS.passfile}`],
        },
      },
    },
  };
}

/** The fast shutdown of a replica of the plain mode, which no ordering holds back. */
export function fastStop(model: ClusterModel): k8s.Lifecycle {
  // SIGTERM would be a smart shutdown that waits for every client; fast rolls back
  // open transactions and checkpoints within the grace period.
  return {
    preStop: { exec: { command: ['pg_ctl', 'stop', `--pgdata=${CLUSTER_PATHS.pgdata}`, '--mode=fast', '--wait', `--timeout=${model.terminationGracePeriodSeconds - 5}`] } },
  };
}

/** bash: `passfile_user <passfile>`, the user field of a libpq passfile's one line. */
export const PASSFILE_USER_FUNCTION = `# passfile_user <passfile>: the user field (the fourth) of its one line, libpq's backslash escapes undone.
passfile_user() {
  local line char field="" index=0 escaped="" i
  IFS= read -r line < "$1"
  for ((i = 0; i < \${#line}; i++)); do
    char=\${line:i:1}
    if [[ -n $escaped ]]; then
      field+=$char
      escaped=""
    elif [[ $char == "\\\\" ]]; then
      escaped=1
    elif [[ $char == ':' ]]; then
      if ((index == 3)); then
        printf '%s' "$field"
        return
      fi
      index=$((index + 1))
      field=""
    else
      field+=$char
    fi
  done
  return 1
}`;

/**
 * bash, after `streams`, `replicas`, `detect` and `wait_limit`: whether the replicas roll (a
 * replica not streaming, or a stream that ends within the detection window), and if so the
 * wait until every replica streams over a new connection, bounded by wait_limit.
 */
const WAIT_FOR_REPLICAS = `initial=$(streams)
streaming=$(grep -c . <<< "$initial" || true)
log "$streaming of $replicas replicas streaming"
# A replica not streaming, or a stream that ends while we watch: its pod is being replaced.
rolling=""
if ((replicas == 0)); then
  detect=0
elif ((streaming < replicas)); then
  rolling="$((replicas - streaming)) replica(s) not streaming"
fi
while [[ -z $rolling ]] && ((SECONDS < detect)); do
  sleep 1
  current=$(streams)
  while read -r slot pid; do
    if [[ -n $slot ]] && ! grep -qxF -- "$slot $pid" <<< "$current"; then
      rolling="replica stream $slot ended"
    fi
  done <<< "$initial"
done
if [[ -n $rolling ]]; then
  log "$rolling: waiting up to \${wait_limit}s for all $replicas replicas to stream from new pods"
  renewed=0
  while ((SECONDS < wait_limit)); do
    current=$(streams)
    renewed=0
    while read -r slot pid; do
      if [[ -n $slot ]] && ! grep -qxF -- "$slot $pid" <<< "$initial"; then
        renewed=$((renewed + 1))
      fi
    done <<< "$current"
    if ((renewed == replicas)); then
      break
    fi
    sleep 1
  done
  log "$renewed of $replicas replicas stream from new pods after \${SECONDS}s"
fi
`;

/**
 * primary-stop.sh (inline in the hook): bash, as the plain mode's images have it. Arguments:
 * --pgdata, --host (the socket directory), --port, --passfile (the replication role's, which the
 * bootstrap writes; the role's name is read from it too, as no Secret is mounted in the container
 * and none reaches the environment). It reads only pg_replication_slots.
 */
export function renderPrimaryStopScript(model: ClusterModel): string {
  // The replicas' slots by their common prefix, read when the hook runs: the replica count is no
  // part of the primary's template, so scaling the replicas does not restart the primary.
  const prefix = `${replicaSlotName(model.objectNames.replica)}_`;
  return `# primary-stop.sh of cluster "${model.name}", rendered by cdk8s-postgres: the primary's preStop hook.
# While the replicas' StatefulSet rolls, PostgreSQL keeps serving until every replica streams
# again from its new pod; then a fast shutdown (see lib/cluster/rollout-order.ts).
set -euo pipefail
grace=${model.terminationGracePeriodSeconds}
detect=${ROLLOUT_DETECT_SECONDS}
wait_limit=${waitSeconds(model)}
for arg in "$@"; do
  case $arg in
    --pgdata=*) pgdata=\${arg#*=} ;;
    --host=*) socket_dir=\${arg#*=} ;;
    --port=*) port=\${arg#*=} ;;
    --passfile=*) passfile=\${arg#*=} ;;
    *)
      echo "primary-stop: unknown argument $arg" >&2
      exit 2
      ;;
  esac
done
: "\${pgdata:?--pgdata}" "\${socket_dir:?--host}" "\${port:?--port}" "\${passfile:?--passfile}"
# The hook's output would be lost: it goes where PostgreSQL logs, when that is writable.
if [[ -w /proc/1/fd/2 ]]; then
  exec 2>> /proc/1/fd/2
fi
${logFunction('primary-stop')}

${PASSFILE_USER_FUNCTION}
user=$(passfile_user "$passfile")

# query <sql>: one query over the socket as the replication role; nothing on failure.
query() {
  PGPASSFILE=$passfile PGCONNECT_TIMEOUT=3 psql --no-psqlrc --tuples-only --no-align --quiet --field-separator=' ' \\
    --host="$socket_dir" --port="$port" --username="$user" --dbname=postgres --command="$1" || true
}
# The replicas' slots (pg_replication_slots is public; pg_stat_replication would hide the
# walsender's state from this role). A removed replica's slot stays until dropped, and counts.
replica_slots="slot_type = 'physical' AND starts_with(slot_name, '${prefix}')"
# streams: "slot pid" of each replica streaming through its slot now.
streams() {
  query "SELECT slot_name, active_pid FROM pg_replication_slots WHERE active AND $replica_slots ORDER BY 1"
}

replicas=$(query "SELECT count(*) FROM pg_replication_slots WHERE $replica_slots")
replicas=\${replicas:-0}
${WAIT_FOR_REPLICAS}timeout=$((grace - SECONDS - 5))
log "fast shutdown within \${timeout}s"
exec pg_ctl stop --pgdata="$pgdata" --mode=fast --wait --timeout="$((timeout > 1 ? timeout : 1))"
`;
}

/** What an HA member's container gets: its pod's template revision, and the preStop hook of a leader. */
export function leaderHandoverHook(model: ClusterModel): { env: k8s.EnvVar[]; lifecycle: k8s.Lifecycle } {
  return {
    env: [{ name: TEMPLATE_REVISION_ENV, valueFrom: { fieldRef: { fieldPath: `metadata.labels['${TEMPLATE_REVISION_LABEL}']` } } }],
    lifecycle: { preStop: { exec: { command: ['python3', '-c', renderLeaderHandoverScript(model), `--port=${model.highAvailability!.restApiPort}`] } } },
  };
}

/**
 * leader-handover.py (inline in the hook): Python 3, which every Patroni image has, and only its
 * standard library. Argument: --port, the REST API's. A member that is not the leader does
 * nothing; the leader asks its own REST API (HTTPS with the cluster's TLS, unverified: it is the
 * pod's own loopback) for a switchover, with the REST API's credentials from the mounted Secret,
 * to each healthy candidate in turn until one is accepted: newer template first, then the sync
 * standby (the only one Patroni accepts in synchronous mode), then the least lag. The hook never
 * fails: without a switchover, Patroni stops as it always did and the others elect a leader.
 */
export function renderLeaderHandoverScript(model: ClusterModel): string {
  const scheme = model.tls ? 'https' : 'http';
  // The switchover must end in time for Patroni's own shutdown.
  const deadline = Math.max(5, Math.floor((model.terminationGracePeriodSeconds * 2) / 3));
  return `# leader-handover.py of cluster "${model.name}", rendered by cdk8s-postgres: the HA pod's preStop hook.
# The leader switches over to a healthy replica, preferring one on a newer pod template, before
# Patroni stops (see lib/cluster/rollout-order.ts).
TAG = 'leader-handover'
${PATRONI_REST_PYTHON}
DEADLINE = time.monotonic() + ${deadline}
PORT = next(arg.split('=', 1)[1] for arg in sys.argv[1:] if arg.startswith('--port='))
API = '${scheme}://127.0.0.1:' + PORT


def api(path, body=None):
    return call(API + path, 'GET' if body is None else 'POST', body, DEADLINE - time.monotonic())


def main():
    status, body = api('/cluster')
    if status != 200:
        log('no cluster status (' + str(status) + '): nothing handed over')
        return
    members = json.loads(body).get('members', [])
    if not any(m['name'] == ME and m['role'] == 'leader' for m in members):
        return
    for candidate in candidates(members):
        if time.monotonic() >= DEADLINE:
            break
        status, body = api('/switchover', {'leader': ME, 'candidate': candidate['name']})
        if status == 200:
            log('switched over to ' + candidate['name'] + ' (template ' + str(candidate.get('tags', {}).get('${TEMPLATE_TAG}')) + ')')
            return
        log('switchover to ' + candidate['name'] + ' refused (' + str(status) + '): ' + body.strip())
    log('no switchover: Patroni stops as the leader and the others elect one')


main()
`;
}
