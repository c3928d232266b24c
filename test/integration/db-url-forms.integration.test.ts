/**
 * Database URLs as upstream Kinto deployments write them, where SQLAlchemy hands them to libpq:
 * `sslmode` with libpq's meaning, and `user@/db?host=DIR` for a Unix socket. A team moving its
 * ini onto kinto-ops must not find that the same URL no longer connects. A private cluster of
 * our own, with TLS on a certificate of its own (signed by no CA), as many managed databases.
 */
import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import pg from 'pg'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {openDatabase} from '../../src/lib/db/index.js'
import {runCli} from '../helpers/cli.js'
import {clusterUnavailable, createCluster, type PgCluster} from '../helpers/pg-cluster.js'

function opensslMissing(): string | null {
  try {
    execFileSync('openssl', ['version'], {stdio: 'ignore'})
    return null
  } catch {
    return 'openssl is missing'
  }
}

const skip = clusterUnavailable() ?? opensslMissing()

/** An IPv4 address of this machine off loopback (a server "elsewhere" for the client), if any. */
const lan = Object.values(os.networkInterfaces())
  .flat()
  .find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address
const noLan = lan ? '' : ' (SKIPPED: this machine has no IPv4 address off loopback)'

/** Whether the connection of this URL is encrypted, as the server sees it. */
async function encrypted(url: string): Promise<boolean> {
  const c = openDatabase(url, {connectTimeoutMs: 5000})
  try {
    const r = await c.query<{ssl: boolean}>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')
    return r.rows[0].ssl
  } finally {
    await c.close()
  }
}

