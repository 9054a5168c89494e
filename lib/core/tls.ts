import { ApiObject, Chart } from 'cdk8s';
import { IConstruct } from 'constructs';
import { resolveSecretKeys } from './credentials';
import { IPostgresEndpoint } from './endpoint';
import { propError } from './errors';
import { k8s } from './kube';
import { ComponentLabels, metadataLabels } from './labels';
import { serviceHost, validateDnsSubdomain } from './names';
import { postgresVersion } from './postgres-versions';
import { UserMetadata } from './user-metadata';
import { requireEnum, validateImage } from './validation';
import { objectMeta } from './workload';

/** libpq's sslmode, which PgBouncer uses for its own TLS too. */
export enum SslMode {
  /** No TLS. */
  DISABLE = 'disable',
  /** TLS only if the other side insists. */
  ALLOW = 'allow',
  /** TLS when the other side offers it. */
  PREFER = 'prefer',
  /** TLS always, without checking the certificate. */
  REQUIRE = 'require',
  /** TLS always, with a certificate signed by the given CA. */
  VERIFY_CA = 'verify-ca',
  /** TLS always, with a certificate signed by the given CA for the host name connected to. */
  VERIFY_FULL = 'verify-full',
}

/** The oldest TLS version a component accepts; older ones have known weaknesses (RFC 8996). */
export enum TlsProtocolVersion {
  /** TLS 1.2 and 1.3: what every supported client library speaks. */
  TLS_1_2 = 'TLSv1.2',
  /** TLS 1.3 only. */
  TLS_1_3 = 'TLSv1.3',
}

/** The kind of a cert-manager issuer. */
export enum IssuerKind {
  /** An Issuer of the chart's namespace. */
  ISSUER = 'Issuer',
  /** A cluster-wide ClusterIssuer. */
  CLUSTER_ISSUER = 'ClusterIssuer',
}

/** A cert-manager issuer that signs the component's certificate. */
export interface CertificateIssuer {
  /** Name of the Issuer or ClusterIssuer. */
  readonly name: string;
  /**
   * Whether it is an Issuer of the namespace or a ClusterIssuer.
   * @default IssuerKind.ISSUER
   */
  readonly kind?: IssuerKind;
}

/**
 * TLS for a component's clients, on by default. Without `secretName` or `issuer`, each pod makes
 * a self-signed certificate when it starts: every hop is encrypted, but the components in front
 * cannot verify it (sslmode require). With a kubernetes.io/tls Secret in cert-manager's layout
 * (`tls.crt`, `tls.key` and `ca.crt`, the CA that the components in front verify the certificate
 * against), each hop uses TLS with full verification (sslmode verify-full): set it on every
 * construct of a chain, or once in a stack overlay.
 */
export interface TlsOptions {
  /**
   * The kubernetes.io/tls Secret with `tls.crt`, `tls.key` and `ca.crt`. Its certificate must
   * name the component's Services (the construct's `certificateDnsNames`).
   * @default - `<name>-tls` with `issuer`; without it, a self-signed certificate made at pod start
   */
  readonly secretName?: string;
  /**
   * Refuse clients that do not use TLS: only `hostssl` lines admit network clients.
   * @default true
   */
  readonly required?: boolean;
  /**
   * Have cert-manager issue and renew the Secret: renders a Certificate for the Service names.
   * Daemons read the certificate when they start, so roll the pods within the certificate's
   * lifetime (cert-manager renews at two thirds of it).
   * @default - no Certificate object: the Secret is made elsewhere
   */
  readonly issuer?: CertificateIssuer;
  /**
   * The oldest TLS version the component accepts from its clients. Pgpool-II 4.3 has no such
   * setting: it takes only TLS_1_2, and its OpenSSL sets the floor (TLS 1.2 in OpenSSL 3).
   * @default TlsProtocolVersion.TLS_1_2
   */
  readonly minimumProtocolVersion?: TlsProtocolVersion;
  /**
   * The image of the init container that makes the self-signed certificate: it needs `sh` and
   * `openssl` (the official PostgreSQL image has both). Only without `secretName` and `issuer`.
   * @default - the official PostgreSQL image of the cluster's major (of the default major for poolers and balancers)
   */
  readonly selfSignedImage?: string;
  /**
   * Turn TLS off: clients connect in plaintext and pg_hba/pool_hba lines are `host`. Only for
   * networks encrypted below PostgreSQL (a service mesh with mutual TLS, WireGuard between nodes).
   * @default false
   */
  readonly disabled?: boolean;
}

