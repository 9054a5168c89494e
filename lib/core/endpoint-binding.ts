import { ConnectionDemand } from './connection-budget';
import { PostgresCredentials } from './credentials';
import { PasswordLookup } from './password-lookup';
import { RoleAttributes } from './role-attributes';

/** A login role kept in step with its Secret: created if missing, its password set at every primary start. */
export interface PostgresRole {
  /** The role's Secret: the username is the role name, the password its login password. */
  readonly credentials: PostgresCredentials;
  /**
   * Roles it is granted, such as `pg_monitor` or `pg_read_all_data`.
   * @default - none
   */
  readonly memberOf?: string[];
  /**
   * Whether the role keeps its Secret to itself: synthesis fails if another role of the cluster
   * uses the same Secret, before or after (a metrics exporter's role must not be anyone else's).
   * @default false
   */
  readonly ownSecret?: boolean;
  /**
   * Its attributes (CREATEDB, CONNECTION LIMIT, VALID UNTIL...), set to this state at every start
   * of the primary; a role is declared with attributes once.
   * @default - every attribute's default: NOCREATEDB NOCREATEROLE NOBYPASSRLS INHERIT, no connection limit, no expiry
   */
  readonly attributes?: RoleAttributes;
}

/**
 * What a construct in front of an endpoint (a pooler, a balancer) asks of it when it binds: the
 * roles its daemon logs in as, a password lookup for its auth user, and the server connections
 * it may open. An endpoint does what it can of it and answers with an {@link EndpointBinding}.
 */
export interface EndpointBindOptions {
  /**
   * Login roles the client logs in to the endpoint as, with their memberships (a balancer's
   * sr_check user in `pg_monitor`, an exporter's own role).
   * @default - no roles
   */
  readonly roles?: PostgresRole[];
  /**
   * The role a pooler logs in as to look client passwords up: an endpoint that installs the
   * lookup function lets this role call it in every database.
   * @default - no password lookup
   */
  readonly passwordLookupUser?: PostgresCredentials;
  /**
   * Server connections the client may open on the primary and on each replica, one demand per
   * purpose (pooled users, reserve pool, health checks), which an endpoint that knows its limits
   * checks at synth.
   * @default - no connections counted
   */
  readonly connectionDemands?: ConnectionDemand[];
}

/** What an endpoint answers a client that binds to it: what it does with what the client asks. */
export interface EndpointBinding {
  /**
   * Whether the endpoint creates the roles clients ask for; false when they are someone else's
   * to create (an operator-managed cluster's administrator's).
   */
  readonly rolesCreated: boolean;
  /** Who installs the password lookup function that a pooler's default `auth_query` calls. */
  readonly passwordLookup: PasswordLookup;
  /**
   * With `PasswordLookup.UNAVAILABLE`: what a client that needs a lookup does instead, for its
   * error message ("set authQuery with an auth user the balancer lists in its users").
   * @default - set authQuery to a lookup the endpoint answers
   */
  readonly passwordLookupAlternative?: string;
  /** Whether the endpoint checks the connection demands of its clients against its limits at synth. */
  readonly connectionDemandChecked: boolean;
}
