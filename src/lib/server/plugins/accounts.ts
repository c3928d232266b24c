/**
 * kinto.plugins.accounts: `/accounts` and `/accounts/{id}` with
 * bcrypt passwords, and the `account` authentication policy (Basic Auth checked against them).
 *
 * Who sees what (upstream's rules):
 * - administrators (a principal in `account_write_principals`) reach every account; the list is
 *   every account, and what they create belongs to its own `account:<id>`;
 * - an authenticated user reaches only the account named as their user id (a non-account user
 *   cannot create one under another name: "Username and account ID do not match.");
 * - anonymous callers may create accounts when `account_create_principals` allows it
 *   (PUT /accounts/<id>, or POST with data.id); reading the list needs credentials.
 * Accounts are stored with parent id = their own id, so each user's list holds one object.
 */
import {backendKind} from '../../config/backend-modules.js'
import {asList} from '../../config/settings.js'
import {
  ACCOUNT_ID_PATTERN,
  ACCOUNT_POLICY_NAME,
  ACCOUNT_RESOURCE,
  accountCacheKey,
  accountCacheTtl,
  accountPrincipal,
  accountValidationWarning,
  hashPassword,
  passwordLengthError,
  verifiedCacheValue,
  verifyPassword,
} from '../../accounts/index.js'
import {getOrNull, type KintoObject} from '../../storage/types.js'
import {basicCredentials, registerAuthenticationPolicy, type AuthenticationEnv, type AuthenticationPolicy, type BatchWrite} from '../auth.js'
import {EVERYONE, inheritanceTree, registerInheritance} from '../authorization.js'
import type {RequestContext} from '../context.js'
import {ERRNO, HttpError, invalid} from '../errors.js'
import {MAX_ID_LENGTH} from '../ids.js'
import {isPlainObject} from '../patch.js'
import type {ResourceDefinition} from '../resource/definition.js'
import {colanderStringError} from '../py-repr.js'
import {KintoError} from '../../errors.js'
import type {KintoPlugin} from './index.js'

const POLICY_CLASSES = ['kinto.plugins.accounts.AccountsPolicy', 'kinto.plugins.accounts.authentication.AccountsAuthenticationPolicy']

function storedAccount(env: AuthenticationEnv, username: string): Promise<KintoObject | null> {
  return getOrNull(env.storage, ACCOUNT_RESOURCE, username, username)
}

/**
 * upstream's account_check: the verification cache first, then bcrypt against the stored hash.
 *
 * A change or a deletion of the account forgets its verification, in the cache of the process that
 * made it. A process-local (memory) cache never hears of another process's (a worker's, another
 * host's, `kinto create-user`'s): there a verification is bound to the hash it was made against,
 * read again at each login (a read, not bcrypt), so a replaced or deleted one no longer matches.
 */
export async function checkAccountCredentials(username: string, password: string, env: AuthenticationEnv): Promise<boolean> {
  const cacheKey = accountCacheKey(env.settings, username)
  const ttl = accountCacheTtl(env.settings)
  let account: KintoObject | null | undefined
  let verifiedText = password
  if (env.cache.processLocal) {
    account = await storedAccount(env, username)
    if (account === null) return false
    verifiedText = `${String(account.password)}\n${password}`
  }
  const verified = verifiedCacheValue(cacheKey, verifiedText)
  if ((await env.cache.get(cacheKey)) === verified) {
    await env.cache.expire(cacheKey, ttl)
    return true
  }
  account ??= await storedAccount(env, username)
  if (account === null || !(await verifyPassword(password, account.password))) return false
  await env.cache.set(cacheKey, verified, ttl)
  return true
}

