/**
 * `openid`: each OpenID Connect policy of `multiauth.policies` has an issuer and a client id, its
 * issuer's discovery document can be read (what `kinto start` needs, or it refuses to start), and
 * a client secret for the login flow's code exchange. Secrets are never shown.
 */
import type {KintoConfig} from '../config/index.js'
import {asList, asString} from '../config/settings.js'
import {isKintoError} from '../errors.js'
import {fetchOpenIdConfiguration} from '../server/plugins/openid/discovery.js'
import {type Finding, error, ok, warning} from './types.js'

export async function checkOpenId(config: KintoConfig): Promise<Finding[]> {
  const findings: Finding[] = []
  for (const name of asList(config.settings, 'multiauth.policies')) {
    const setting = (key: string) => (asString(config.settings, `multiauth.policy.${name}.${key}`) ?? '').trim()
    if (!setting('use').endsWith('OpenIDConnectPolicy')) continue
    const missing = ['issuer', 'client_id'].filter((key) => setting(key) === '')
    if (missing.length > 0) {
      findings.push(
        error(
          'openid',
          `The OpenID Connect policy '${name}' has no ${missing.map((k) => `multiauth.policy.${name}.${k}`).join(' and ')}: the server refuses to start.`,
          `Set ${missing.map((k) => `multiauth.policy.${name}.${k}`).join(' and ')} (see docs/auth.md).`,
        ),
      )
      continue
    }
    const issuer = setting('issuer')
    try {
      const discovery = await fetchOpenIdConfiguration(issuer)
      findings.push(ok('openid', `multiauth.policy.${name}: ${issuer} publishes its discovery document (userinfo: ${discovery.userinfo_endpoint}).`))
    } catch (err) {
      if (!isKintoError(err)) throw err
      findings.push(error('openid', `multiauth.policy.${name}: ${err.message} The server refuses to start.`, err.hint ?? 'Check the issuer.'))
      continue
    }
    if (setting('client_secret') === '') {
      findings.push(
        warning(
          'openid',
          `multiauth.policy.${name}.client_secret is not set: /v1/openid/${name}/token cannot trade login codes for tokens (tokens obtained elsewhere are still accepted).`,
          `Set multiauth.policy.${name}.client_secret to the client secret the provider gave for client ${setting('client_id')}.`,
        ),
      )
    }
  }
  return findings
}
