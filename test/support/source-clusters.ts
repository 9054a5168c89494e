import { BackupRepository, SourceCluster } from '../../lib';

/** The source cluster `orders` of namespace `shop` the clone and standby tests copy or follow: a volume repository and streaming. */
export const SOURCE: SourceCluster = {
  name: 'orders',
  namespace: 'shop',
  repository: { repository: BackupRepository.volume(), tlsSecretName: 'orders-tls' },
  streaming: { replicationSecret: { secretName: 'orders-replication' }, certificateAuthority: { secretName: 'orders-ca' } },
};
const { repository: _repository, ...streamingOnly } = SOURCE;
const { streaming: _streaming, ...repositoryOnly } = SOURCE;
/** `SOURCE` reached by streaming only. */
export const STREAMING_ONLY: SourceCluster = streamingOnly;
/** `SOURCE` reached through its repository only. */
export const REPOSITORY_ONLY: SourceCluster = repositoryOnly;
