import { CLUSTER_FILES, CLUSTER_PATHS } from './cluster-layout';
import { ClusterModel } from './cluster-model';
import { PATRONI_REST_PYTHON } from './patroni-rest-python';
import { TLS_FILES } from '../core/tls';

/**
 * The HA mode's settings agent: what makes a settings change of the props reach a running
 * cluster without rolling its pods (the pod template's checksum leaves out what it applies,
 * patroni-config.ts patroniRestartFiles). Patroni itself never rereads its mounted file, and
 * takes the settings every member must share only from its store. patroni-start.sh runs it in
 * the background before it execs Patroni; Patroni, the container's PID 1, reaps it should it
 * end (Patroni 3.0 and 4.0 act as init when they are PID 1), and a loop there starts it again.
 *
 * Every loop_wait seconds, talking to the pod's own REST API (and, for a restart, to the
 * member's API URL):
 * - patroni.yml's content changed (the kubelet swapped the ConfigMap volume's files): `POST
 *   /reload`, which applies the local parameters and pg_hba and flags `pending_restart`.
 * - On the leader only (a standby cluster's standby leader too), the store's dynamic configuration
 *   differs from patroni-dynamic.json: `PATCH /config` with the wanted values, `null` for a
 *   parameter the props no longer set, and for `standby_cluster` once the props drop `standby`:
 *   Patroni 3.0 and 4.0 then promote the standby leader.
 * - On the leader only, with every member running and streaming again (and a sync standby in
 *   synchronous mode): one member with `pending_restart` restarted (`POST /restart` with
 *   restart_pending), replicas first (the sync standby last); then the leader switches over to
 *   a replica that needs no restart (it demotes through a restart, with the new settings), or,
 *   with none, restarts in place. The one action per pass and the health gate before it keep
 *   restarts one at a time; every decision is taken from Patroni's state, so an agent that
 *   starts again (or a new leader's) goes on where the last one stopped.
 *
 * While majorUpgrade is set (its script is in the Scripts ConfigMap), the agent applies nothing:
 * the kubelet refreshes the old major's running pods with the new major's files too.
 *
 * A replica a restart left pending (its value below the leader's in pg_controldata: Patroni
 * starts it with the leader's higher max_connections until the leader restarts) is restarted
 * once per life of the leader's postmaster, which the agent remembers: then the leader, having no
 * replica to hand over to, restarts in place, and the replicas once more.
 */