/** `/accounts/<id>` (with or without the version prefix and a querystring): the id, else null. */
const ACCOUNT_PATH = /^(?:\/v\d+)?\/accounts\/([^/?#]+)\/?(?:[?#].*)?$/
const ACCOUNTS_PATH = /^(?:\/v\d+)?\/accounts\/?(?:[?#].*)?$/

/** The account a batch write creates, changes or deletes (null: none it can name). */
function writtenAccount(write: BatchWrite): string | null {
  const one = ACCOUNT_PATH.exec(write.path)
  if (one) {
    try {
      return decodeURIComponent(one[1])
    } catch {
      return one[1]
    }
  }
  if (write.method !== 'POST' || !ACCOUNTS_PATH.test(write.path)) return null
  const data = write.body?.data
  return isPlainObject(data) && typeof data.id === 'string' ? data.id : null
}

/** upstream's AccountsAuthenticationPolicy: user ids `account:<username>` whatever the policy's name. */
export function accountsPolicy(): AuthenticationPolicy {
  return {
    name: ACCOUNT_POLICY_NAME,
    async authenticate(headers, env) {
      const credentials = basicCredentials(headers.authorization)
      if (!credentials || !credentials.username) return null
      return (await checkAccountCredentials(credentials.username, credentials.password, env)) ? credentials.username : null
    },
    readsBatchWrites(headers, earlier) {
      const username = basicCredentials(headers.authorization)?.username
      return !!username && earlier.some((write) => writtenAccount(write) === username)
    },
    challenge: () => ({'WWW-Authenticate': 'Basic realm="Realm"'}),
  }
}

for (const dotted of POLICY_CLASSES) registerAuthenticationPolicy(dotted, () => accountsPolicy())

// ---------------------------------------------------------------------------------------------
// The account resource

function isAdministrator(ctx: RequestContext): boolean {
  const admins = asList(ctx.settings, 'account_write_principals')
  const principals = ctx.knownIdentity?.principals ?? []
  return admins.some((p) => principals.includes(p))
}

/** The user id without its policy prefix (upstream's selected_userid). */
function selectedUserId(ctx: RequestContext): string | null {
  const userId = ctx.knownIdentity?.userId
  if (!userId) return null
  return userId.slice(userId.indexOf(':') + 1)
}

/**
 * The parent of an anonymous list (GET, HEAD or DELETE /accounts without credentials): no account
 * has it (it is no account id). Upstream checks the permission before it looks for whose accounts
 * to list: a caller refused there gets the usual 401 (errno 104, WWW-Authenticate); one let through
 * (account_create_principals has system.Everyone, or an account is shared with everyone) gets
 * "Cannot read accounts." from init(), which runs after the check.
 */
const ANONYMOUS_LIST = '/accounts'

/** `data.id` of a POST body (anonymous or administrator creation). */
function postedId(ctx: RequestContext): string {
  let body: unknown
  try {
    body = ctx.body()
  } catch {
    body = undefined
  }
  const id = isPlainObject(body) && isPlainObject(body.data) ? body.data.id : undefined
  if (id !== undefined && id !== null) return String(id)
  if (ctx.method === 'POST') throw invalid('body', 'data.id', 'data.id in body: Required')
  return ANONYMOUS_LIST
}

/** upstream's Account.get_parent_id. */
function accountParentId(params: Record<string, string>, ctx: RequestContext): string {
  const plural = ctx.service?.endpointType === 'plural'
  if (isAdministrator(ctx)) {
    if (plural) return ctx.method === 'POST' ? postedId(ctx) : '*'
    return params.id
  }
  const selected = selectedUserId(ctx)
  if (selected !== null) return selected
  if (params.id !== undefined) return params.id
  return postedId(ctx)
}

export const accountResource: ResourceDefinition = {
  name: 'account',
  pluralPath: '/accounts',
  objectPath: '/accounts/{id}',
  permissions: ['read', 'write'],
  dataRequired: true,
  parentId: accountParentId,
  // Each account is its own parent: `/accounts/<id>` is stored under <id>.
  storedParentId: (params) => params.id,
  async init(r) {
    if (r.parentId === ANONYMOUS_LIST) throw new HttpError(401, {errno: ERRNO.UNDEFINED, error: 'Cannot read accounts.'})
  },
  writerPrincipal(r, caller) {
    // Anonymous and administrator creations belong to the account itself.
    if (caller === EVERYONE || isAdministrator(r.ctx)) return accountPrincipal(r.parentId)
    return caller
  },
  validateData(data, _r, prefix) {
    const error = colanderStringError(data.password, 'password')
    if (error !== undefined) throw invalid('body', `${prefix}password`, error)
    // A password being set (a stored hash is 60 bytes, never too long).
    const tooLong = passwordLengthError(data.password as string)
    if (tooLong !== undefined) throw invalid('body', `${prefix}password`, tooLong)
    return data
  },
  async processObject(r, obj, old) {
    if (typeof obj.password === 'string' && obj.password !== old?.password) obj.password = await hashPassword(obj.password)
    if (!('id' in obj)) throw invalid('body', 'data.id', 'Accounts must have an ID.')
    const ctx = r.ctx
    if (isAdministrator(ctx) || ctx.knownIdentity?.userId == null) return obj
    if (obj.id !== selectedUserId(ctx)) throw invalid('body', 'data.id', 'Username and account ID do not match.')
    return obj
  },
}

/** Upstream's ConfigurationError checks, as startup errors. */
function checkSettings(settings: Record<string, unknown>): void {
  let policy: string | undefined
  for (const [key, value] of Object.entries(settings)) {
    const m = /^multiauth\.policy\.(.*)\.use$/.exec(key)
    if (m && typeof value === 'string' && (value.endsWith('AccountsPolicy') || value.endsWith('AccountsAuthenticationPolicy'))) policy = m[1]
  }
  if (!policy) {
    throw new KintoError("kinto.plugins.accounts is included but no authentication policy uses it (no multiauth.policy.*.use setting names AccountsPolicy).", {
      code: 'KINTO_CONFIG_INVALID',
      hint: 'Add `multiauth.policies = account` and `multiauth.policy.account.use = kinto.plugins.accounts.AccountsPolicy` to [app:main].',
    })
  }
  const policies = asList(settings, 'multiauth.policies')
  const basic = policies.indexOf('basicauth')
  const account = policies.indexOf(policy)
  if (basic >= 0 && account >= 0 && basic < account) {
    throw new KintoError(`'basicauth' should not be mentioned before '${policy}' in 'multiauth.policies' setting.`, {
      code: 'KINTO_CONFIG_INVALID',
      hint: `Write \`multiauth.policies = ${policy} basicauth\`: Basic Auth accepts any credentials, so an account would never be recognised after it.`,
    })
  }
  const admins = new Set(asList(settings, 'account_write_principals'))
  const creators = asList(settings, 'account_create_principals').filter((p) => p !== EVERYONE && !admins.has(p))
  if (creators.length > 0) {
    throw new KintoError(
      `kinto.account_create_principals lists ${creators.join(', ')}, not in kinto.account_write_principals: they could only create their own account, which is probably not what you want.`,
      {code: 'KINTO_CONFIG_INVALID', hint: 'Add them to kinto.account_write_principals (to let them create accounts for others), or remove them.'},
    )
  }
}

export const accountsPlugin: KintoPlugin = {
  name: 'kinto.plugins.accounts',
  checkSettings,
  includeme(api) {
    const {runtime} = api
    checkSettings(runtime.settings)
    if (backendKind(runtime.settings.storage_backend) === 'memory') {
      runtime.logger.warn(
        {plugin: 'kinto.plugins.accounts'},
        'The accounts plugin with the memory storage backend loses every account when the server stops (and kinto create-user cannot reach it).',
      )
    }
    const validation = accountValidationWarning(runtime.settings)
    if (validation) runtime.logger.warn({plugin: 'kinto.plugins.accounts'}, validation)
    runtime.addCapability('accounts', {
      description: 'Manage user accounts.',
      url: 'https://kinto.readthedocs.io/en/latest/api/1.x/accounts.html',
      validation_enabled: false,
    })
    registerInheritance('root', {...inheritanceTree().root, 'account:create': {}})
    registerInheritance('account', {write: {account: ['write']}, read: {account: ['write', 'read']}})
    runtime.idGenerators.set('account', {
      name: 'AccountIdGenerator',
      // Accounts are named by their users: processObject refuses an account without an id first.
      generate: () => {
        throw invalid('body', 'data.id', 'Accounts must have an ID.')
      },
      match: (id) => typeof id === 'string' && id.length <= MAX_ID_LENGTH && ACCOUNT_ID_PATTERN.test(id),
    })
    api.addResource(accountResource)
    // A changed or deleted account must log in again: forget its verified password, once the
    // change is committed (the cache is outside the transaction).
    runtime.events.onChanged({resources: ['account'], actions: ['update', 'delete']}, (event, ctx) => {
      const cache = ctx.runtime.backends.cache
      for (const change of event.impacted) {
        const username = (change.old ?? change.new).id
        if (typeof username !== 'string') continue
        const key = accountCacheKey(ctx.settings, username)
        ctx.bound.afterTransaction.push(async () => {
          await cache.delete(key)
        })
      }
    })
  },
}
