/**
 * patroni-upgrade.py, the HA mode's major upgrade coordinator: run by patroni-upgrade.sh in every
 * member's upgrade init container, on the new image's Patroni (its own DCS classes, so the same
 * code speaks to Kubernetes ConfigMaps in production and to etcd in the e2e tests).
 *
 * `coordinate`: publishes this member's data state (pg_controldata of the old major, or empty) in
 * its member key (the pod's annotation on Kubernetes), then waits until every member of the
 * StatefulSet has published one, so no member runs Patroni on the old major any more and no
 * leader lock is held. Exactly one member is then elected, by the same rule in every pod: the
 * member whose data was shut down as a primary on the newest timeline at the highest checkpoint,
 * ahead of every other member's data. It prints `upgrade`; the others print `follow` once a
 * leader runs the new major (its REST API says so), and never before. Only members whose data is
 * the system the store names vote: an empty one, or one whose system the store no longer names
 * (the member elected has published its upgraded one), just waits for that leader. Anything else
 * (a crashed member, two primaries on the same timeline, a foreign system identifier) is
 * refused: nothing changes, and the rollback is to set the old version back.
 *
 * `initialize <old sysid> <new sysid>`: after pg_upgrade, points the store's initialize key at the
 * new data (Patroni exits on a data directory whose system identifier differs from it); nothing
 * when it already names the new one; refused when it names neither.
 */
export function renderPatroniUpgradeCoordinator(clusterName: string): string {
  return `# patroni-upgrade.py of cluster "${clusterName}", rendered by cdk8s-postgres: see patroni-upgrade.sh.\n${COORDINATOR}`;
}

const COORDINATOR = `import json
import ssl
import sys
import time
import urllib.request

from patroni.config import Config
from patroni.dcs import get_dcs

PUBLISH_EVERY_S = 2
REPORT_EVERY_S = 60


def log(message):
    print(time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()) + ' patroni-upgrade: ' + message, file=sys.stderr, flush=True)


def refuse(message):
    log('refused: ' + message)
    sys.exit(1)


def store(config_file):
    # The credentials file is not there yet (patroni-start.sh writes it), so no validation.
    config = Config(config_file, validator=None)
    return get_dcs(config.copy()), config['name']


def position(state):
    """Timeline, then checkpoint LSN: the order of two members' histories."""
    high, low = state['checkpoint'].split('/')
    return (int(state['timeline']), (int(high, 16) << 32) + int(low, 16))


def elect(states, initialize):
    """The member to upgrade, or a refusal; every member computes the same answer from the same states."""
    with_data = {name: s for name, s in states.items() if s['state'] != 'empty'}
    unclean = sorted(name for name, s in with_data.items() if s['state'] not in ('shut down', 'shut down in recovery'))
    if unclean:
        refuse('the data of ' + ', '.join(unclean) + ' was not shut down cleanly: set the old postgresVersion back, '
               'let Patroni recover it, then delete the pods again')
    foreign = sorted(name for name, s in with_data.items() if s['sysid'] != initialize)
    if foreign:
        refuse('the data of ' + ', '.join(foreign) + ' is not the cluster ' + str(initialize) + ' the store names')
    primaries = sorted((position(s), name) for name, s in with_data.items() if s['state'] == 'shut down')
    if not primaries:
        refuse('no member was shut down as the primary, so none holds every acknowledged commit')
    best, winner = primaries[-1]
    if len(primaries) > 1 and primaries[-2][0] == best:
        refuse(winner + ' and ' + primaries[-2][1] + ' were both primaries at ' + str(best))
    ahead = sorted(name for name, s in with_data.items() if name != winner and position(s) > best)
    if ahead:
        refuse(', '.join(ahead) + ' have data past ' + winner + "'s shutdown checkpoint")
    return winner


def leader_major(cluster):
    """The major of the leader's running server, from its REST API; None while there is none."""
    leader = cluster.leader
    if not leader or not leader.member.api_url or leader.member.data.get('state') != 'running':
        return None
    # The members' REST API serves the pods' certificate, which Patroni's own calls do not verify either.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(leader.member.api_url, timeout=5, context=context) as response:
            status = json.loads(response.read().decode('utf-8'))
    except Exception:
        return None
    if status.get('role') not in ('primary', 'master') or status.get('state') != 'running':
        return None
    return int(status.get('server_version', 0)) // 10000


def coordinate(dcs, name, state, members, new_major):
    reported = 0.0
    while True:
        cluster = dcs.get_cluster()
        dcs.touch_member({'state': 'stopped', 'role': 'uninitialized', 'upgrade': state})
        cluster = dcs.get_cluster()
        # Empty data has nothing to weigh; other data than the store's system means the member
        # elected has published its upgraded one (or this data is foreign): both wait for the leader.
        voter = state['state'] != 'empty' and str(state['sysid']) == str(cluster.initialize)
        if leader_major(cluster) == new_major:
            if not voter:
                return 'follow'
            refuse('a leader runs PostgreSQL ' + str(new_major) + ' with this data\\'s system identifier')
        published = {m.name: m.data['upgrade'] for m in cluster.members if m.name in members and 'upgrade' in m.data}
        missing = [m for m in members if m not in published]
        winner = None
        if voter and not missing and cluster.leader is None:
            winner = elect(published, str(cluster.initialize))
            if winner == name:
                return 'upgrade'
        if time.time() - reported > REPORT_EVERY_S:
            reported = time.time()
            if voter and missing:
                log('waiting for ' + ', '.join(missing) + ' to stop and reach this step: delete their pods (the leader\\'s last)')
            elif voter and cluster.leader is not None:
                log('waiting for the leader lock of ' + cluster.leader.name + ' to expire')
            else:
                log((winner or 'the member elected') + ' upgrades the data; waiting for it to lead on PostgreSQL ' + str(new_major))
        time.sleep(PUBLISH_EVERY_S)


def initialize(dcs, old, new):
    cluster = dcs.get_cluster()
    if str(cluster.initialize) == new:
        return
    if str(cluster.initialize) != old:
        refuse('the store names system ' + str(cluster.initialize) + ', neither the old ' + old + ' nor the new ' + new)
    if not dcs.initialize(create_new=False, sysid=new):
        refuse('could not write the new system identifier to the store')
    log('the store names the upgraded system ' + new)


def main(argv):
    dcs, name = store(argv[1])
    if argv[2] == 'coordinate':
        print(coordinate(dcs, name, json.loads(argv[3]), argv[4].split(), int(argv[5])))
    elif argv[2] == 'initialize':
        initialize(dcs, argv[3], argv[4])
    else:
        refuse('usage: patroni-upgrade.py <patroni.yml> coordinate <state> <members> <major> | initialize <old> <new>')


if __name__ == '__main__':
    main(sys.argv)
`;
