import { IConstruct } from 'constructs';
import { PostgresCredentials } from './credentials';
import { NetworkPeer } from './network-policy';
import { CertificateAuthority } from './tls';

/** Which of a cluster's Services a client connects to. */
export enum EndpointRole {
  /** The primary, through the read-write Service. */
  READ_WRITE = 'read-write',
  /** The replicas, through the read-only Service (the primary when there are none). */
  READ_ONLY = 'read-only',
}

/**
 * Where a PostgreSQL cluster takes connections: what a pooler or a balancer needs to front it.
 * Implemented by `PostgresStatefulCluster` and by `ExternalPostgres` (an operator-managed or any
 * other cluster known by its Service and Secret names).
 */
export interface IPostgresEndpoint extends IConstruct {
  /** DNS name of the Service that reaches the primary. */
  readonly readWriteHost: string;
  /** DNS name of the Service that reaches the replicas (the primary's when there are none). */
  readonly readOnlyHost: string;
  /** TCP port of both Services. */
  readonly port: number;
  /** Number of replicas behind `readOnlyHost`; 0 when it is the primary. */
  readonly replicas: number;
  /**
   * The superuser's Secret, which the constructs in front refuse for their own logins; undefined
   * when it is not known (an operator-managed cluster whose Secret the app does not name).
   */
  readonly superuserCredentials?: PostgresCredentials;
  /** The pods behind both Services, which clients' NetworkPolicies let them reach on `port`. */
  readonly serverPods: NetworkPeer;
  /**
   * The CA that signs the Services' certificates, which clients in front verify them with
   * (sslmode verify-full); undefined when the endpoint has no TLS.
   */
  readonly certificateAuthority?: CertificateAuthority;

  /**
   * Admits these clients to the database port, where the endpoint renders a NetworkPolicy;
   * poolers and balancers call it for their backend.
   * @param peers the clients' pods or networks
   */
  allowClients(...peers: NetworkPeer[]): void;
}
