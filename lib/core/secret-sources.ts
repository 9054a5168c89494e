import { IConstruct } from 'constructs';

/** Who creates a Secret that the app's pods read. */
export enum SecretCreator {
  /** You, before `kubectl apply` (by hand, External Secrets, sealed-secrets, ...). */
  USER = 'you',
  /** cert-manager, from a Certificate of the app. */
  CERT_MANAGER = 'cert-manager',
  /** The operator that runs a cluster the app only fronts (an `ExternalPostgres`). */
  OPERATOR = 'operator',
}

/** A Secret a construct names that someone other than the user creates. */
export interface SecretSource {
  readonly namespace?: string;
  readonly secretName: string;
  readonly createdBy: SecretCreator;
}

const declared = new WeakMap<IConstruct, SecretSource[]>();

/**
 * Records that one of the Secrets a construct names is created by someone other than the user
 * (an operator's CA Secret), for the RequiredSecrets report.
 */
export function declareSecretSource(scope: IConstruct, source: SecretSource): void {
  declared.set(scope, [...declaredSecretSources(scope), source]);
}

/** The Secret sources a construct declared. */
export function declaredSecretSources(scope: IConstruct): SecretSource[] {
  return declared.get(scope) ?? [];
}
