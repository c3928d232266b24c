import {describe, expect, it} from 'vitest'

import {connectionError} from '../../src/lib/db/errors.js'

const target = {host: 'db.example', port: 5433, database: 'kinto', user: 'kinto'}
const err = (message: string, code?: string) => Object.assign(new Error(message), code ? {code} : {})

describe('connectionError', () => {
  it('names host, port, database and user, with the reason, and keeps the cause', () => {
    const cause = err('connect ECONNREFUSED 10.0.0.1:5433', 'ECONNREFUSED')
    const e = connectionError(cause, target)!
    expect(e.message).toBe('Cannot connect to PostgreSQL at db.example:5433, database kinto as kinto: connection refused (is PostgreSQL running and listening there?).')
    expect(e.code).toBe('KINTO_DB_UNREACHABLE')
    expect(e.cause).toBe(cause)
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

  it('leaves other errors alone', () => {
    expect(connectionError(err('relation "objects" does not exist', '42P01'), target)).toBeUndefined()
    expect(connectionError(err('syntax error', '42601'), target)).toBeUndefined()
    expect(connectionError('not an error', target)).toBeUndefined()
  })
})