/** Where clients find the CA that signs a server's certificate. */
export interface CertificateAuthority {
  /** A Secret of the clients' namespace holding the CA certificate. */
  readonly secretName: string;
  /**
   * The Secret's key holding the PEM CA certificate.
   * @default 'ca.crt'
   */
  readonly key?: string;
}

/** TlsOptions resolved for one component. */
export interface ResolvedTls {
  /** The Secret with the certificate; undefined when each pod makes a self-signed one (selfSigned). */
  readonly secretName?: string;
  readonly required: boolean;
  readonly issuer?: Required<CertificateIssuer>;
  readonly minimumProtocolVersion: TlsProtocolVersion;
  /** What clients verify the certificate with, the Secret's own ca.crt; none for a self-signed certificate. */
  readonly authority?: Required<CertificateAuthority>;
  /** Without a Secret: the image of the init container that makes the pod's certificate. */
  readonly selfSigned?: { readonly image: string };
}

/** Has openssl and sh: ssl-cert, a dependency of Debian's PostgreSQL packages, brings openssl. */
const DEFAULT_SELF_SIGNED_IMAGE = postgresVersion().image.image;

/** The files of a component's certificate Secret, as the daemons read them. */
export const TLS_FILES = { certificate: 'tls.crt', key: 'tls.key', authority: 'ca.crt' } as const;

/**
 * Validates a component's TlsOptions: a certificate from a Secret, or a self-signed one made at
 * pod start when no Secret is named; undefined only when TLS is explicitly disabled.
 */
export function resolveTls(scope: IConstruct, options: TlsOptions = {}, componentName: string,
  defaultSelfSignedImage: string = DEFAULT_SELF_SIGNED_IMAGE): ResolvedTls | undefined {
  if (options.disabled) {
    const conflicting = (['secretName', 'issuer', 'required', 'minimumProtocolVersion', 'selfSignedImage'] as const)
      .find((key) => options[key] !== undefined);
    if (conflicting) {
      throw propError(scope, `tls.${conflicting}`, options[conflicting], 'is set while tls.disabled turns TLS off',
        `drop tls.disabled to keep TLS, or drop tls.${conflicting}`);
    }
    return undefined;
  }
  const common = {
    required: options.required ?? true,
    minimumProtocolVersion: requireEnum(scope, 'tls.minimumProtocolVersion', options.minimumProtocolVersion ?? TlsProtocolVersion.TLS_1_2, { TlsProtocolVersion }),
  };
  const issuer = options.issuer;
  if (options.secretName === undefined && issuer === undefined) {
    const image = validateImage(scope, options.selfSignedImage ?? defaultSelfSignedImage, defaultSelfSignedImage, 'tls.selfSignedImage');
    return { ...common, selfSigned: { image } };
  }
  if (options.selfSignedImage !== undefined) {
    throw propError(scope, 'tls.selfSignedImage', options.selfSignedImage, 'is only used for a self-signed certificate, and tls names a Secret',
      'drop tls.selfSignedImage, or drop tls.secretName and tls.issuer');
  }
  const secretName = options.secretName ?? `${componentName}-tls`;
  validateDnsSubdomain(scope, 'tls.secretName', secretName, 'Secret');
  if (issuer !== undefined) validateDnsSubdomain(scope, 'tls.issuer.name', issuer.name, 'cert-manager issuer');
  return {
    ...common,
    secretName,
    ...(issuer ? { issuer: { name: issuer.name, kind: requireEnum(scope, 'tls.issuer.kind', issuer.kind ?? IssuerKind.ISSUER, { IssuerKind }) } } : {}),
    authority: { secretName, key: TLS_FILES.authority },
  };
}

