/**
 * Database URLs as upstream Kinto's configs write them (SQLAlchemy URLs, read by libpq): an ini
 * that upstream serves must be one kinto-ops reads the same way.
 */
import pg from 'pg'
import {describe, expect, it} from 'vitest'

import {describeDbUrl, maskUrl, parseDbUrl} from '../../src/lib/db/url.js'
import {scrubSecrets} from '../../src/lib/monitoring/redact.js'
import {pgTls} from '../../src/lib/db/tls.js'
import {urlForDatabase} from '../../src/lib/schema/admin.js'

describe('parseDbUrl', () => {
  it('takes the Unix-socket form user:password@/db?host=DIR (SQLAlchemy, libpq), passing it to the driver as written', () => {
    const url = 'postgresql://kinto:s3cret@/kintodb?host=/var/run/postgresql&port=5433'
    expect(parseDbUrl(url)).toEqual({
      driver: 'pg',
      connectionString: url,
      host: '/var/run/postgresql',
      port: 5433,
      database: 'kintodb',
      user: 'kinto',
    })
    expect(parseDbUrl('postgresql+psycopg2://kinto@/kintodb?host=%2Fcloudsql%2Fproj%3Aeu%3Adb')).toMatchObject({
      connectionString: 'postgresql://kinto@/kintodb?host=%2Fcloudsql%2Fproj%3Aeu%3Adb',
      host: '/cloudsql/proj:eu:db',
      database: 'kintodb',
      user: 'kinto',
    })
    expect(describeDbUrl('postgresql://kinto:s3cret@/kintodb?host=/var/run/postgresql')).toBe('/var/run/postgresql:5432/kintodb')
  })

  it('names the user and port given in the query string', () => {
    expect(parseDbUrl('postgresql:///kintodb?host=/run/pg&user=kinto&port=6432')).toMatchObject({host: '/run/pg', port: 6432, database: 'kintodb', user: 'kinto'})
  })

  it("refuses an sslmode libpq does not know, naming libpq's values, the password masked", () => {
    expect(() => parseDbUrl('postgresql://kinto:s3cret@db/kinto?sslmode=required')).toThrow(
      'Invalid sslmode "required" in the database URL postgresql://kinto:***@db/kinto?sslmode=required.',
    )
  })

  it('refuses a port that is no number from 1 to 65535 (the driver never connected nor failed: the command ended in silence, exit 13)', () => {
    for (const port of ['abc', '0', '70000', '5432x', '']) {
      const url = `postgresql://kinto:s3cret@db/kinto?port=${port}`
      if (port === '') expect(parseDbUrl(url)).toMatchObject({port: 5432})
      else expect(() => parseDbUrl(url)).toThrow(`Invalid port "${port}" in the database URL postgresql://kinto:***@db/kinto?port=${port}.`)
    }
    expect(parseDbUrl('postgresql://kinto@db/kinto?port=5433')).toMatchObject({port: 5433})
  })

  it('still refuses what is not a URL', () => {
    expect(() => parseDbUrl('postgresql://kinto@db host/kinto')).toThrow(/Invalid database URL/)
  })
})

describe('urlForDatabase (kinto db create, grant-readonly)', () => {
  it('points a URL at another database, the server, credentials and options kept, Unix-socket form included', () => {
    expect(urlForDatabase('postgresql://kinto:s3cret@db:5433/kinto?sslmode=require', 'postgres')).toBe('postgresql://kinto:s3cret@db:5433/postgres?sslmode=require')
    expect(urlForDatabase('postgresql://kinto@/kinto?host=/run/postgresql', 'postgres')).toBe('postgresql://kinto@/postgres?host=/run/postgresql')
    expect(urlForDatabase('postgresql://kinto@db', 'my db')).toBe('postgresql://kinto@db/my%20db')
  })
})

