/**
 * A real `kinto start` server for client tests: an ini in a temporary folder, the schema
 * installed for the postgresql kinds, and startServer() listening on a free port.
 */
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import pino from 'pino'

import {loadConfig} from '../../src/lib/config/index.js'
import {DatabaseRegistry} from '../../src/lib/db/index.js'
import {ensureSchema} from '../../src/lib/schema/index.js'
import {startServer, type RunningServer} from '../../src/lib/server/start.js'
import {createPgliteDatabase, createServerDatabase, postgresqlSettings, realServerUrl, type TestDatabase} from '../helpers/db.js'

export type BackendKind = 'memory' | 'pglite' | 'postgresql'

/** The kinds this run can test: PostgreSQL only when KINTO_TEST_DATABASE_URL is set. */
export const BACKEND_KINDS: BackendKind[] = realServerUrl ? ['memory', 'pglite', 'postgresql'] : ['memory', 'pglite']

export interface TestServer {
  /** e.g. http://127.0.0.1:41234/v1 (no trailing slash, as clients take it) */
  remote: string
  server: RunningServer
  dir: string
  iniPath: string
  databaseUrl?: string
  close(): Promise<void>
}

export function iniText(settings: Record<string, string>): string {
  const lines = ['[app:main]', 'use = egg:kinto']
  for (const [k, v] of Object.entries(settings)) lines.push(`${k} = ${v}`)
  lines.push('', '[server:main]', 'use = egg:waitress#main', 'host = 127.0.0.1', 'port = %(http_port)s', '')
  return lines.join('\n')
}

/** Backend settings for a kind, over a database (created when not given). */
export async function backendSettings(kind: BackendKind, db?: TestDatabase): Promise<{settings: Record<string, string>; db?: TestDatabase}> {
  if (kind === 'memory') return {settings: {}}
  const database = db ?? (kind === 'pglite' ? createPgliteDatabase() : await createServerDatabase(realServerUrl!))
  const registry = new DatabaseRegistry()
  try {
    await ensureSchema(registry.get(database.url), ['storage', 'permission', 'cache'])
  } finally {
    await registry.closeAll()
  }
  return {settings: postgresqlSettings(database.url), db: database}
}

export async function startTestServer(kind: BackendKind, extra: Record<string, string> = {}, db?: TestDatabase, port = 0): Promise<TestServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-client-'))
  const backends = await backendSettings(kind, db)
  const iniPath = path.join(dir, 'kinto.ini')
  writeFileSync(iniPath, iniText({'kinto.userid_hmac_secret': 'client-tests', ...backends.settings, ...extra}))
  const config = loadConfig(iniPath, {env: {}})
  let server: RunningServer
  try {
    server = await startServer(config, {port, logger: pino({level: 'silent'})})
  } catch (err) {
    if (!db) await backends.db?.drop()
    rmSync(dir, {recursive: true, force: true})
    throw err
  }
  return {
    remote: server.url.replace(/\/$/, ''),
    server,
    dir,
    iniPath,
    databaseUrl: backends.db?.url,
    async close() {
      await server.close()
      if (!db) await backends.db?.drop()
      rmSync(dir, {recursive: true, force: true})
    },
  }
}

export function basicAuth(user: string, password: string): string {
  return 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64')
}
