/**
 * A real OpenID Connect provider for the openid tests: the npm `oidc-provider` (a certified
 * implementation) on a free loopback port, with confidential clients, accounts found by login
 * name (its development login and consent pages), and a count of the calls each route gets.
 * `browse()` is the "browser": it follows redirects, keeps the provider's cookies and submits
 * the HTML forms the provider shows.
 */
import {generateKeyPairSync} from 'node:crypto'
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'

export interface ClientConfig {
  client_id: string
  client_secret: string
  redirect_uris?: string[]
  grant_types?: string[]
  /** Access-token lifetime for this client, in seconds (default 3600). */
  accessTokenTtl?: number
}

export interface TestProvider {
  issuer: string
  /** Requests by path (`/me` is userinfo, `/token`, `/jwks`…). */
  hits: Map<string, number>
  hitsOf(path: string): number
  /** Resource indicator whose tokens are JWTs for `audience` (client credentials grant). */
  jwtResource: {resource: string; audience: string}
  /** Adds clients (the provider is rebuilt: sessions and tokens issued before are dropped). */
  configure(clients: ClientConfig[]): Promise<void>
  /** Revokes a token at the provider's revocation endpoint. */
  revoke(token: string, client: ClientConfig): Promise<number>
  /** A client-credentials access token for the JWT resource. */
  clientCredentialsToken(client: ClientConfig): Promise<string>
  close(): Promise<void>
}

const JWT_RESOURCE = {resource: 'https://kinto.test/', audience: 'kinto-api'}

