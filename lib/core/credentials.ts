import { IConstruct } from 'constructs';
import { propError } from './errors';
import { validateDnsSubdomain } from './names';

/**
 * A reference to an existing Secret that holds a PostgreSQL role's name and password, with the
 * key names operators use (CloudNativePG, Zalando and Crunchy all write `username`/`password`).
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

const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;

/** Applies the defaults and checks the names are ones the API server accepts. */
export function resolveCredentials(scope: IConstruct, prop: string, credentials: PostgresCredentials): ResolvedCredentials {
  const resolved = {
    secretName: credentials.secretName,
    usernameKey: credentials.usernameKey ?? 'username',
    passwordKey: credentials.passwordKey ?? 'password',
  };
  validateDnsSubdomain(scope, `${prop}.secretName`, resolved.secretName, 'Secret');
  for (const key of ['usernameKey', 'passwordKey'] as const) {
    if (!SECRET_KEY.test(resolved[key]) || resolved[key].length > 253) {
      throw propError(scope, `${prop}.${key}`, resolved[key], 'is not a valid Secret key',
        'use letters, digits, "-", "_" and "."');
    }
  }
  return resolved;
}

/**
 * The credentials of a role that must keep its Secret to itself, such as a metrics exporter's:
 * refused when another login of the component already uses the Secret, which would gain the
 * role's rights or lend it its own.
 */
export function requireOwnSecret(scope: IConstruct, prop: string, credentials: PostgresCredentials,
  others: Array<Pick<PostgresCredentials, 'secretName'>>, component: string): ResolvedCredentials {
  const resolved = resolveCredentials(scope, prop, credentials);
  if (others.some((other) => other.secretName === resolved.secretName)) {
    throw propError(scope, `${prop}.secretName`, resolved.secretName, `already holds another login of the ${component} or its backend's superuser`,
      'give the exporter a Secret of its own');
  }
  return resolved;
}
