import { IConstruct } from 'constructs';
import { PostgresCredentials } from './credentials';
import { EndpointBindOptions, EndpointBinding } from './endpoint-binding';
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
 * Where a PostgreSQL cluster takes connections and what it does for the clients in front of it:
 * what a pooler or a balancer needs to front it. Implemented by `PostgresStatefulCluster`,
 * `PgpoolBalancer` and `ExternalPostgres` (an operator-managed or any other cluster known by its
 * Service and Secret names), and by any class of your own: the constructs in front know it
 * through this interface only.
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
   * The application_name one replica behind `readOnlyHost` streams under, a replica that always
   * comes back (a StatefulSet's first): Pgpool-II detaches the replica Service when its health
   * check fails and takes it back (auto_failback) once that replica streams again. Undefined
   * when no such replica is known; Pgpool-II then never detaches the replica Service.
   */
  readonly readOnlyApplicationName?: string;
  /**
   * The superuser's Secret, which the constructs in front refuse for their own logins; undefined
   * when it is not known (an operator-managed cluster whose Secret the app does not name).
   */
  readonly superuserCredentials?: PostgresCredentials;
  /** The pods behind both Services, which clients' NetworkPolicies let them reach on `port`. */
  readonly serverPods: NetworkPeer;
  /**
   * Whether the endpoint takes TLS connections, with or without a CA to verify its certificate:
   * clients in front then insist on TLS (sslmode require, verify-full with a CA).
   */
  readonly encrypted: boolean;
  /**
   * The CA that signs the Services' certificates, which clients in front verify them with
   * (sslmode verify-full); undefined when the endpoint has no TLS or a certificate nobody signed.
   */
  readonly certificateAuthority?: CertificateAuthority;

  /**
   * Admits these clients to the database port, where the endpoint renders a NetworkPolicy;
   * poolers and balancers call it for their backend.
   * @param peers the clients' pods or networks
   */
  allowClients(...peers: NetworkPeer[]): void;

  /**
   * Binds a client in front (a pooler, a balancer) to this endpoint: the endpoint creates the
   * roles, installs the password lookup and counts the connections the client asks for, as far
   * as it can, and answers what it did. A client may bind more than once (a role added later
   * for an exporter); each call adds to the last.
   * @param client the construct in front, whose path names it in the endpoint's errors
   * @param options the roles, the password lookup and the connections the client asks for
   */
  bind(client: IConstruct, options: EndpointBindOptions): EndpointBinding;
}
