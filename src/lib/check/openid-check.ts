/**
 * `openid`: each OpenID Connect policy of `multiauth.policies` has the settings start needs, its
 * issuer's discovery document can be read (what `kinto start` needs, or it refuses to start), and
 * a client secret for the login flow's code exchange. Secrets are never shown.
 */
import type {KintoConfig} from '../config/index.js'
import {asList, asString} from '../config/settings.js'
import {isKintoError} from '../errors.js'
import {policyOptions} from '../server/auth.js'
import {fetchOpenIdConfiguration} from '../server/plugins/openid/discovery.js'
import {openIdPolicy} from '../server/plugins/openid/policy.js'
import {type Finding, error, ok, warning} from './types.js'
import {docsFile} from '../version.js'

export async function checkOpenId(config: KintoConfig): Promise<Finding[]> {
  const findings: Finding[] = []
  let providers = 0
  for (const name of asList(config.settings, 'multiauth.policies')) {
    const setting = (key: string) => (asString(config.settings, `multiauth.policy.${name}.${key}`) ?? '').trim()
    if (!setting('use').endsWith('OpenIDConnectPolicy')) continue
    // Built as kinto start builds it: the settings it refuses (no issuer or client id, a
    // verification_ttl_seconds that is no whole number) are refused here with the same words.
    try {
      openIdPolicy(name, policyOptions(config.settings, name))
    } catch (err) {
      if (!isKintoError(err)) throw err
      findings.push(error('openid', `${err.message} The server refuses to start.`, err.hint ?? `Fix the multiauth.policy.${name}.* settings (see ${docsFile('auth.md')}).`))
      continue
    }
    // a provider start accepts: its login flow will run
    providers++
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
  // The login flow sends the tokens to the callback it is given: to any, unless cors_origins is
  // restricted (plugins/openid callbackAllowed).
  if (providers > 0 && asList(config.settings, 'cors_origins').includes('*')) {
    findings.push(
      warning(
        'openid-callback',
        'kinto.cors_origins is *: the OpenID login sends the tokens to any callback it is given, so a crafted login link hands them to another site.',
        "Set kinto.cors_origins to your front-ends' origins (e.g. https://app.example.com): callbacks are then accepted on those and on this server's own (the admin console).",
      ),
    )
  }
  return findings
}
