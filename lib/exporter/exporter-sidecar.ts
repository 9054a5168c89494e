import { createHash } from 'crypto';
import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import { renderAlertRules } from './alert-rules';
import { renderDashboard } from './dashboards';
import { EXPORTER_FILES_DIR, EXPORTERS } from './exporter-kinds';
import { ExporterSidecarProps, ScrapeObject } from './exporter-props';
import { configChecksum } from '../core/checksum';
import { resolveCredentials } from '../core/credentials';
import { propError } from '../core/errors';
import { k8s } from '../core/kube';
import { ComponentLabels, metadataLabels } from '../core/labels';
import { ExporterKind, MonitoringProfile } from '../core/monitoring';
import { validateLabels } from '../core/names';
import { restrictedContainer } from '../core/pod-baseline';
import { PodVolume } from '../core/pod-volumes';
import { resolveResources, resourceRequirements } from '../core/resources';
import { validateUniqueNames } from '../core/unique-names';
import { requireEnum, requireInteger, validateImage, validatePort, wholeSeconds } from '../core/validation';

const METRICS_PORT_NAME = 'metrics';
const METRICS_PATH = '/metrics';
/** Grafana dashboard uids are at most 40 characters. */
const MAX_DASHBOARD_UID = 40;

/** A dashboard uid from a component's kind, namespace and name: cut to Grafana's limit with a digest of the whole, so two long names never share one. */
function dashboardUid(full: string): string {
  if (full.length <= MAX_DASHBOARD_UID) return full;
  return `${full.slice(0, MAX_DASHBOARD_UID - 9)}-${createHash('sha256').update(full).digest('hex').slice(0, 8)}`;
}

/**
 * A Prometheus exporter beside the daemon in every pod of a PostgresStatefulCluster
 * (postgres_exporter), a PgBouncerPooler (pgbouncer_exporter) or a PgpoolBalancer
 * (pgpool2_exporter), reading it over loopback as a role that may read statistics only.
 *
 * The pods get `prometheus.io/*` annotations and the component's Service a `metrics` port;
 * optionally a PodMonitor or ServiceMonitor, a PrometheusRule whose thresholds come from the
 * component's limits, and a Grafana dashboard.
 */
export class ExporterSidecar extends Construct {
  /** The daemon the exporter reads. */
  public readonly kind: ExporterKind;
  /** The port metrics are served on, in the pod and on the Service. */
  public readonly port: number;
  /** The image of the exporter container. */
  public readonly image: string;

  /**
   * @param scope the chart or construct to add the exporter's objects to
   * @param id the construct id
   * @param props the target and the exporter's Secret are required
   */
  constructor(scope: Construct, id: string, props: ExporterSidecarProps) {
    super(scope, id);
    const profile = props.target.monitoringProfile;
    const exporter = EXPORTERS[profile.kind];
    this.kind = profile.kind;
    this.image = validateImage(this, props.image ?? exporter.defaultImage, exporter.defaultImage);
    this.port = validatePort(this, 'port', props.port ?? exporter.defaultPort);
    const credentials = resolveCredentials(this, 'credentials', props.credentials);
    const resources = resolveResources(this, props.resources, { cpuRequest: '10m', cpuLimit: '100m', memoryLimit: '64Mi' });
    const percent = requireInteger(this, 'connectionAlertPercent', props.connectionAlertPercent ?? 80, 1, 100);
    const intervalSeconds = wholeSeconds(this, 'scrapeInterval', props.scrapeInterval) ?? 30;
    if (intervalSeconds < 1) {
      throw propError(this, 'scrapeInterval', `${intervalSeconds}s`, 'is shorter than a second', 'use Duration.seconds(10) or more');
    }
    const monitoringLabels = props.monitoringLabels ?? {};
    validateLabels(this, 'monitoringLabels', monitoringLabels);
    validateUniqueNames(this);

    props.target.grantMetricsAccess(credentials);
    const labels: ComponentLabels = { name: exporter.exporterName, instance: profile.name, component: 'metrics', partOf: profile.partOf };
    const metadata = (name: string, extra: { [key: string]: string }) =>
      ({ name, ...(profile.namespace ? { namespace: profile.namespace } : {}), labels: metadataLabels(labels, extra) });
    const base = { image: this.image, resources: resourceRequirements(resources) };
    const invocation = exporter.invocation(profile, this.port, credentials, base);
    const annotations = profile.annotations ?? {};
    const filesMetadata = {
      ...metadata(`${profile.name}-${exporter.exporterName}`, profile.labels ?? {}), ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
    };
    const files = filesVolume(invocation.files, `${exporter.exporterName}-files`, filesMetadata.name);
    props.target.addSidecar({
      container: restrictedContainer({
        name: exporter.exporterName,
        image: this.image,
        ...(invocation.command ? { command: invocation.command } : {}),
        args: invocation.args,
        env: invocation.env,
        volumeMounts: [...invocation.volumeMounts, ...files.mounts],
        ports: [{ name: METRICS_PORT_NAME, containerPort: this.port, protocol: 'TCP' }],
        resources: base.resources,
        // The landing page answers without touching the database. No readiness probe: an
        // exporter that is not ready must not take the daemon out of its Services.
        livenessProbe: { httpGet: { path: '/', port: k8s.IntOrString.fromString(METRICS_PORT_NAME) }, periodSeconds: 30, timeoutSeconds: 5, failureThreshold: 3 },
      }),
      servicePort: { name: METRICS_PORT_NAME, port: this.port, targetPort: k8s.IntOrString.fromString(METRICS_PORT_NAME), protocol: 'TCP' },
      podAnnotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(this.port), 'prometheus.io/path': METRICS_PATH, ...files.annotations },
      initContainers: invocation.initContainers,
      volumes: [...invocation.volumes, ...files.volumes],
    });
    // Only once the target took the sidecar: a refused exporter leaves no object behind.
    if (invocation.files) new k8s.KubeConfigMap(this, 'Files', { metadata: filesMetadata, data: { ...invocation.files } });

