import { ResolvedCredentials } from './credentials';
import { k8s } from './kube';

/** A file of a projected volume from a Secret's key. */
export interface SecretFile {
  readonly key: string;
  /** The file's path inside the volume. */
  readonly path: string;
}

/** Some keys of a Secret as files of a projected volume. */
export function secretFiles(secretName: string, files: SecretFile[]): k8s.VolumeProjection {
  return { secret: { name: secretName, items: files.map(({ key, path }) => ({ key, path })) } };
}

/** A Secret's username and password keys as files `<dir>/username` and `<dir>/password` of a projected volume. */
export function secretProjection(dir: string, credentials: ResolvedCredentials): k8s.VolumeProjection {
  return secretFiles(credentials.secretName, [{ key: credentials.usernameKey, path: `${dir}/username` }, { key: credentials.passwordKey, path: `${dir}/password` }]);
}
