// The backup module: pgBackRest repositories, WAL archiving, scheduled backups and restore.
// The public API is the props; the functions below are what PostgresStatefulCluster wires in.
export { BackupOptions, BackupSchedule, BackupTuning, BackupType, RestoreOptions } from './backup-props';
export { BackupRepository, BackupRepositoryOptions, RepositoryType } from './backup-repository';
export { VolumeRepositoryProps } from './volume-repository';
export { ObjectStoreRepositoryOptions, RepositoryCipher } from './object-store';
export { S3Credentials, S3RepositoryProps, S3UriStyle } from './s3-repository';
export { GcsCredentials, GcsKeyType, GcsRepositoryProps } from './gcs-repository';
export { AzureCredentials, AzureKeyType, AzureRepositoryProps, AzureUriStyle } from './azure-repository';
export { BACKUP_FILES, BACKUP_PATHS, RESTORE_ENVIRONMENT } from './backup-layout';
export { BackupCluster, BackupModel, RepositoryModel, RestoreModel, ScheduleModel, resolveBackup } from './backup-model';
export {
  BackupNetworkRules, BackupParameter, InstancePodAdditions, backupCertificateDnsNames, backupNetworkRules, backupParameters,
  instancePodAdditions, renderBackupObjects,
} from './backup-objects';
export { RESTORE_SCRIPT_PATH, renderBackupScript, renderRestoreScript } from './backup-scripts';
export { renderBackupConf, renderInstanceConf, renderRepoHostConf } from './pgbackrest-conf';