/** Starts the provider's HTTP server (clients come with configure()). */
export async function startProvider(): Promise<TestProvider> {
  const {default: Provider, errors} = await import('oidc-provider')
  const {privateKey} = generateKeyPairSync('rsa', {modulusLength: 2048})
  const jwk = {...privateKey.export({format: 'jwk'}), kid: 'kinto-test-key', use: 'sig', alg: 'RS256'}
  const hits = new Map<string, number>()
  let handler: ((req: IncomingMessage, res: ServerResponse) => unknown) | null = null
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    hits.set(path, (hits.get(path) ?? 0) + 1)
    if (!handler) {
      res.statusCode = 503
      res.end()
      return
    }
    handler(req, res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  const provider: TestProvider = {
    issuer,
    hits,
    hitsOf: (path) => hits.get(path) ?? 0,
    jwtResource: JWT_RESOURCE,
    async configure(clients) {
      const ttls = new Map(clients.map((c) => [c.client_id, c.accessTokenTtl ?? 3600]))
      const oidc = new Provider(issuer, {
        clients: clients.map((c) => ({
          client_id: c.client_id,
          client_secret: c.client_secret,
          redirect_uris: c.redirect_uris ?? [],
          grant_types: c.grant_types ?? ['authorization_code'],
          response_types: (c.grant_types ?? ['authorization_code']).includes('authorization_code') ? ['code'] : [],
          // upstream Kinto sends client_id and client_secret in the token request body.
          token_endpoint_auth_method: 'client_secret_post',
        })),
        jwks: {keys: [jwk]},
        cookies: {keys: ['kinto-openid-tests']},
        // Expiry exactly at `exp` (the default tolerates 15 s of clock skew).
        clockTolerance: 0,
        claims: {openid: ['sub'], email: ['email', 'email_verified'], profile: ['name']},
        async findAccount(_ctx: unknown, id: string) {
          return {
            accountId: id,
            async claims() {
              return {sub: id, email: `${id}@example.com`, email_verified: true, name: `User ${id}`}
            },
          }
        },
        ttl: {
          AccessToken: (_ctx: unknown, _token: unknown, client: {clientId: string}) => ttls.get(client.clientId) ?? 3600,
          ClientCredentials: 600,
          Interaction: 600,
          Session: 3600,
          Grant: 3600,
          IdToken: 3600,
        },
        features: {
          devInteractions: {enabled: true},
          revocation: {enabled: true, allowedPolicy: () => true},
          clientCredentials: {enabled: true},
          resourceIndicators: {
            enabled: true,
            defaultResource: () => undefined,
            useGrantedResource: () => false,
            getResourceServerInfo: (_ctx: unknown, resource: string) => {
              if (resource !== JWT_RESOURCE.resource) throw new errors.InvalidTarget()
              return {scope: 'kinto', audience: JWT_RESOURCE.audience, accessTokenFormat: 'jwt', jwt: {sign: {alg: 'RS256'}}}
            },
          },
        },
      })
      handler = oidc.callback()
    },
    async revoke(token, client) {
      const res = await fetch(`${issuer}/token/revocation`, {
        method: 'POST',
        headers: {'content-type': 'application/x-www-form-urlencoded'},
        body: new URLSearchParams({token, client_id: client.client_id, client_secret: client.client_secret}),
        signal: AbortSignal.timeout(10_000),
      })
      return res.status
    },
    async clientCredentialsToken(client) {
      const res = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {'content-type': 'application/x-www-form-urlencoded'},
        body: new URLSearchParams({
          grant_type: 'client_credentials',
          resource: JWT_RESOURCE.resource,
          scope: 'kinto',
          client_id: client.client_id,
          client_secret: client.client_secret,
        }),
        signal: AbortSignal.timeout(10_000),
      })
      const body = (await res.json()) as {access_token?: string}
      if (!body.access_token) throw new Error(`client credentials refused: ${JSON.stringify(body)}`)
      return body.access_token
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
  return provider
}

export interface Visit {
  /** Every URL requested, in order. */
  urls: string[]
  /** The first Location that starts with `stopAt`. */
  location: string
}

/** A cookie-keeping "browser" that stops at a URL prefix (the app's callback). */
export class Browser {
  private readonly cookies = new Map<string, string>()

  /** The attribute values of `<input>`s in a form, and its action and method. */
  static parseForm(html: string, base: string): {action: string; method: string; fields: Record<string, string>} | null {
    const form = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html)
    if (!form) return null
    const attr = (tag: string, name: string) => new RegExp(`\\b${name}="([^"]*)"`, 'i').exec(tag)?.[1]
    const fields: Record<string, string> = {}
    for (const m of form[2].matchAll(/<input\b([^>]*)>/gi)) {
      const name = attr(m[1], 'name')
      if (name) fields[name] = decodeEntities(attr(m[1], 'value') ?? '')
    }
    return {
      action: new URL(decodeEntities(attr(form[1], 'action') ?? ''), base).href,
      method: (attr(form[1], 'method') ?? 'get').toUpperCase(),
      fields,
    }
  }

  private cookieHeader(): string {
    return [...this.cookies.entries()].map(([k, v]) => `${k}=${v}`).join('; ')
  }

  private keep(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';')
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      if (/expires=Thu, 01 Jan 1970/i.test(line) || value === '') this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
  }

  /**
   * Opens `url`, follows redirects, fills login forms with `login` and submits every form shown,
   * until a redirect to `stopAt`. Bounded: at most 20 requests.
   */
  async visit(url: string, stopAt: string, login: string): Promise<Visit> {
    const urls: string[] = []
    let next: {url: string; method: string; body?: string} = {url, method: 'GET'}
    for (let i = 0; i < 20; i++) {
      urls.push(next.url)
      const res = await fetch(next.url, {
        method: next.method,
        redirect: 'manual',
        headers: {
          cookie: this.cookieHeader(),
          ...(next.body !== undefined ? {'content-type': 'application/x-www-form-urlencoded'} : {}),
        },
        body: next.body,
        signal: AbortSignal.timeout(10_000),
      })
      this.keep(res)
      const location = res.headers.get('location')
      if (res.status >= 300 && res.status < 400 && location) {
        await res.arrayBuffer()
        const target = new URL(location, next.url).href
        if (target.startsWith(stopAt)) return {urls, location: target}
        next = {url: target, method: 'GET'}
        continue
      }
      const html = await res.text()
      const form = res.status === 200 ? Browser.parseForm(html, next.url) : null
      if (!form) throw new Error(`${next.method} ${next.url} answered ${res.status} without a form: ${html.slice(0, 300)}`)
      if ('login' in form.fields) form.fields.login = login
      if ('password' in form.fields) form.fields.password = 'any password'
      next = {url: form.action, method: form.method, body: new URLSearchParams(form.fields).toString()}
    }
    throw new Error(`no redirect to ${stopAt} after 20 requests: ${urls.join(' -> ')}`)
  }
}

function decodeEntities(text: string): string {
  return text.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#x27;|&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>')
}

/** The provider's answer a `/openid/<provider>/token` redirect carries (base64 JSON after `prefix`). */
export function tokensFrom(location: string, prefix: string): Record<string, unknown> {
  const encoded = decodeURIComponent(location.slice(prefix.length))
  return JSON.parse(Buffer.from(encoded, 'base64').toString('utf8')) as Record<string, unknown>
}
