import { ResolvedCredentials } from './credentials';
import { k8s } from './kube';

/** Which of a credentials Secret's two keys. */
export type CredentialKey = 'username' | 'password';

/** A Secret's key as the source of an environment variable: the value never lands in the YAML. */
export function secretKeySource(secretName: string, key: string): k8s.EnvVarSource {
  return { secretKeyRef: { name: secretName, key } };
}

/** The username or password key of a credentials Secret, as an environment variable's source. */
export function credentialSource(credentials: ResolvedCredentials, key: CredentialKey): k8s.EnvVarSource {
  return secretKeySource(credentials.secretName, key === 'username' ? credentials.usernameKey : credentials.passwordKey);
}

/** An environment variable from a Secret's key. */
export function envFromSecret(name: string, secretName: string, key: string): k8s.EnvVar {
  return { name, valueFrom: secretKeySource(secretName, key) };
}

/** An environment variable from the username or password key of a credentials Secret. */
export function envFromCredentials(name: string, credentials: ResolvedCredentials, key: CredentialKey): k8s.EnvVar {
  return { name, valueFrom: credentialSource(credentials, key) };
}

/** Two variables, the role's name and its password, from a credentials Secret. */
export function credentialsEnv(usernameVariable: string, passwordVariable: string, credentials: ResolvedCredentials): k8s.EnvVar[] {
  return [envFromCredentials(usernameVariable, credentials, 'username'), envFromCredentials(passwordVariable, credentials, 'password')];
}

/** An environment variable from a ConfigMap's key, for a setting a scanner would misread as a secret in a literal. */
export function envFromConfigMap(name: string, configMapName: string, key: string): k8s.EnvVar {
  return { name, valueFrom: { configMapKeyRef: { name: configMapName, key } } };
}

/** Literal variables, in the order of `names` (a script's documented environment). */
export function literalEnv(names: readonly string[], values: { readonly [name: string]: string }): k8s.EnvVar[] {
  return names.map((name) => ({ name, value: values[name] }));
}
