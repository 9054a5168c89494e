import { IConstruct } from 'constructs';
import { propError } from './errors';
import { requireInteger } from './validation';

/**
 * A role's attributes, set to the declared state at every start of the primary: an attribute
 * removed from the props goes back to its default there. SUPERUSER and REPLICATION are not
 * among them: the library gives them to its own roles only and leaves other roles' as they are.
 */
export interface RoleAttributes {
  /**
   * CREATEDB: the role may create databases.
   * @default false
   */
  readonly createDb?: boolean;
  /**
   * CREATEROLE: the role may create, alter and drop roles that are not superusers.
   * @default false
   */
  readonly createRole?: boolean;
  /**
   * BYPASSRLS: row-level security policies do not apply to the role.
   * @default false
   */
  readonly bypassRls?: boolean;
  /**
   * INHERIT: the role has the privileges of the roles it is a member of without SET ROLE.
   * @default true
   */
  readonly inherit?: boolean;
  /**
   * CONNECTION LIMIT: concurrent sessions of the role; -1 for no limit.
   * @default - no limit (-1)
   */
  readonly connectionLimit?: number;
  /**
   * VALID UNTIL: when the role's password stops working, as an ISO 8601 timestamp with its zone
   * (`<date>T00:00:00Z`, the date as year-month-day).
   * @default - the password never expires
   */
  readonly validUntil?: string;
}

/** An ISO 8601 timestamp with a zone, which PostgreSQL reads the same whatever the session's TimeZone. */
const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$/;

/** The attributes as ALTER ROLE options, each one stated so that a removed one is reverted. */
export function roleAttributeOptions(scope: IConstruct, prop: string, attributes: RoleAttributes = {}): string {
  const flag = (value: boolean | undefined, fallback: boolean, name: string) => ((value ?? fallback) ? name : `NO${name}`);
  const limit = requireInteger(scope, `${prop}.connectionLimit`, attributes.connectionLimit ?? -1, -1, 2 ** 31 - 1);
  return [
    flag(attributes.createDb, false, 'CREATEDB'),
    flag(attributes.createRole, false, 'CREATEROLE'),
    flag(attributes.bypassRls, false, 'BYPASSRLS'),
    flag(attributes.inherit, true, 'INHERIT'),
    `CONNECTION LIMIT ${limit}`,
    `VALID UNTIL '${validUntil(scope, `${prop}.validUntil`, attributes.validUntil)}'`,
  ].join(' ');
}

function validUntil(scope: IConstruct, prop: string, value: string | undefined): string {
  if (value === undefined) return 'infinity';
  if (typeof value !== 'string' || !ISO_TIMESTAMP.test(value) || !calendarDate(value)) {
    throw propError(scope, prop, value, 'is not an ISO 8601 timestamp with a zone',
      'write it as "2027-06-30T00:00:00Z" (or with an offset such as "+02:00")');
  }
  return value;
}

/** Whether the timestamp's date and time exist (no February 30th, no hour 24). */
function calendarDate(value: string): boolean {
  const [year, month, day, hour, minute] = value.split(/[-T:]/).map(Number);
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCMonth() === month - 1 && date.getUTCDate() === day && hour < 24 && minute < 60;
}
