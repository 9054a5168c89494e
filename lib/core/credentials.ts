import { IConstruct } from 'constructs';
import { propError } from './errors';
import { validateDnsSubdomain } from './names';

/**
 * A reference to an existing Secret that holds a PostgreSQL role's name and password. The key
 * defaults are CloudNativePG's and Zalando's (`username`/`password`); Crunchy PGO v5's user
 * Secrets (`<cluster>-pguser-<user>`) keep the name under `user`, so give `usernameKey: 'user'`.
 * The library never reads or renders the password: pods read it from the Secret at run time.
 */
export interface PostgresCredentials {
  /** Name of the Secret, in the namespace the chart deploys to. */
  readonly secretName: string;
  /**
   * Key in the Secret whose value is the role name.
   * @default 'username'
   */
  readonly usernameKey?: string;
  /**
   * Key in the Secret whose value is the password.
   * @default 'password'
   */
  readonly passwordKey?: string;
}

/** Credentials with every default applied. */
export interface ResolvedCredentials {
  readonly secretName: string;
  readonly usernameKey: string;
  readonly passwordKey: string;
}

// Kubernetes' key rule (IsConfigMapKey): not ".", ".." nor starting with "..".
const SECRET_KEY = /^(?!\.\.?$)(?!\.\.)[-._a-zA-Z0-9]{1,253}$/;

/**
 * Every reference to an existing Secret goes through here: its name and the keys pods read,
 * defaults applied by the caller, checked as the API server would check them.
 * @param keys the keys by prop name (`passwordKey`, `key`, ...)
 */
export function resolveSecretKeys<K extends string>(scope: IConstruct, prop: string, secretName: string,
  keys: { [name in K]: string }): { readonly secretName: string } & { readonly [name in K]: string } {
  for (const [name, key] of Object.entries<string>(keys)) {
    if (typeof key !== 'string' || !SECRET_KEY.test(key)) {
      throw propError(scope, `${prop}.${name}`, key, 'is not a valid Secret key', 'use letters, digits, "-", "_" and ".", at most 253 characters');
    }
  }
  return { secretName: resolveSecretName(scope, `${prop}.secretName`, secretName), ...keys };
}

/** Checks the name of a Secret mounted whole (a kubernetes.io/tls Secret) and returns it. */
export function resolveSecretName(scope: IConstruct, prop: string, secretName: string): string {
  validateDnsSubdomain(scope, prop, secretName, 'Secret');
  return secretName;
}

/** Applies the defaults and checks the names are ones the API server accepts. */
export function resolveCredentials(scope: IConstruct, prop: string, credentials: PostgresCredentials): ResolvedCredentials {
  return resolveSecretKeys(scope, prop, credentials.secretName,
    { usernameKey: credentials.usernameKey ?? 'username', passwordKey: credentials.passwordKey ?? 'password' });
}

/**
 * Refuses a login of a construct in front of a backend that uses the backend's superuser Secret:
 * clients would log in as the superuser through it.
 * @param logins each login's prop and credentials (undefined when the prop is unset)
 */
export function refuseSuperuserLogins(scope: IConstruct, superuser: PostgresCredentials | undefined,
  logins: Array<{ readonly prop: string; readonly credentials?: PostgresCredentials }>, component: string): void {
  const taken = superuser && logins.find(({ credentials }) => credentials?.secretName === superuser.secretName);
  if (taken) {
    throw propError(scope, `${taken.prop}.secretName`, superuser!.secretName,
      `is the backend's superuser Secret: clients would log in as the superuser through the ${component}`,
      'give it the Secret of an ordinary role');
  }
}

/**
 * The credentials of a role that must keep its Secret to itself, such as a metrics exporter's:
 * refused when another login of the component already uses the Secret, which would gain the
 * role's rights or lend it its own.
 */
export function requireOwnSecret(scope: IConstruct, prop: string, credentials: PostgresCredentials,
  others: Array<Pick<PostgresCredentials, 'secretName'> | undefined>, component: string): ResolvedCredentials {
  const resolved = resolveCredentials(scope, prop, credentials);
  if (others.some((other) => other?.secretName === resolved.secretName)) {
    throw propError(scope, `${prop}.secretName`, resolved.secretName, `already holds another login of the ${component} or its backend's superuser`,
      'give the exporter a Secret of its own');
  }
  return resolved;
}
