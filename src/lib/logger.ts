/** The logger interface the server, monitoring and ops write to (pino's shape), and one that drops everything. */
export interface Logger {
  info(obj: unknown, msg?: string): void
  warn(obj: unknown, msg?: string): void
  error(obj: unknown, msg?: string): void
  fatal?(obj: unknown, msg?: string): void
  debug?(obj: unknown, msg?: string): void
}

export const silentLogger: Logger = {info() {}, warn() {}, error() {}, fatal() {}, debug() {}}
