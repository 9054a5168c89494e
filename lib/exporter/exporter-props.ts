import { Duration } from 'cdk8s';
import { PostgresCredentials } from '../core/credentials';
import { IMonitorable } from '../core/monitoring';
import { ContainerResources } from '../core/resources';

/** The prometheus-operator object that tells Prometheus to scrape the exporter. */
export enum ScrapeObject {
  /** None: Prometheus finds the pods by their `prometheus.io/*` annotations. */
  NONE = 'none',
  /** A PodMonitor over the component's pods. */
  POD_MONITOR = 'PodMonitor',
  /** A ServiceMonitor over the component's Service (the headless one for a cluster). */
  SERVICE_MONITOR = 'ServiceMonitor',
}

/** Props of {@link ExporterSidecar}. */
export interface ExporterSidecarProps {
  /** The component to watch: a PostgresStatefulCluster, a PgBouncerPooler or a PgpoolBalancer. */
  readonly target: IMonitorable;
  /**
   * The exporter's own role: a Secret with `username` and `password` keys, used for nothing else.
   * The target grants it read access to statistics only (pg_monitor, stats_users, pool_passwd).
   */
  readonly credentials: PostgresCredentials;
  /**
   * Exporter image.
   * @default - the newest release whose metric names the alerts and dashboards were checked
   * against: prometheuscommunity/postgres-exporter:v0.20.1, prometheuscommunity/pgbouncer-exporter:v0.12.1
   * or pgpool/pgpool2_exporter:1.2.2
   */
  readonly image?: string;
  /**
   * Port the exporter serves metrics on, named `metrics` on the pod and the Service.
   * @default - the exporter's registered port: 9187, 9127 or 9719
   */
  readonly port?: number;
  /**
   * CPU and memory of the exporter container.
   * @default - 10m CPU request, 100m CPU limit, 64Mi memory
   */
  readonly resources?: ContainerResources;
  /**
   * A PodMonitor or ServiceMonitor for the prometheus-operator (its CRDs must be installed).
   * @default ScrapeObject.NONE
   */
  readonly scrapeObject?: ScrapeObject;
  /**
   * How often Prometheus scrapes the exporter, when a scrape object is rendered.
   * @default Duration.seconds(30)
   */
  readonly scrapeInterval?: Duration;
  /**
   * Whether to render a PrometheusRule with alerts whose thresholds come from the target's limits.
   * @default false
   */
  readonly alerts?: boolean;
  /**
   * Share of a limit (max_connections, max_client_conn, num_init_children) above which the
   * connection alerts fire, in percent.
   * @default 80
   */
  readonly connectionAlertPercent?: number;
  /**
   * Whether to render a Grafana dashboard in a ConfigMap labelled `grafana_dashboard: "1"`, which
   * Grafana's dashboard sidecar loads.
   * @default false
   */
  readonly dashboard?: boolean;
  /**
   * Labels of the PodMonitor, ServiceMonitor and PrometheusRule, such as the one a Prometheus
   * selects its rules and monitors by (`release: kube-prometheus-stack`).
   * @default - none beyond the library's own
   */
  readonly monitoringLabels?: { [key: string]: string };
}
