import { SecretStore } from './cluster-harness';

/**
 * The Secrets of the HA suites' cluster `db` (its database `shop` owned by `shop_app`), which
 * each suite copies: some add the TLS Secret they issue.
 */
export const HA_SECRETS: SecretStore = {
  'db-superuser': { username: 'dbadmin', password: 'su-secret' },
  'db-replication': { username: 'replicator', password: 'repl-secret' },
  'shop-owner': { username: 'shop_app', password: 'app-secret' },
  'db-patroni-api': { username: 'patroni', password: 'api-secret' },
};

/** The database owner's login, from `shop-owner`. */
export const HA_OWNER = { user: 'shop_app', password: 'app-secret', database: 'shop' };
