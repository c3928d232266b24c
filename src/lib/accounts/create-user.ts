/**
 * `kinto create-user` (upstream's kinto/plugins/accounts/scripts.py): writes an account straight
 * into the storage of an ini — `{id, password: bcrypt}` with parent id = the username, replacing
 * an existing one — and gives `account:<name>` the write permission on `/accounts/<name>`, in one
 * transaction. With `account:<name>` in kinto.account_write_principals (as `kinto init` writes
 * for `admin`), that account is an administrator.
 */
import {createBackends} from '../backends.js'
import {backendKind, type KintoConfig} from '../config/index.js'
import {asBool, asList, asString} from '../config/settings.js'
import {describeDbUrl, parseDbUrl, withRegistry, type DatabaseRegistry} from '../db/index.js'
import {ExitCode, KintoError, UsageError} from '../errors.js'
import {withMigrationLocks} from '../schema/migrate.js'
import {requireSchema} from '../schema/require.js'
import {clientFor, configuredBackends} from '../schema/targets.js'
import {ObjectNotFoundError} from '../storage/types.js'
import {
  ACCOUNT_ID_PATTERN,
  ACCOUNT_RESOURCE,
  BCRYPT_MAX_PASSWORD_BYTES,
  accountCacheKey,
  accountCacheTtl,
  accountPrincipal,
  accountUri,
  hashPassword,
  passwordLengthError,
} from './index.js'

export interface CreateUserOptions {
  config: Pick<KintoConfig, 'settings' | 'dir' | 'path'>
  username: string
  password: string
  /** How long to wait for the lock of an embedded database another command holds (default 30 s). */
  lockTimeoutMs?: number
  /** The open databases of a running server (through its control channel): no lock taken, nothing closed. */
  registry?: DatabaseRegistry
}

export interface CreateUserResult {
  username: string
  /** `account:<username>` */
  userId: string
  /** False when an account of that name existed (its password is replaced). */
  created: boolean
  /** Whether kinto.account_write_principals makes this account an administrator. */
  administrator: boolean
  /** Where it was written (password masked). */
  database: string
  /** What the operator should know though the account was written (a login cache not cleared). */
  warnings: string[]
}

/** Checks that do not need the database: readonly, plugin, name, password, storage kind. */
export function checkCreateUser(config: CreateUserOptions['config'], username: string, password: string): void {
  const {settings} = config
  if (asBool(settings, 'readonly')) {
    throw new KintoError(`Cannot create a user: kinto.readonly is true in ${config.path}.`, {
      code: 'KINTO_READONLY',
      exit: ExitCode.CREATE_USER_READONLY,
      hint: 'Run it against the ini of a writable instance.',
    })
  }
  if (!asList(settings, 'includes').includes('kinto.plugins.accounts')) {
    throw new KintoError(`Cannot create a user: kinto.plugins.accounts is not in kinto.includes of ${config.path}.`, {
      code: 'KINTO_ACCOUNTS_NOT_INCLUDED',
      exit: ExitCode.CREATE_USER_NO_ACCOUNTS,
      hint: 'Add kinto.plugins.accounts to kinto.includes, with multiauth.policies = account and multiauth.policy.account.use = kinto.plugins.accounts.AccountsPolicy.',
    })
  }
  if (!ACCOUNT_ID_PATTERN.test(username)) {
    throw new UsageError(`'${username}' is not a valid username.`, {
      code: 'KINTO_USERNAME_INVALID',
      hint: `Usernames match ${ACCOUNT_ID_PATTERN.source} (a letter or digit, then letters, digits and + . @ _ -).`,
    })
  }
  if (password === '') {
    throw new UsageError('The password is empty.', {code: 'KINTO_PASSWORD_EMPTY', hint: 'Give a non-empty password (or --generate-password).'})
  }
  if (passwordLengthError(password) !== undefined) {
    throw new UsageError(`The password is longer than ${BCRYPT_MAX_PASSWORD_BYTES} bytes (UTF-8): bcrypt would ignore the rest.`, {
      code: 'KINTO_PASSWORD_TOO_LONG',
      hint: `Give a password of at most ${BCRYPT_MAX_PASSWORD_BYTES} bytes (or --generate-password).`,
    })
  }
  const storage = backendKind(settings.storage_backend)
  const url = asString(settings, 'storage_url') ?? ''
  const embedded = storage === 'postgresql' && /^pglite:/i.test(url.trim()) ? parseDbUrl(url, config.dir) : null
  if (storage === 'memory' || (embedded?.driver === 'pglite' && embedded.dataDir === null)) {
    throw new KintoError(`Cannot create a user: the storage of ${config.path} is in memory, so the account would vanish when this command exits.`, {
      code: 'KINTO_STORAGE_MEMORY',
      hint: 'Use a PostgreSQL or embedded (pglite:<folder>) storage, or create the account over HTTP: PUT /v1/accounts/<name> with {"data": {"password": "…"}}.',
    })
  }
}

export async function createUser(options: CreateUserOptions): Promise<CreateUserResult> {
  const {config, username, password} = options
  checkCreateUser(config, username, password)
  const settings = config.settings
  const storageUrl = asString(settings, 'storage_url') ?? ''
  const administrator = asList(settings, 'account_write_principals').includes(accountPrincipal(username))
  const hash = await hashPassword(password)

  // One process per embedded folder: wait for a migration, refuse while a server holds one.
  const databases = configuredBackends(settings, config.dir).filter((b) => b.kind === 'postgresql')
  const lockOpts = {lockTimeoutMs: options.lockTimeoutMs ?? 30_000, held: options.registry !== undefined}
  const warnings: string[] = []
  const created = await withRegistry(
    config.dir,
    (registry) =>
        withMigrationLocks(databases, registry, lockOpts, false, async () => {
        const storage = databases.find((b) => b.backend === 'storage')!
        await requireSchema(clientFor(registry, storage), 'storage', storage.database!, config.path)
        const permission = databases.find((b) => b.backend === 'permission')
        if (permission) await requireSchema(clientFor(registry, permission), 'permission', permission.database!, config.path)
        const backends = createBackends(settings, {registry, baseDir: config.dir})
        try {
          const isNew = await backends.transaction(async (tx) => {
            let existed = true
            try {
              await tx.storage.get(ACCOUNT_RESOURCE, username, username)
            } catch (err) {
              if (!(err instanceof ObjectNotFoundError)) throw err
              existed = false
            }
            await tx.storage.update(ACCOUNT_RESOURCE, username, username, {id: username, password: hash})
            await tx.permission.addPrincipalToAce(accountUri(username), 'write', accountPrincipal(username))
            return !existed
          })
          // A server may have verified the old password recently: forget it. A shared cache that
          // fails here leaves the old password working on the servers for a while: say so.
          await backends.cache.delete(accountCacheKey(settings, username)).catch((err: unknown) => {
            const reason = (err instanceof Error ? err.message : String(err)).replace(/\.$/, '')
            warnings.push(
              `The login cache could not be cleared (${reason}): a server that verified the old password in the last ` +
                `${accountCacheTtl(settings)} s (kinto.account_cache_ttl_seconds) may accept it until then.`,
            )
          })
          return isNew
        } finally {
          if (!options.registry) await backends.close().catch(() => undefined)
        }
      }),
    {borrowed: options.registry},
  )
  return {
    username,
    userId: accountPrincipal(username),
    created,
    administrator,
    database: describeDbUrl(storageUrl, config.dir),
    warnings,
  }
}
