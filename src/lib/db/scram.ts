/**
 * Passwords of PostgreSQL roles set by our commands (db create, db grant-readonly) go to the server
 * as SCRAM-SHA-256 verifiers computed here, never as the password itself: a statement log or
 * pg_stat_statements then holds nothing that logs in.
 */
import {createHash, createHmac, pbkdf2Sync, randomBytes} from 'node:crypto'

/** SCRAM-SHA-256 verifier as PostgreSQL stores it (RFC 5802/7677, 4096 iterations). */
export function scramVerifier(password: string, salt: Buffer = randomBytes(16), iterations = 4096): string {
  // PostgreSQL applies SASLprep; for ASCII passwords that is the identity, NFKC approximates it otherwise.
  // eslint-disable-next-line no-control-regex
  const normalised = /^[\x00-\x7f]*$/.test(password) ? password : password.normalize('NFKC')
  const salted = pbkdf2Sync(normalised, salt, iterations, 32, 'sha256')
  const clientKey = createHmac('sha256', salted).update('Client Key').digest()
  const storedKey = createHash('sha256').update(clientKey).digest()
  const serverKey = createHmac('sha256', salted).update('Server Key').digest()
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`
}
