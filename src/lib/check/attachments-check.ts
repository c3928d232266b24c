/**
 * kinto_attachment in `kinto check`: its settings load, base_path is a folder the server can
 * write (or create), and base_url serves base_path: a probe file is written below base_path,
 * fetched at base_url, compared and removed.
 */
import {randomBytes} from 'node:crypto'
import {constants} from 'node:fs'
import {access, rm, stat, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {type KintoConfig, describeSettingSource} from '../config/index.js'
import {asList} from '../config/settings.js'
import {isKintoError} from '../errors.js'
import {readAttachmentSettings} from '../server/plugins/attachment/settings.js'
import {HttpClient, describeHttpError} from '../http.js'
import {type Finding, error, ok, warning} from './types.js'

export interface AttachmentsCheckOptions {
  timeoutMs?: number
}

/** The folder itself when it exists, else the nearest existing parent (the server creates the rest). */
async function writableFolder(folder: string): Promise<{ok: true; created: boolean} | {ok: false; problem: string}> {
  let current = folder
  for (;;) {
    try {
      const info = await stat(current)
      if (!info.isDirectory()) return {ok: false, problem: `${current} is not a folder`}
      await access(current, constants.W_OK | constants.X_OK)
      return {ok: true, created: current !== folder}
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EACCES' || code === 'EPERM') return {ok: false, problem: `${current} is not writable by this user`}
      if (code !== 'ENOENT' && code !== 'ENOTDIR') return {ok: false, problem: `${current}: ${(err as Error).message}`}
      const parent = path.dirname(current)
      if (parent === current) return {ok: false, problem: `no part of ${folder} exists`}
      current = parent
    }
  }
}

export async function checkAttachments(config: KintoConfig, options: AttachmentsCheckOptions = {}): Promise<Finding[]> {
  if (!asList(config.settings, 'includes').includes('kinto_attachment')) return []
  let settings
  try {
    settings = readAttachmentSettings(config.settings)
  } catch (err) {
    if (!isKintoError(err)) throw err
    return [error('attachments', `kinto_attachment: ${err.message}`, err.hint ?? 'Fix the kinto.attachment.* settings.')]
  }
  const findings: Finding[] = []
  const basePath = path.resolve(config.dir, settings.basePath)
  const where = describeSettingSource(config, 'attachment.base_path')
  const folder = await writableFolder(basePath)
  if (!folder.ok) {
    findings.push(
      error('attachments-base-path', `kinto.attachment.base_path ${basePath}${where ? ` (${where})` : ''} cannot take uploads: ${folder.problem}.`, `Create ${basePath} and give it to the user kinto start runs as (uploads fail otherwise).`),
    )
  } else {
    findings.push(ok('attachments-base-path', `kinto.attachment.base_path ${basePath} is writable${folder.created ? ' (it will be created on the first upload)' : ''}.`))
  }

  const baseUrl = settings.baseUrl
  if (!baseUrl) {
    findings.push(
      warning(
        'attachments-base-url',
        'kinto.attachment.base_url is empty: records hold relative locations, which clients resolve with the capability’s base_url (kinto.attachment.extra.base_url).',
        'Set kinto.attachment.base_url = https://<files host>/attachments/ unless clients are told another way.',
      ),
    )
    return findings
  }
  if (!/^https?:\/\//i.test(baseUrl)) {
    findings.push(warning('attachments-base-url', `kinto.attachment.base_url ${baseUrl} is not an absolute http(s) URL: it cannot be probed.`, 'Use an absolute URL such as https://kinto.example.com/attachments/.'))
    return findings
  }
  if (!folder.ok || folder.created) {
    findings.push(warning('attachments-base-url', `kinto.attachment.base_url ${baseUrl} was not probed: base_path holds no folder to write a probe file into.`, 'Fix base_path, then run kinto check again.'))
    return findings
  }
  const name = `kinto-check-${randomBytes(8).toString('hex')}.txt`
  const token = randomBytes(16).toString('hex')
  const probeFile = path.join(basePath, name)
  const url = new URL(name, baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`).href
  const client = new HttpClient({timeoutMs: options.timeoutMs ?? 5000, maxBodyBytes: 4096})
  try {
    await writeFile(probeFile, token, {mode: 0o644, flag: 'wx'})
    const res = await client.request(url)
    if (res.status === 200 && res.body === token) {
      findings.push(ok('attachments-base-url', `kinto.attachment.base_url ${baseUrl} serves the files of base_path.`))
    } else {
      findings.push(
        error(
          'attachments-base-url',
          `kinto.attachment.base_url ${baseUrl} does not serve base_path: a file written to ${basePath} answered ${res.status}${res.status === 200 ? ' with other content' : ''} at ${url}.`,
          'Serve base_path at base_url: `kinto deploy nginx` adds the location, or point base_url at kinto start (it serves base_url’s path itself).',
        ),
      )
    }
  } catch (err) {
    findings.push(
      error(
        'attachments-base-url',
        `kinto.attachment.base_url ${baseUrl} is not reachable: ${describeHttpError(err)}.`,
        'Start the web server that serves base_path (or kinto start when base_url points at it), or fix base_url.',
      ),
    )
  } finally {
    await rm(probeFile, {force: true})
    await client.close()
  }
  return findings
}
