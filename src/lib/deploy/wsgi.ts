/** The app.wsgi entry point for upstream Kinto under uwsgi or Apache mod_wsgi (templates/app.wsgi). */
import {renderTemplateFile} from './template.js'
import {type Origins, checkPath} from './values.js'

export interface AppWsgiOptions {
  /** Absolute path of the Kinto ini the entry point falls back to when $KINTO_INI is unset. */
  iniPath: string
  /** The command named in the header comment. */
  command: 'uwsgi' | 'apache'
  origins?: Origins
}

export function renderAppWsgi(options: AppWsgiOptions): string {
  const iniPath = checkPath('ini path', options.iniPath, options.origins?.iniPath)
  return renderTemplateFile('app.wsgi', {
    command: options.command,
    // A JSON string literal is a valid Python string literal for the characters checkPath allows.
    ini_path_literal: JSON.stringify(iniPath),
  })
}