describe.skipIf(skip !== null)(`database URLs read as libpq reads them${skip ? ` (SKIPPED: ${skip})` : ''}`, () => {
  let cluster: PgCluster
  let certDir: string
  let base: string

  beforeAll(async () => {
    certDir = mkdtempSync(path.join(os.tmpdir(), 'kinto-tls-'))
    const key = path.join(certDir, 'server.key')
    const crt = path.join(certDir, 'server.crt')
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', crt, '-subj', '/CN=kinto-test-db', '-days', '2'], {stdio: 'ignore'})
    cluster = await createCluster({
      conf: {ssl: 'on', ssl_cert_file: "'server.crt'", ssl_key_file: "'server.key'", ...(lan ? {listen_addresses: `'127.0.0.1,${lan}'`} : {})},
      files: {
        'server.crt': readFileSync(crt, 'utf8'),
        'server.key': readFileSync(key, 'utf8'),
        'pg_hba.conf': ['local all all trust', 'host all all 127.0.0.1/32 trust', ...(lan ? [`host all all ${lan}/32 trust`] : []), ''].join('\n'),
      },
    })
    base = `postgresql://postgres@127.0.0.1:${cluster.port}/postgres`
  }, 120_000)

  afterAll(async () => {
    await cluster?.destroy()
    if (certDir) rmSync(certDir, {recursive: true, force: true})
  })

  it('sslmode=require encrypts without checking the certificate; verify-full checks it; verify-ca takes sslrootcert', async () => {
    expect(await encrypted(`${base}?sslmode=require`)).toBe(true)
    await expect(encrypted(`${base}?sslmode=verify-full`)).rejects.toThrow(/self.signed|certificate/i)
    expect(await encrypted(`${base}?sslmode=verify-ca&sslrootcert=${encodeURIComponent(path.join(certDir, 'server.crt'))}`)).toBe(true)
    expect(await encrypted(`${base}?sslmode=disable&application_name=kinto`)).toBe(false)
  })

  it('sslmode=prefer encrypts when the server offers TLS and connects in clear when it does not', async () => {
    expect(await encrypted(`${base}?sslmode=prefer`)).toBe(true)
    await cluster.sql('ALTER SYSTEM SET ssl = off')
    await cluster.sql('SELECT pg_reload_conf()')
    try {
      expect(await encrypted(`${base}?sslmode=prefer`)).toBe(false)
      expect(await encrypted(`${base}?sslmode=allow`)).toBe(false)
    } finally {
      // (the cluster's settings are in postgresql.auto.conf, which RESET would empty of ssl)
      await cluster.sql('ALTER SYSTEM SET ssl = on')
      await cluster.sql('SELECT pg_reload_conf()')
    }
  })

  it('sslmode=prefer: a server down at the first connection is that connection\'s error, and the next one asks again', async () => {
    const c = openDatabase(`${base}?sslmode=prefer`, {connectTimeoutMs: 3000})
    await cluster.sql('ALTER SYSTEM SET ssl = off')
    try {
      await cluster.stop()
      await expect(c.query('SELECT 1')).rejects.toThrow(/Cannot connect to PostgreSQL at 127\.0\.0\.1:\d+, database postgres as postgres: connection refused/)
      await cluster.start()
      // back without TLS: asked again, not taken for a server that offers it
      const r = await c.query<{ssl: boolean}>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')
      expect(r.rows[0].ssl).toBe(false)
    } finally {
      await c.close()
      await cluster.sql('ALTER SYSTEM SET ssl = on')
      await cluster.sql('SELECT pg_reload_conf()')
    }
  })

  it('a Unix socket as SQLAlchemy writes it (user@/db?host=DIR) connects, kinto migrate included', async () => {
    const socketUrl = `postgresql://postgres@/postgres?host=${encodeURIComponent(cluster.socketDir)}&port=${cluster.port}`
    expect(await encrypted(socketUrl)).toBe(false)
    // libpq uses no TLS on a Unix socket, whatever sslmode says
    expect(await encrypted(`${socketUrl}&sslmode=require`)).toBe(false)

    const dbUrl = (await cluster.createDatabase('kinto_socket')).replace(`@127.0.0.1:${cluster.port}/`, '@/')
    // as an ini holds it: the folder written out (a % would be configparser's interpolation)
    const url = `${dbUrl}?host=${cluster.socketDir}&port=${cluster.port}`
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-socket-ini-'))
    try {
      const ini = path.join(dir, 'kinto.ini')
      writeFileSync(
        ini,
        ['[app:main]', 'use = egg:kinto', 'kinto.storage_backend = kinto.core.storage.postgresql', `kinto.storage_url = ${url}`, ''].join('\n'),
      )
      const r = await runCli(['migrate', '--ini', ini])
      expect(r.stderr).not.toMatch(/Error/)
      expect(r.code).toBe(0)
      expect(r.stdout).toMatch(/storage: installed version 26 on .*:\d+\/kinto_socket/)
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })

  it.skipIf(!lan)(`a URL without sslmode to a server elsewhere is encrypted when the server offers TLS, in clear when it does not (libpq's prefer); on this machine it stays in clear${noLan}`, async () => {
    const elsewhere = `postgresql://postgres@${lan}:${cluster.port}/postgres`
    expect(await encrypted(elsewhere)).toBe(true)
    expect(await encrypted(base)).toBe(false)
    await cluster.sql('ALTER SYSTEM SET ssl = off')
    await cluster.sql('SELECT pg_reload_conf()')
    try {
      expect(await encrypted(elsewhere)).toBe(false)
    } finally {
      await cluster.sql('ALTER SYSTEM SET ssl = on')
      await cluster.sql('SELECT pg_reload_conf()')
    }
  })

  it.skipIf(!lan)(`kinto check says whether connections to a server elsewhere are encrypted (db-tls)${noLan}`, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-tls-check-'))
    const tlsFinding = async (url: string) => {
      const ini = path.join(dir, 'kinto.ini')
      writeFileSync(ini, ['[app:main]', 'use = egg:kinto', 'kinto.storage_backend = kinto.core.storage.postgresql', `kinto.storage_url = ${url}`, ''].join('\n'))
      const r = await runCli(['check', '--ini', ini, '--json'])
      const found = (JSON.parse(r.stdout) as {findings: Array<{id: string; level: string; message: string; fix: string | null}>}).findings.filter((f) => f.id === 'db-tls')
      expect(found, r.stdout).toHaveLength(1)
      return found[0]
    }
    try {
      const elsewhere = `postgresql://postgres@${lan}:${cluster.port}/postgres`
      expect(await tlsFinding(elsewhere)).toMatchObject({level: 'ok', message: expect.stringContaining("connections are encrypted (TLS; sslmode=verify-full would also check the server's certificate)")})
      expect(await tlsFinding(base)).toMatchObject({level: 'ok', message: expect.stringContaining('a server on this machine (127.0.0.1): connections in clear')})
      const clear = await tlsFinding(`${elsewhere}?sslmode=disable`)
      expect(clear).toMatchObject({level: 'warning', message: expect.stringContaining('connections are in clear'), fix: expect.stringContaining('sslmode=verify-full')})
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })

  it('a URL without sslmode reaches a server that takes encrypted connections only (libpq tries TLS by default); one that takes clear ones stays in clear', async () => {
    expect(await encrypted(base)).toBe(false)
    const hba = path.join(cluster.socketDir, 'data', 'pg_hba.conf')
    const before = readFileSync(hba, 'utf8')
    // over the socket: TCP in clear is what the new rules refuse
    const reload = async () => {
      const admin = new pg.Client({host: cluster.socketDir, port: cluster.port, user: 'postgres', database: 'postgres'})
      await admin.connect()
      try {
        await admin.query('SELECT pg_reload_conf()')
      } finally {
        await admin.end()
      }
    }
    writeFileSync(hba, 'local all all trust\nhostssl all all 127.0.0.1/32 trust\n')
    await reload()
    try {
      const c = openDatabase(base, {connectTimeoutMs: 5000})
      try {
        const r = await c.query<{ssl: boolean}>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')
        expect(r.rows[0].ssl).toBe(true)
        // and a checked-out connection of the same pool
        expect(await c.withConnection(async (conn) => (await conn.query<{ssl: boolean}>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows[0].ssl)).toBe(true)
      } finally {
        await c.close()
      }
      // a transaction first, on a new pool
      const t = openDatabase(base, {connectTimeoutMs: 5000})
      try {
        expect(await t.transaction(async (tx) => (await tx.query<{ssl: boolean}>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows[0].ssl)).toBe(true)
      } finally {
        await t.close()
      }
      // sslmode=disable means it: refused, with the server's reason
      await expect(encrypted(`${base}?sslmode=disable`)).rejects.toThrow(/no encryption/)
    } finally {
      writeFileSync(hba, before)
      await reload()
    }
  })
})
