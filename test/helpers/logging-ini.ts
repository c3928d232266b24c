/**
 * The logging sections of upstream's generated ini (kinto.tpl), for the tests of the ini's
 * logging: the root logger, the kinto logger at DEBUG, one console handler, the formatters.
 */

/** The formatters tests declare: upstream's two, and a Python `format =` one. */
const FORMATTERS = {
  color: ['[formatter_color]', 'class = logging_color_formatter.ColorFormatter'],
  json: ['[formatter_json]', 'class = kinto.core.JsonLogFormatter'],
  generic: ['[formatter_generic]', 'format = %(asctime)s,%(msecs)03d %(levelname)-5.5s [%(name)s] %(message)s', 'datefmt = %H:%M:%S'],
}

export type FormatterName = keyof typeof FORMATTERS

export interface TplLoggingOptions {
  /** The console handler's formatter. */
  formatter: string
  /** The console handler's stream. */
  stream?: 'sys.stdout' | 'sys.stderr'
  /** The root logger's level. */
  rootLevel?: string
  /** The formatters declared, in this order (upstream: color and json). */
  formatters?: FormatterName[]
}

/** kinto.tpl's logging sections (ending with a newline), with the console handler as asked. */
export function tplLogging({formatter, stream = 'sys.stderr', rootLevel = 'INFO', formatters = ['color', 'json']}: TplLoggingOptions): string {
  const sections = [
    ['[loggers]', 'keys = root, kinto'],
    ['[handlers]', 'keys = console'],
    ['[formatters]', `keys = ${formatters.join(', ')}`],
    ['[logger_root]', `level = ${rootLevel}`, 'handlers = console'],
    ['[logger_kinto]', 'level = DEBUG', 'handlers = console', 'qualname = kinto', 'propagate = 0'],
    ['[handler_console]', 'class = kinto.core.StreamHandlerWithRequestID', `args = (${stream},)`, 'level = NOTSET', `formatter = ${formatter}`],
    ...formatters.map((name) => FORMATTERS[name]),
  ]
  return sections.map((lines) => lines.join('\n')).join('\n\n') + '\n'
}
