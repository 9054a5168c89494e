// The public API. Everything else under lib/ is internal and may change without notice.
export { PostgresCredentials } from './core/credentials';
export { IPostgresEndpoint } from './core/endpoint';
export { EndpointBindOptions, EndpointBinding, PostgresRole } from './core/endpoint-binding';
export { PasswordLookup } from './core/password-lookup';
export { ContainerResources } from './core/resources';
export { PodSpread, TopologySpread } from './core/scheduling';
export { PodPlacement, PodToleration, TaintEffect, TolerationOperator } from './core/placement';
export {
  LabelOperator, LabelRequirement, NodeAffinity, NodeAffinityTerm, NodeOperator, NodeRequirement, PodAffinityRules, PodAffinityTerm,
  PreferredNodeAffinityTerm, WeightedPodAffinityTerm,
} from './core/affinity';
export { WorkloadProps } from './core/user-metadata';
export { NetworkPeer, NetworkPolicyOptions } from './core/network-policy';
export { ExternalPostgres, ExternalPostgresProps } from './core/external-postgres';
export {
  MemoryCheck, PostgresDatabase, PostgresStatefulClusterProps, PostgresStorage, VolumeRetention,
} from './cluster/cluster-props';
export { PostgresqlSettings, SynchronousCommit, WalLevel } from './cluster/postgresql-settings';
export { SynchronousMethod, SynchronousReplication } from './cluster/synchronous-replication';
export { ApiServerAccess, HighAvailability } from './cluster/high-availability';
export { FailoverProfile } from './cluster/failover-profile';
export { MajorUpgrade, MajorUpgradeTransfer } from './cluster/major-upgrade';
export { PrimaryRecovery } from './cluster/primary-recovery';
export { PostgresNamedRole } from './cluster/named-roles';
export { PostgresExtension } from './cluster/extensions';
export { RoleAttributes } from './core/role-attributes';
export { PostgresTablespace } from './cluster/tablespaces';
export { HbaConnection, HbaMethod, HbaRule, IdentMapping } from './cluster/hba-rules';
export { Ensure } from './core/ensure';
export { LogAnalysis, LogReportServer } from './cluster/log-analysis';
export { CloneMethod, CloneOptions, SourceCluster, SourceRepository, SourceStreaming, StandbyOptions } from './cluster/source-cluster';
export { BackupOptions, BackupSchedule, BackupTuning, BackupType, RestoreOptions } from './backup/backup-props';
export { BackupRepository, BackupRepositoryOptions, RepositoryType } from './backup/backup-repository';
export { VolumeRepositoryProps } from './backup/volume-repository';
export { ObjectStoreRepositoryOptions, RepositoryCipher } from './backup/object-store';
export { S3Credentials, S3RepositoryProps, S3UriStyle } from './backup/s3-repository';
export { GcsCredentials, GcsKeyType, GcsRepositoryProps } from './backup/gcs-repository';
export { AzureCredentials, AzureKeyType, AzureRepositoryProps, AzureUriStyle } from './backup/azure-repository';
export { PostgresStatefulCluster } from './cluster/postgres-stateful-cluster';
export { EndpointRole } from './core/endpoint';
export { CertificateAuthority, CertificateIssuer, IssuerKind, SslMode, TlsOptions, TlsProtocolVersion } from './core/tls';
export { PgBouncerDatabase, PgBouncerPoolerProps } from './pooler/pgbouncer-props';
export { PgBouncerAuthType, PoolMode } from './pooler/pgbouncer-settings';
export { PgBouncerPooler } from './pooler/pgbouncer-pooler';
export { PgpoolBalancerProps, PgpoolUser } from './balancer/pgpool-props';
export { DisableLoadBalanceOnWrite, PgpoolConfigMode, PgpoolPasswordEncryption } from './balancer/pgpool-settings';
export { PgpoolBalancer } from './balancer/pgpool-balancer';
export { ConnectionDemand } from './core/connection-budget';
export { ExporterKind, IMonitorable, MonitoringProfile, ScheduledJobProfile } from './core/monitoring';
export { Sidecar } from './core/sidecars';
export { ExporterSidecarProps, ScrapeObject } from './exporter/exporter-props';
export { ExporterSidecar } from './exporter/exporter-sidecar';
export { BackupOverlay, BalancerOverlay, ClusterOverlay, ExporterOverlay, PoolerOverlay, StackOverlay } from './overlay/stack-overlay';
export { Overlays } from './overlay/overlays';
export { SchemaSources, SchemaValidator } from './testing/schema-validator';
export { PostgresTesting } from './testing/testing';
export { SecretCreator } from './core/secret-sources';
export { RequiredSecret, RequiredSecrets } from './testing/required-secrets';
export { ChartNamespace, ChartNamespaceProps, PodSecurityLevel } from './core/chart-namespace';
export {
  ClusterMode, RestartOrder, SettingAction, SettingChange,
} from './testing/change-impact/classify-setting';
export {
  Acknowledgement, ChangeImpactFinding, ChangeImpactOptions, ChangeImpactReport, ComponentImpact, FindingCategory, ObjectChange, PodRestart,
  StorageChange,
} from './testing/change-impact/report-types';
export { ChangeImpact } from './testing/change-impact/change-impact';
export { ParameterContext } from './core/parameter-context';
export { HealthStatus, StatusCheckOptions, StatusCredentials, StatusFinding, StatusReport } from './status/status-types';
export { StatusCheck } from './status/status-check';
