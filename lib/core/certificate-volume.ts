import { k8s } from './kube';
import { restrictedContainer } from './pod-baseline';
import { PodVolume } from './pod-volumes';
import { ResolvedTls, TLS_FILES } from './tls';

/**
 * The init container's script: a self-signed ECDSA P-256 certificate for the component's names,
 * made into an in-memory volume before the daemon starts, its key readable by the pod's user
 * only (PostgreSQL refuses a key others may read). A new key at every pod start; clients take
 * the certificate unverified (sslmode require), so its lifetime only has to outlast the pod.
 */
export const SELF_SIGNED_CERTIFICATE_SCRIPT = `set -euf
umask 077
names=""
for name in $CERTIFICATE_DNS_NAMES; do
  names="\${names:+$names,}DNS:$name"
done
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 -days 3650 \\
  -subj "/CN=$CERTIFICATE_COMMON_NAME" -addext "subjectAltName=$names" \\
  -keyout "$CERTIFICATE_DIR/${TLS_FILES.key}" -out "$CERTIFICATE_DIR/${TLS_FILES.certificate}"
`;

/** Where the init container writes; the daemon mounts the same volume where it reads its certificate. */
const CERTIFICATE_DIR = '/certificate';

/** A component's certificate as a pod volume, and the init containers that fill it. */
export interface CertificateVolume {
  readonly volume: PodVolume;
  /** Empty for a Secret; the certificate maker for a self-signed certificate. */
  readonly initContainers: k8s.Container[];
}

/** What a component asks of its certificate volume. */
export interface CertificateVolumeRequest {
  readonly volumeName: string;
  /** The Secret's keys to mount and their mode, with a certificate from a Secret. */
  readonly secretKeys: string[];
  readonly secretMode: number;
  /** The self-signed certificate's subject and names. */
  readonly commonName: string;
  readonly dnsNames: string[];
  readonly resources: k8s.ResourceRequirements;
}

/**
 * The volume of a component's certificate: the Secret's keys, or, without a Secret, an in-memory
 * volume an init container fills with a self-signed certificate, so TLS needs nothing to be set.
 */
export function certificateVolume(tls: ResolvedTls, request: CertificateVolumeRequest): CertificateVolume {
  if (tls.secretName !== undefined) {
    return { volume: PodVolume.secret(request.volumeName, tls.secretName, request.secretKeys, request.secretMode), initContainers: [] };
  }
  const volume = PodVolume.memory(request.volumeName, '1Mi');
  const initContainer = restrictedContainer({
    name: 'certificate',
    image: tls.selfSigned!.image,
    command: ['/bin/sh', '-c', SELF_SIGNED_CERTIFICATE_SCRIPT],
    env: [
      { name: 'CERTIFICATE_DIR', value: CERTIFICATE_DIR },
      { name: 'CERTIFICATE_COMMON_NAME', value: request.commonName },
      { name: 'CERTIFICATE_DNS_NAMES', value: request.dnsNames.join(' ') },
    ],
    resources: request.resources,
    volumeMounts: [volume.mount(CERTIFICATE_DIR)],
  });
  return { volume, initContainers: [initContainer] };
}