/** The agent's Python after the shared REST functions; no value of the model in it. */
const AGENT_PYTHON = `import hashlib

CONFIG, DESIRED, PATRONI_PID = sys.argv[1], sys.argv[2], int(sys.argv[3])
# The REST API's port is the connect address's (the pod's name, or a test's loopback).
LOCAL = SCHEME + '://127.0.0.1:' + os.environ['PATRONI_RESTAPI_CONNECT_ADDRESS'].rsplit(':', 1)[1]


def remote():
    """Other members' APIs: verified against the cluster's CA (read at each call: it may be renewed) when it has
    one; a self-signed certificate only encrypts."""
    if not AUTHORITY:
        return LOOPBACK
    context = ssl.create_default_context(cafile=AUTHORITY)
    # Python 3.13's default also demands RFC 5280's extensions of the CA (key usage), which PostgreSQL,
    # Patroni and libpq do not: a CA they accept must do here too.
    context.verify_flags &= ~getattr(ssl, 'VERIFY_X509_STRICT', 0)
    return context


RUNNING = ('running', 'streaming')
# In the Scripts ConfigMap, beside this script, only while majorUpgrade is set.
UPGRADE_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), '${CLUSTER_FILES.majorUpgradeScript}')


def alive():
    try:
        os.kill(PATRONI_PID, 0)
        return True
    except OSError:
        return False


def get(url):
    status, body = call(url)
    try:
        return json.loads(body) if status == 200 else None
    except ValueError:
        return None


def digest():
    with open(CONFIG, 'rb') as file:
        return hashlib.sha256(file.read()).hexdigest()


# Sections the props own whole: one they no longer set is removed (standby_cluster's removal promotes a standby cluster).
OWNED = ('standby_cluster',)


def config_patch(current, desired):
    """The PATCH that makes the store's configuration the desired one: only the keys the props set; a parameter they
    no longer set is removed (null), and so is an owned section or a key of it."""
    patch = {key: value for key, value in desired.items() if key != 'postgresql' and current.get(key) != value}
    for key in OWNED:
        want, have = desired.get(key), current.get(key)
        if want is None and have is not None:
            patch[key] = None
        elif key in patch and isinstance(have, dict):
            patch[key] = dict(want, **{name: None for name in have if name not in want})
    want, have = desired.get('postgresql', {}), current.get('postgresql') or {}
    postgresql = {key: value for key, value in want.items() if key != 'parameters' and have.get(key) != value}
    want, have = want.get('parameters', {}), have.get('parameters') or {}
    parameters = {name: value for name, value in want.items() if have.get(name) != value}
    parameters.update({name: None for name in have if name not in want})
    if parameters:
        postgresql['parameters'] = parameters
    if postgresql:
        patch['postgresql'] = postgresql
    return patch


def describe(patch):
    """Names only: a parameter's value could be a secret."""
    postgresql = patch.get('postgresql', {})
    names = [key + (' (removed)' if patch[key] is None else '') for key in patch if key != 'postgresql'] + ['postgresql.' + key for key in postgresql if key != 'parameters']
    names += [name + (' (removed)' if value is None else '') for name, value in postgresql.get('parameters', {}).items()]
    return ', '.join(sorted(names))


class Agent:
    def __init__(self):
        self.seen = digest()
        # member -> the leader's postmaster start time when this agent restarted it.
        self.restarted = {}
        self.said = None
        # Whether this leader saw a member pending a restart since all last ran the settings.
        self.pending = False

    def say(self, message):
        """Logs a waiting message once, not at every pass."""
        if message != self.said:
            log(message)
        self.said = message

    def reload_on_change(self):
        current = digest()
        if current == self.seen:
            return
        status, body = call(LOCAL + '/reload', 'POST')
        if status in (200, 202):
            self.seen = current
            log('patroni.yml changed: reloaded')
        else:
            log('patroni.yml changed, reload refused (' + str(status) + '): ' + body.strip())

    def run_once(self):
        if os.path.exists(UPGRADE_SCRIPT):
            # The new major's files reach the running old major's pods too: nothing is applied
            # until majorUpgrade is removed (the pods then start again on the new files).
            return self.say('majorUpgrade is set: settings wait until it is removed')
        self.reload_on_change()
        cluster = get(LOCAL + '/cluster')
        members = (cluster or {}).get('members', [])
        me = next((m for m in members if m['name'] == ME), None)
        # A standby cluster's leader is its standby_leader (state streaming on Patroni 4): it applies the settings, and
        # the promotion.
        if not me or me['role'] not in ('leader', 'standby_leader') or me.get('state') not in RUNNING:
            return
        with open(DESIRED, encoding='utf-8') as file:
            desired = json.load(file)
        current = get(LOCAL + '/config')
        if current is None:
            return
        patch = config_patch(current, desired)
        if patch:
            status, body = call(LOCAL + '/config', 'PATCH', patch)
            log('dynamic configuration: ' + ('changed ' if status == 200 else 'change refused (' + str(status) + ') of ') + describe(patch))
            # The members take it in their next HA loop; restarts come at a later pass.
            return
        self.restart_one(cluster, members, me, desired)

    def restart_one(self, cluster, members, me, desired):
        pending = [m for m in members if m.get('pending_restart')]
        if not pending:
            if self.pending:
                log('every member runs the settings')
            self.pending, self.said = False, None
            return
        self.pending = True
        if cluster.get('pause'):
            return self.say('pending restarts wait: the cluster is paused')
        status = get(LOCAL + '/patroni') or {}
        streaming = {r.get('application_name') for r in status.get('replication', []) if r.get('state') == 'streaming'}
        replicas = [m for m in members if m is not me]
        waiting = [m['name'] for m in replicas if m.get('state') not in RUNNING or m['name'] not in streaming]
        if desired.get('synchronous_mode') and replicas and not any(m['role'] == 'sync_standby' for m in replicas):
            waiting.append('a sync standby')
        if waiting or 'postmaster_start_time' not in status:
            return self.say('pending restarts wait for ' + (', '.join(waiting) or 'the leader') + ' to run and stream')
        started = status['postmaster_start_time']
        todo = sorted((m for m in pending if m is not me and self.restarted.get(m['name']) != started),
                      key=lambda m: (m['role'] == 'sync_standby', m['name']))
        if todo:
            member = todo[0]
            log('restarting ' + member['name'] + ' (pending restart)')
            url = member['api_url'].rsplit('/', 1)[0] + '/restart'
            status, body = call(url, 'POST', {'restart_pending': True}, desired.get('primary_start_timeout', 300) + 60, remote())
            if status == 200:
                self.restarted[member['name']] = started
                return log('restarted ' + member['name'])
            # Tried again at the next pass; the leader waits: a replica that cannot start with the settings stops the rollout.
            return self.say('restart of ' + member['name'] + ' failed (' + str(status) + '): ' + body.strip())
        if not me.get('pending_restart'):
            return self.say('replicas still pending after their restart wait for the leader')
        ready = [m for m in candidates(replicas) if not m.get('pending_restart')]
        for candidate in ready:
            status, body = call(LOCAL + '/switchover', 'POST', {'leader': ME, 'candidate': candidate['name']}, 60)
            if status == 200:
                return self.say('pending restart of the leader: switched over to ' + candidate['name'])
            log('switchover to ' + candidate['name'] + ' refused (' + str(status) + '): ' + body.strip())
        if ready:
            return None
        self.say('restarting the leader in place: no replica runs the settings')
        status, body = call(LOCAL + '/restart', 'POST', {'restart_pending': True}, desired.get('primary_start_timeout', 300) + 60)
        return log('restart of the leader: ' + str(status) + ' ' + body.strip())


def main():
    agent = Agent()
    while alive():
        try:
            with open(DESIRED, encoding='utf-8') as file:
                interval = json.load(file).get('loop_wait', 10)
        except (OSError, ValueError):
            interval = 10
        time.sleep(interval)
        try:
            agent.run_once()
        except Exception as error:  # pylint: disable=broad-except
            log('pass failed: ' + repr(error))


main()
`;

export function renderPatroniSettingsAgent(model: ClusterModel): string {
  const scheme = model.tls ? 'https' : 'http';
  const authority = model.tls?.authority ? `${CLUSTER_PATHS.tlsDir}/${TLS_FILES.authority}` : '';
  return `# patroni-settings-agent.py of cluster "${model.name}", rendered by cdk8s-postgres: keeps the running
# cluster at the props' settings (see lib/cluster/patroni-settings-agent.ts).
# Arguments: the mounted patroni.yml, patroni-dynamic.json, and Patroni's PID (the agent ends with it).
TAG = 'settings-agent'
SCHEME = '${scheme}'
AUTHORITY = '${authority}'
${PATRONI_REST_PYTHON}
${AGENT_PYTHON}`;
}
