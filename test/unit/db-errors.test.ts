import {describe, expect, it} from 'vitest'

import {connectionError, databaseConditionError} from '../../src/lib/db/errors.js'
import {connectionLost} from '../../src/lib/db/pg-driver.js'

const target = {host: 'db.example', port: 5433, database: 'kinto', user: 'kinto'}
const err = (message: string, code?: string) => Object.assign(new Error(message), code ? {code} : {})

describe('connectionError', () => {
  it('names host, port, database and user, with the reason, and keeps the cause', () => {
    const cause = err('connect ECONNREFUSED 10.0.0.1:5433', 'ECONNREFUSED')
    const e = connectionError(cause, target)!
    expect(e.message).toBe('Cannot connect to PostgreSQL at db.example:5433, database kinto as kinto: connection refused (is PostgreSQL running and listening there?).')
    expect(e.code).toBe('KINTO_DB_UNREACHABLE')
    expect(e.cause).toBe(cause)
    // the URL may be the ini's or a flag's (db create --admin-url, db copy --to): the hint blames neither
    expect(e.hint).toBe('Check that the server runs and that the database URL (host, port, database, user, password) is right.')
  })

  it('maps DNS, timeouts, authentication and missing databases', () => {
    expect(connectionError(err('getaddrinfo ENOTFOUND db.example', 'ENOTFOUND'), target)!.message).toMatch(/unknown host name/)
    expect(connectionError(err('timeout exceeded when trying to connect'), target)!.message).toMatch(/timed out/)
    expect(connectionError(err('password authentication failed for user "kinto"', '28P01'), target)!.message).toMatch(
      /password authentication failed\.$/,
    )
    const missing = connectionError(err('database "kinto" does not exist', '3D000'), target)!
    expect(missing.message).toMatch(/database does not exist/)
    expect(missing.hint).toMatch(/kinto db create/)
  })

  it('says how to create a role that does not exist, on the same server (TCP or Unix socket)', () => {
    const role = connectionError(err('role "kinto" does not exist', '28000'), target)!
    expect(role.message).toBe('Cannot connect to PostgreSQL at db.example:5433, database kinto as kinto: login refused: role "kinto" does not exist.')
    expect(role.hint).toBe(
      "Create the role with `kinto db create --admin-url postgresql://postgres@db.example:5433/postgres` (an administrator's URL: it creates the role, with the URL's password, and the database), or fix the user name in the URL.",
    )
    const socket = connectionError(err('role "kinto" does not exist', '28000'), {...target, host: '/run/postgresql', port: 5432})!
    expect(socket.hint).toContain('`kinto db create --admin-url postgresql://postgres@/postgres?host=/run/postgresql`')
    // other refusals keep the general hint
    const hba = connectionError(err('no pg_hba.conf entry for host "10.0.0.2", user "kinto", database "kinto", no encryption', '28000'), target)!
    expect(hba.hint).toMatch(/^Check that the server runs/)
  })

  it('maps a connection ended by the server or left unanswered (restart, pg_terminate_backend, blackhole)', () => {
    expect(connectionError(err('terminating connection due to administrator command', '57P01'), target)!.message).toMatch(/ended the connection \(a restart/)
    expect(connectionError(err('terminating connection because of crash of another server process', '57P02'), target)!.message).toMatch(/crash restart/)
    expect(connectionError(err('timeout expired'), target)!.message).toMatch(/connection timed out\.$/)
    expect(connectionError(err('Query read timeout'), target)!.message).toMatch(/no answer within the statement timeout/)
  })

  it('names a setting of the URL the server refuses at login, and says to fix it there', () => {
    for (const [message, code] of [['invalid value for parameter "statement_timeout": "NaN"', '22023'], ['unrecognized configuration parameter "work_mme"', '42704'], ['invalid command-line argument for server process: abc', '42601']]) {
      const e = connectionError(err(message, code), target)!
      expect(e.message).toContain(`the server refused a setting of the URL: ${message}.`)
      expect(e.hint).toMatch(/^Fix or remove that setting in the URL/)
    }
  })

  it("names a certificate the checks refuse (verify-ca, verify-full) and a password the server asks for and the URL lacks", () => {
    for (const [message, code] of [['self-signed certificate', 'DEPTH_ZERO_SELF_SIGNED_CERT'], ["Hostname/IP does not match certificate's altnames: IP: 10.0.0.9 is not in the cert's list: ", 'ERR_TLS_CERT_ALTNAME_INVALID'], ['certificate has expired', 'CERT_HAS_EXPIRED'], ['unable to verify the first certificate', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE']]) {
      const e = connectionError(err(message, code), target)!
      expect(e.message, code).toContain(`TLS: the server's certificate is not accepted (${message})`)
      expect(e.hint, code).toMatch(/sslrootcert=<file>.*sslmode=require/)
    }
    expect(connectionError(err('SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string'), target)!.message).toMatch(/: the server asks for a password, and the URL has none\.$/)
  })

  it('leaves other errors alone', () => {
    expect(connectionError(err('relation "objects" does not exist', '42P01'), target)).toBeUndefined()
    expect(connectionError(err('syntax error', '42601'), target)).toBeUndefined()
    expect(connectionError('not an error', target)).toBeUndefined()
  })
})

describe('connectionLost', () => {
  const err = (message: string, code?: string) =>
    Object.assign(new Error(message), code ? {code} : {}, code && /^[0-9A-Z]{5}$/.test(code) && code !== 'EPIPE' ? {severity: 'ERROR'} : {})
  it('is true when the connection cannot be used again, false for statement errors', () => {
    expect(connectionLost(err('write EPIPE', 'EPIPE'))).toBe(true)
    expect(connectionLost(err('terminating connection due to administrator command', '57P01'))).toBe(true)
    expect(connectionLost(err('connection failure', '08006'))).toBe(true)
    expect(connectionLost(err('Connection terminated unexpectedly'))).toBe(true)
    expect(connectionLost(err('read ECONNRESET', 'ECONNRESET'))).toBe(true)
    expect(connectionLost(err('Query read timeout'))).toBe(true)
    expect(connectionLost(err('canceling statement due to statement timeout', '57014'))).toBe(false)
    expect(connectionLost(err('duplicate key', '23505'))).toBe(false)
    expect(connectionLost(err('deadlock detected', '40P01'))).toBe(false)
  })
})

describe('databaseConditionError', () => {
  it('a full disk (53100), wrapped by a backend error: KINTO_DB_DISK_FULL naming what PostgreSQL said; other errors: undefined', () => {
    const cause = err('could not extend file "base/5/16454": No space left on device', '53100')
    const wrapped = Object.assign(new Error('Permission backend failure: could not extend file'), {cause})
    const e = databaseConditionError(wrapped)!
    expect(e.code).toBe('KINTO_DB_DISK_FULL')
    expect(e.exit).toBe(1)
    expect(e.message).toBe('The database has no space left to write (could not extend file "base/5/16454": No space left on device); the transaction was rolled back.')
    expect(e.hint).toMatch(/^Free space/)
    expect(databaseConditionError(err('duplicate key', '23505'))).toBeUndefined()
    expect(databaseConditionError(new Error('boom'))).toBeUndefined()
  })
})

