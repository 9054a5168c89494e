// The backup module: pgBackRest repositories, WAL archiving, scheduled backups and restore.
// The public API is the props; the functions below are what PostgresStatefulCluster wires in.
export {
  BackupOptions, BackupRepository, BackupRepositoryOptions, BackupSchedule, BackupType, RepositoryCipher, RepositoryType,
  RestoreOptions, S3Credentials, S3RepositoryProps, S3UriStyle, VolumeRepositoryProps,
} from './backup-props';
export { BACKUP_FILES, BACKUP_PATHS, RESTORE_ENVIRONMENT } from './backup-layout';
export { BackupCluster, BackupModel, RepositoryModel, RestoreModel, ScheduleModel, resolveBackup } from './backup-model';
export {
  BackupNetworkRules, BackupParameter, InstancePodAdditions, backupCertificateDnsNames, backupNetworkRules, backupParameters,
  instancePodAdditions, renderBackupObjects,
} from './backup-objects';
export { RESTORE_SCRIPT_PATH, renderBackupScript, renderRestoreScript } from './backup-scripts';
export { renderBackupConf, renderInstanceConf, renderRepoHostConf } from './pgbackrest-conf';