    const scrapeObject = requireEnum(this, 'scrapeObject', props.scrapeObject ?? ScrapeObject.NONE, { ScrapeObject });
    if (scrapeObject !== ScrapeObject.NONE) this.scrapeObject(scrapeObject, profile, metadata(`${profile.name}-metrics`, monitoringLabels), intervalSeconds);
    if (props.alerts) {
      new ApiObject(this, 'PrometheusRule', {
        apiVersion: 'monitoring.coreos.com/v1',
        kind: 'PrometheusRule',
        metadata: metadata(`${profile.name}-alerts`, monitoringLabels),
        spec: { groups: [{ name: `${profile.kind}-${profile.name}`, rules: renderAlertRules(profile, percent) }] },
      });
    }
    if (props.dashboard) {
      const uid = dashboardUid(`${profile.kind}-${profile.namespace ? `${profile.namespace}-` : ''}${profile.name}`);
      new k8s.KubeConfigMap(this, 'Dashboard', {
        metadata: metadata(`${profile.name}-dashboard`, { ...monitoringLabels, grafana_dashboard: '1' }),
        data: { [`${profile.kind}-${profile.name}.json`]: renderDashboard(profile, uid) },
      });
    }
  }

  private scrapeObject(kind: ScrapeObject, profile: MonitoringProfile, metadata: k8s.ObjectMeta, intervalSeconds: number): void {
    const endpoint = { port: METRICS_PORT_NAME, path: METRICS_PATH, interval: `${intervalSeconds}s` };
    const namespaceSelector = profile.namespace ? { namespaceSelector: { matchNames: [profile.namespace] } } : {};
    new ApiObject(this, kind, {
      apiVersion: 'monitoring.coreos.com/v1',
      kind,
      metadata,
      spec: kind === ScrapeObject.POD_MONITOR
        ? { selector: { matchLabels: profile.podSelector }, ...namespaceSelector, podMetricsEndpoints: [endpoint] }
        : { selector: { matchLabels: profile.serviceSelector }, ...namespaceSelector, endpoints: [endpoint] },
    });
  }
}

/** The exporter's own files from a ConfigMap, mounted read-only; the pods roll when they change, as the exporter reads them at its start. */
function filesVolume(files: { readonly [file: string]: string } | undefined, volumeName: string, configMapName: string):
{ mounts: k8s.VolumeMount[]; volumes: k8s.Volume[]; annotations: { [key: string]: string } } {
  if (!files) return { mounts: [], volumes: [], annotations: {} };
  const volume = PodVolume.configMap(volumeName, configMapName);
  return { mounts: [volume.readOnlyMount(EXPORTER_FILES_DIR)], volumes: [volume.volume], annotations: { 'checksum/exporter-files': configChecksum(files) } };
}
