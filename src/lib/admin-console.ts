/**
 * Which Kinto Admin build a server serves (kinto.plugins.admin), shared by the runtime and
 * `kinto check`: the folder named by `kinto.admin_assets_path`, else the console that
 * `npm run build` bundles from the kinto-admin npm package into dist/admin
 * (scripts/kinto-admin/build.mjs). A build is upstream's layout: index.html, VERSION, its files.
 */
import {existsSync, readFileSync, statSync} from 'node:fs'
import path from 'node:path'

import {asString, settingPathCandidates} from './config/settings.js'
import {KintoError} from './errors.js'
import {packageRoot} from './version.js'

/** Where `npm run build` puts the bundled console. */
export const BUNDLED_ADMIN_DIR = path.join(packageRoot, 'dist', 'admin')

/** The build a server serves: its folder, the kinto-admin release and whether it is ours. */
export interface AdminBuild {
  dir: string
  version: string
  bundled: boolean
}

/**
 * The build to serve: `admin_assets_path` (relative to the current folder, then to the ini's) or
 * dist/admin. A configured folder without index.html or VERSION is a configuration error (upstream
 * fails on a missing VERSION too); no bundled build gives null.
 */
export function findAdminBuild(settings: Record<string, unknown>, baseDir?: string, bundledDir = BUNDLED_ADMIN_DIR): AdminBuild | null {
  const configured = asString(settings, 'admin_assets_path')
  if (configured) {
    const candidates = settingPathCandidates(configured, baseDir)
    const dir = candidates.find((c) => existsSync(c) && statSync(c).isDirectory())
    const hint = 'Point kinto.admin_assets_path to a Kinto Admin build (a folder with index.html and VERSION), or remove it to serve the bundled console.'
    if (!dir) throw new KintoError(`kinto.admin_assets_path = ${configured}: no such folder (looked at ${candidates.join(', ')}).`, {code: 'KINTO_ADMIN_ASSETS', hint})
    for (const needed of ['index.html', 'VERSION']) {
      if (!existsSync(path.join(dir, needed))) {
        throw new KintoError(`kinto.admin_assets_path = ${configured}: ${path.join(dir, needed)} is missing.`, {code: 'KINTO_ADMIN_ASSETS', hint})
      }
    }
    return {dir, version: readFileSync(path.join(dir, 'VERSION'), 'utf8').trim(), bundled: false}
  }
  if (!existsSync(path.join(bundledDir, 'index.html')) || !existsSync(path.join(bundledDir, 'VERSION'))) return null
  return {dir: bundledDir, version: readFileSync(path.join(bundledDir, 'VERSION'), 'utf8').trim(), bundled: true}
}