describe('pgTls: sslmode as libpq reads it', () => {
  const base = 'postgresql://kinto:pw@db.example/kinto'
  it('maps each mode, taking the TLS parameters out of the URL node-postgres sees', () => {
    expect(pgTls(`${base}?sslmode=disable&application_name=k`, 'db.example', base, {})).toEqual({connectionString: `${base}?application_name=k`, ssl: false, plainIfRefused: false})
    expect(pgTls(`${base}?sslmode=prefer`, 'db.example', base, {})).toEqual({connectionString: base, ssl: {rejectUnauthorized: false}, plainIfRefused: true})
    expect(pgTls(`${base}?sslmode=require`, 'db.example', base, {})).toEqual({connectionString: base, ssl: {rejectUnauthorized: false}, plainIfRefused: false})
    expect(pgTls(`${base}?sslmode=verify-full`, 'db.example', base, {})).toEqual({connectionString: base, ssl: {}, plainIfRefused: false})
    // no TLS on a Unix socket, as libpq
    expect(pgTls(`${base}?sslmode=require&host=/run/pg`, '/run/pg', base, {})).toEqual({connectionString: `${base}?host=%2Frun%2Fpg`, ssl: false, plainIfRefused: false})
  })

  it("takes PGSSLMODE when the URL has no sslmode; without either, libpq's prefer for a server elsewhere, node-postgres's clear connection on this machine", () => {
    expect(pgTls(base, 'db.example', base, {PGSSLMODE: 'require'})).toEqual({connectionString: base, ssl: {rejectUnauthorized: false}, plainIfRefused: false})
    expect(pgTls(`${base}?sslmode=disable`, 'db.example', base, {PGSSLMODE: 'require'}).ssl).toBe(false)
    expect(pgTls(base, 'db.example', base, {})).toEqual({connectionString: base, ssl: {rejectUnauthorized: false}, plainIfRefused: true})
    expect(pgTls(base, '10.1.2.3', base, {})).toEqual({connectionString: base, ssl: {rejectUnauthorized: false}, plainIfRefused: true})
    for (const host of ['localhost', 'LOCALHOST', '127.0.0.1', '127.1.2.3', '::1', '[::1]', '::ffff:127.0.0.1']) {
      expect(pgTls(base, host, base, {}), host).toEqual({connectionString: base, plainIfRefused: false})
    }
    // an explicit mode is kept on this machine too
    expect(pgTls(`${base}?sslmode=require`, '127.0.0.1', base, {}).ssl).toEqual({rejectUnauthorized: false})
    expect(() => pgTls(base, 'db.example', base, {PGSSLMODE: 'yes'})).toThrow('Invalid sslmode "yes" in PGSSLMODE.')
  })

  it('refuses a certificate file it cannot read in one clear error, also for a server on this machine without sslmode (node-postgres reads them there)', () => {
    for (const name of ['sslrootcert', 'sslcert', 'sslkey']) {
      for (const [host, mode] of [['127.0.0.1', ''], ['db.example', '&sslmode=require']]) {
        expect(() => pgTls(`${base}?${name}=/nonexistent/file.pem${mode}`, host, base, {}), `${name} ${host}`).toThrow(`Cannot read ${name} /nonexistent/file.pem of the database URL`)
      }
    }
    // not read when TLS is off, as libpq
    expect(pgTls(`${base}?sslcert=/nonexistent/file.pem&sslmode=disable`, 'db.example', base, {}).ssl).toBe(false)
  })
})

describe('passwords as upstream (SQLAlchemy) reads them: up to the first @', () => {
  const url = 'postgresql://kinto:Ab3/xy+Z==?#x@db.internal:5433/kinto?sslmode=disable'
  it('connects with the whole password, to the host after it', () => {
    const parsed = parseDbUrl(url)
    expect(parsed).toMatchObject({host: 'db.internal', port: 5433, database: 'kinto', user: 'kinto'})
    // node-postgres's own reading of the URL it is given
    const client = new pg.Client({connectionString: parsed.driver === 'pg' ? parsed.connectionString : ''})
    expect([client.user, client.password, client.host, client.port, client.database]).toEqual(['kinto', 'Ab3/xy+Z==?#x', 'db.internal', 5433, 'kinto'])
  })

  it('never shows that password: messages, logs and the config error of an unusable URL', () => {
    expect(maskUrl(url)).toBe('postgresql://kinto:***@db.internal:5433/kinto?sslmode=disable')
    expect(scrubSecrets(`connect to ${url} failed`)).toBe('connect to postgresql://kinto:***@db.internal:5433/kinto?sslmode=disable failed')
    // an http URL is read as WHATWG reads it: an account path with an @ is not a password
    const account = 'http://localhost:8888/v1/accounts/bob@example.com'
    expect(maskUrl(account)).toBe(account)
    expect(scrubSecrets(`GET ${account} 200`)).toBe(`GET ${account} 200`)
    expect(scrubSecrets('see https://admin:hunter2@kinto.example/v1/')).toBe('see https://admin:***@kinto.example/v1/')
    const bad = 'postgresql://kinto:Ab3/xy+Z==@db internal/kinto'
    expect(() => parseDbUrl(bad)).toThrow('Invalid database URL postgresql://kinto:***@db internal/kinto.')
  })
})
