import { readFileSync, writeFileSync } from 'fs';
import { join } from 'path';
import { runOk } from './postgres-bin';

/** The parts of a cert-manager Certificate's spec a test CA issues by. */
export interface CertificateSpec {
  readonly dnsNames: string[];
  /** @default - the first DNS name */
  readonly commonName?: string;
  /** @default ['server auth'] */
  readonly usages?: string[];
  /** IP subjectAltNames besides the DNS names, for daemons a test reaches at loopback addresses. */
  readonly ipAddresses?: string[];
}

/**
 * A test CA, and certificates issued by it as cert-manager's CA issuer would for a Certificate's
 * spec: ECDSA P-256, the dnsNames as subjectAltNames (wildcards included), the common name, and
 * the extended key usages of its usages; the CA in ca.crt.
 */
export class TestCa {
  public readonly certificate: string;

  constructor(private readonly dir: string, private readonly name: string) {
    runOk('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
      '-subj', `/CN=${name}`, '-keyout', this.file('ca.key'), '-out', this.file('ca.crt')]);
    this.certificate = readFileSync(this.file('ca.crt'), 'utf8');
  }

  /** A kubernetes.io/tls Secret's data. */
  public issue(id: string, spec: CertificateSpec): { [key: string]: string } {
    const usages = (spec.usages ?? ['server auth']).filter((usage) => usage.endsWith(' auth')).map((usage) => `${usage.split(' ')[0]}Auth`);
    const extensions = this.file(`${id}.ext`);
    const names = [...spec.dnsNames.map((name) => `DNS:${name}`), ...(spec.ipAddresses ?? []).map((ip) => `IP:${ip}`)];
    writeFileSync(extensions, `subjectAltName=${names.join(',')}\nextendedKeyUsage=${usages.join(',')}\n`);
    runOk('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${spec.commonName ?? spec.dnsNames[0]}`,
      '-keyout', this.file(`${id}.key`), '-out', this.file(`${id}.csr`)]);
    runOk('openssl', ['x509', '-req', '-in', this.file(`${id}.csr`), '-CA', this.file('ca.crt'), '-CAkey', this.file('ca.key'),
      '-CAcreateserial', '-days', '1', '-extfile', extensions, '-out', this.file(`${id}.crt`)]);
    return { 'tls.crt': readFileSync(this.file(`${id}.crt`), 'utf8'), 'tls.key': readFileSync(this.file(`${id}.key`), 'utf8'), 'ca.crt': this.certificate };
  }

  private file(name: string): string {
    return join(this.dir, `${this.name}-${name}`);
  }
}