/** Validates a CertificateAuthority and fills in its key. */
export function resolveAuthority(scope: IConstruct, prop: string,
  authority: CertificateAuthority | undefined): Required<CertificateAuthority> | undefined {
  if (authority === undefined) return undefined;
  return resolveSecretKeys(scope, prop, authority.secretName, { key: authority.key ?? TLS_FILES.authority });
}

/**
 * The CA a component in front must mount to verify its backend, or undefined when the backend
 * has no TLS. A Secret is only mountable in its own namespace, so a backend of another chart's
 * namespace is refused with the way around it.
 */
export function backendAuthority(scope: IConstruct, backend: IPostgresEndpoint): Required<CertificateAuthority> | undefined {
  const authority = backend.certificateAuthority;
  if (!authority) return undefined;
  const backendNamespace = Chart.of(backend).namespace;
  const namespace = Chart.of(scope).namespace;
  if (backendNamespace !== namespace) {
    throw propError(scope, 'backend', backend.node.path,
      `has its CA in Secret "${authority.secretName}" of namespace "${backendNamespace ?? '(none)'}", which pods of namespace "${namespace ?? '(none)'}" cannot mount`,
      `copy ca.crt into a Secret of "${namespace ?? 'the client namespace'}" and front the cluster with ExternalPostgres and its certificateAuthority`);
  }
  return { secretName: authority.secretName, key: authority.key ?? TLS_FILES.authority };
}

/**
 * The names a Service answers to inside the cluster, as clients write them; `serviceHost`'s
 * form, which the library's own clients connect by, is always among them.
 */
export function serviceDnsNames(scope: IConstruct, serviceNames: string[], wildcardServiceNames: string[] = []): string[] {
  const namespace = Chart.of(scope).namespace;
  const forms = (name: string) => (namespace
    ? [name, `${name}.${namespace}`, serviceHost(name, namespace), `${serviceHost(name, namespace)}.cluster.local`] : [serviceHost(name)]);
  return [...serviceNames.flatMap(forms), ...wildcardServiceNames.flatMap(forms).map((name) => `*.${name}`)];
}

/**
 * A cert-manager Certificate, named after the component, keeping its TLS Secret issued for its
 * Service names; with `clientCommonName`, also a client certificate of that CN (pgBackRest's
 * servers and clients present the cluster's one certificate to each other).
 */
export function renderCertificate(scope: IConstruct, name: string, tls: ResolvedTls, dnsNames: string[], labels: ComponentLabels, user: UserMetadata,
  clientCommonName?: string): void {
  if (!tls.issuer || !tls.secretName) return;
  const metadata: k8s.ObjectMeta = objectMeta(scope, name, labels, user);
  // The unique-name check (validateUniqueNames) also refuses two Certificates for one Secret.
  new ApiObject(scope, 'Certificate', {
    apiVersion: 'cert-manager.io/v1',
    kind: 'Certificate',
    metadata,
    spec: {
      secretName: tls.secretName,
      secretTemplate: { labels: metadataLabels(labels, user.labels) },
      ...(clientCommonName ? { commonName: clientCommonName } : {}),
      dnsNames,
      issuerRef: { name: tls.issuer.name, kind: tls.issuer.kind, group: 'cert-manager.io' },
      // A new key at every renewal; ECDSA P-256 is what PostgreSQL, PgBouncer and Pgpool-II all read.
      privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
      usages: ['server auth', ...(clientCommonName ? ['client auth'] : []), 'digital signature'],
    },
  });
}
