/**
 * `sentry`: when `kinto.sentry_dsn` is set, the DSN has Sentry's form
 * (`https://<public key>@<host>/<project id>`) and its host answers HTTP from here (any answer:
 * reachable; none: the server would start and lose every report). Nothing is sent to Sentry.
 */
import {request as httpRequest} from 'node:http'
import {request as httpsRequest} from 'node:https'

import {type KintoConfig, describeSettingSource} from '../config/index.js'
import {asString} from '../config/settings.js'
import {parseSentryDsn} from '../monitoring/sentry.js'
import {type Finding, error, ok, warning} from './types.js'

export {parseSentryDsn}

function answers(origin: string, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const request = origin.startsWith('https:') ? httpsRequest : httpRequest
    const req = request(`${origin}/api/`, {method: 'GET', timeout: timeoutMs}, (res) => {
      res.resume()
      resolve(null)
    })
    req.on('timeout', () => req.destroy(new Error(`no answer within ${Math.round(timeoutMs / 100) / 10} s`)))
    req.on('error', (e) => resolve((e as NodeJS.ErrnoException).code ?? e.message))
    req.end()
  })
}

export async function checkSentry(config: KintoConfig, options: {timeoutMs?: number} = {}): Promise<Finding[]> {
  const dsn = (asString(config.settings, 'sentry_dsn') ?? '').trim()
  if (!dsn || dsn === 'None') return []
  const where = describeSettingSource(config, 'sentry_dsn')
  const parsed = parseSentryDsn(dsn)
  if ('problem' in parsed) {
    return [
      error(
        'sentry',
        `kinto.sentry_dsn${where ? ` (${where})` : ''} is not a Sentry DSN: ${parsed.problem}.`,
        'Copy the DSN from the Sentry project settings (Client Keys), or remove kinto.sentry_dsn.',
      ),
    ]
  }
  const failure = await answers(parsed.origin, options.timeoutMs ?? 5000)
  if (failure) {
    return [
      warning(
        'sentry',
        `Sentry at ${parsed.origin} does not answer from here (${failure}): the server would start, and errors would not be reported.`,
        'Check the DSN host and that this machine can reach it (proxy, firewall), or remove kinto.sentry_dsn.',
      ),
    ]
  }
  return [ok('sentry', `Errors are reported to Sentry at ${parsed.origin} (project ${parsed.project}).`)]
}
