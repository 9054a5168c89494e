import { PATRONI_API_SECRET_DIR, TEMPLATE_REVISION_ENV, TEMPLATE_TAG } from './patroni-start-script';

/**
 * Python 3 (standard library only, which every Patroni image has) shared by the HA pod's own
 * callers of Patroni's REST API: the leader's preStop hook (rollout-order.ts) and the settings
 * agent (patroni-settings-agent.ts). The script defines TAG (its log name) before this.
 *
 * - `log(message)`: a timestamped line on stderr, the container's log.
 * - `call(url, method, body, timeout, context)`: (status, body), status 0 when nothing answered;
 *   every call but a GET carries the REST API's credentials, read from the mounted Secret at
 *   each call (a rotated Secret is taken as the kubelet refreshes it). `LOOPBACK` is the context
 *   for the pod's own API: HTTPS unverified, as the pod calls itself.
 * - `candidates(members)`: the healthy replicas a switchover may go to, best first: on a newer
 *   pod template, then the sync standby (the only one Patroni accepts in synchronous mode), then
 *   the least lag.
 */
export const PATRONI_REST_PYTHON = `import base64
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request

ME = os.environ['PATRONI_NAME']
REVISION = os.environ.get('${TEMPLATE_REVISION_ENV}', '')
LOOPBACK = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
LOOPBACK.check_hostname = False
LOOPBACK.verify_mode = ssl.CERT_NONE


def log(message):
    print(time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()) + ' ' + TAG + ' ' + ME + ': ' + message, file=sys.stderr, flush=True)


def secret(key):
    with open(os.path.join(os.environ['CREDENTIALS_DIR'], '${PATRONI_API_SECRET_DIR}', key), encoding='utf-8') as file:
        return file.read().rstrip('\\n')


def call(url, method='GET', body=None, timeout=10, context=LOOPBACK):
    request = urllib.request.Request(url, method=method)
    if method != 'GET':
        login = base64.b64encode((secret('username') + ':' + secret('password')).encode()).decode()
        request.add_header('Authorization', 'Basic ' + login)
    if body is not None:
        request.add_header('Content-Type', 'application/json')
        request.data = json.dumps(body).encode()
    try:
        with urllib.request.urlopen(request, timeout=max(1, timeout), context=context if url.startswith('https') else None) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError as error:
        return 0, str(error)


def order(member):
    lag = member.get('lag')
    return (member.get('tags', {}).get('${TEMPLATE_TAG}') in (None, REVISION), member['role'] != 'sync_standby',
            lag if isinstance(lag, int) else float('inf'))


def candidates(members):
    return sorted((m for m in members if m['name'] != ME and m['role'] in ('replica', 'sync_standby', 'quorum_standby')
                   and m.get('state') in ('running', 'streaming') and not m.get('tags', {}).get('nofailover')), key=order)
`;
