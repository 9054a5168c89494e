import { Chart } from 'cdk8s';
import { Construct, IConstruct } from 'constructs';
import { PostgresCredentials, resolveCredentials } from './credentials';
import { IPostgresEndpoint } from './endpoint';
import { EndpointBindOptions, EndpointBinding } from './endpoint-binding';
import { propError } from './errors';
import { serviceHost, validateDnsLabel, validateServiceName } from './names';
import { NetworkPeer } from './network-policy';
import { PasswordLookup } from './password-lookup';
import { declareSecretSource, SecretCreator } from './secret-sources';
import { CertificateAuthority, resolveAuthority } from './tls';
import { requireInteger, validatePort } from './validation';

/** Props of {@link ExternalPostgres}. */
export interface ExternalPostgresProps {
  /** Name of the Service that reaches the primary (CloudNativePG: `<cluster>-rw`; Zalando: `<cluster>`). */
  readonly readWriteService: string;
  /**
   * Name of the Service that reaches the replicas (CloudNativePG: `<cluster>-ro`; Zalando: `<cluster>-repl`).
   * @default - the read-write Service: there are no replicas to read from
   */
  readonly readOnlyService?: string;
  /**
   * Namespace of both Services.
   * @default - the chart's namespace, or the short name when the chart has none
   */
  readonly namespace?: string;
  /**
   * TCP port of both Services.
   * @default 5432
   */
  readonly port?: number;
  /**
   * Number of replicas behind the read-only Service.
   * @default - 1 when `readOnlyService` is given, else 0
   */
  readonly replicas?: number;
  /**
   * The Secret holding the superuser's name and password. Nothing mounts or reads it: given, the
   * poolers, balancers and exporters in front refuse it for their own logins, so no client logs
   * in as the superuser through them.
   * @default - unknown here: only the library's own checks are missing
   */
  readonly superuserSecret?: PostgresCredentials;
  /**
   * The CA that signs the cluster's server certificates, in a Secret of the clients' namespace
   * (CloudNativePG: `<cluster>-ca`, key `ca.crt`); poolers and balancers in front then verify
   * the certificates.
   * @default - no CA: clients insist on TLS without verifying the certificate (sslmode require)
   */
  readonly certificateAuthority?: CertificateAuthority;
  /**
   * The cluster takes no TLS connections: poolers and balancers in front connect in plaintext.
   * Every operator named above turns TLS on by default.
   * @default false
   */
  readonly tlsDisabled?: boolean;
}

/**
 * A PostgreSQL cluster that this app does not deploy, known by its Service and Secret names:
 * an operator-managed cluster (CloudNativePG, Zalando, Crunchy) or any other. It renders no
 * Kubernetes objects; poolers and balancers accept it wherever they accept a cluster.
 */
export class ExternalPostgres extends Construct implements IPostgresEndpoint {
  public readonly readWriteHost: string;
  public readonly readOnlyHost: string;
  public readonly port: number;
  public readonly replicas: number;
  public readonly superuserCredentials?: PostgresCredentials;
  /** Every pod of the Services' namespace: the operator's pod labels are its own. */
  public readonly serverPods: NetworkPeer;
  public readonly encrypted: boolean;
  public readonly certificateAuthority?: CertificateAuthority;

  /**
   * @param scope the chart or construct to add the handle to
   * @param id the construct id
   * @param props the Service and Secret names of the cluster
   */
  constructor(scope: Construct, id: string, props: ExternalPostgresProps) {
    super(scope, id);
    validateServiceName(this, 'readWriteService', props.readWriteService);
    if (props.readOnlyService !== undefined) validateServiceName(this, 'readOnlyService', props.readOnlyService);
    const namespace = props.namespace ?? Chart.of(this).namespace;
    if (namespace !== undefined) validateDnsLabel(this, 'namespace', namespace);

    this.port = validatePort(this, 'port', props.port ?? 5432);
    this.replicas = requireInteger(this, 'replicas', props.replicas ?? (props.readOnlyService ? 1 : 0), 0);
    if (this.replicas > 0 && props.readOnlyService === undefined) {
      throw propError(this, 'replicas', this.replicas, 'needs a readOnlyService to reach those replicas',
        'set readOnlyService, or leave replicas unset');
    }
    this.readWriteHost = serviceHost(props.readWriteService, namespace);
    this.readOnlyHost = serviceHost(props.readOnlyService ?? props.readWriteService, namespace);
    this.superuserCredentials = props.superuserSecret && resolveCredentials(this, 'superuserSecret', props.superuserSecret);
    this.certificateAuthority = resolveAuthority(this, 'certificateAuthority', props.certificateAuthority);
    this.encrypted = !props.tlsDisabled;
    if (props.tlsDisabled && this.certificateAuthority) {
      throw propError(this, 'tlsDisabled', true, 'contradicts certificateAuthority, which clients would verify the TLS certificate with',
        'drop tlsDisabled, or drop certificateAuthority');
    }
    if (this.certificateAuthority) {
      declareSecretSource(this, { namespace, secretName: this.certificateAuthority.secretName, createdBy: SecretCreator.OPERATOR });
    }
    this.serverPods = namespace !== undefined ? { namespace } : { podSelector: {} };
  }

  /**
   * Does nothing: the operator's NetworkPolicies, if any, are its own to admit clients.
   * @param _peers the clients' pods or networks
   */
  public allowClients(..._peers: NetworkPeer[]): void {}

  /**
   * Records nothing: the roles and the password lookup function are the operator's or the
   * administrator's to create (the README lists what each construct needs), and the cluster's
   * connection limits are not known here, so no demand is checked.
   * @param _client the construct in front
   * @param _options what it asks for
   */
  public bind(_client: IConstruct, _options: EndpointBindOptions): EndpointBinding {
    return { rolesCreated: false, passwordLookup: PasswordLookup.INSTALLED_BY_OPERATOR, connectionDemandChecked: false };
  }
}
