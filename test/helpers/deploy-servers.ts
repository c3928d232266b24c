/**
 * Real nginx, Apache and uwsgi for the deploy tests, without root-owned global configuration:
 * every file (config, pid, logs, temp folders) lives in a fresh temporary folder, servers listen
 * on loopback ports only, and every started process is stopped by `stopAll()` (call it in
 * afterAll/afterEach, it also runs on failures).
 */
import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import {accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync, mkdirSync} from 'node:fs'
import {createServer} from 'node:net'
import os from 'node:os'
import path from 'node:path'

const SEARCH = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin', '/sbin']

/** Absolute path of an executable, or undefined. */
export function findBinary(name: string): string | undefined {
  for (const dir of SEARCH) {
    if (!dir) continue
    const candidate = path.join(dir, name)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return undefined
}

export const APACHE_MODULES_DIR = '/usr/lib/apache2/modules'
export const UWSGI_PLUGINS_DIR = '/usr/lib/uwsgi/plugins'

export const tools = {
  nginx: findBinary('nginx'),
  apache2: findBinary('apache2'),
  apache2ctl: findBinary('apache2ctl') ?? findBinary('apachectl'),
  uwsgi: findBinary('uwsgi'),
  python3: findBinary('python3'),
  modWsgi: existsSync(path.join(APACHE_MODULES_DIR, 'mod_wsgi.so')),
  modProxyHttp: existsSync(path.join(APACHE_MODULES_DIR, 'mod_proxy_http.so')),
  uwsgiPython: existsSync(path.join(UWSGI_PLUGINS_DIR, 'python3_plugin.so')),
}

/** Why a test needing `what` is skipped, or '' when it can run. */
export function missing(...what: (keyof typeof tools)[]): string {
  const absent = what.filter((w) => !tools[w])
  return absent.length === 0 ? '' : `SKIPPED: ${absent.join(', ')} not installed (CI installs nginx, apache2, uwsgi, uwsgi-plugin-python3, libapache2-mod-wsgi-py3)`
}

const tempDirs: string[] = []
const children = new Set<ChildProcess>()

/** A temporary folder that nginx/Apache workers (which drop root) can traverse; removed by stopAll(). */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `kinto-${prefix}-`))
  chmodSync(dir, 0o755)
  tempDirs.push(dir)
  return dir
}

/** A free TCP port on 127.0.0.1 (asked from the kernel, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address() as {port: number}
      server.close(() => resolve(port))
    })
  })
}

export interface RunResult {
  code: number | null
  stdout: string
  /** stdout then stderr. */
  output: string
}

function run(bin: string, args: string[], env?: NodeJS.ProcessEnv): RunResult {
  const r = spawnSync(bin, args, {encoding: 'utf8', timeout: 30_000, env: {...process.env, ...env}})
  return {code: r.status, stdout: r.stdout ?? '', output: `${r.stdout ?? ''}${r.stderr ?? ''}`}
}

// ---------------------------------------------------------------- nginx

export interface NginxSetup {
  dir: string
  conf: string
  errorLog: string
}

/** An nginx main config in a temp folder that includes the snippet inside `http {}`. */
export function nginxSetup(snippet: string, extraHttp = ''): NginxSetup {
  const dir = tempDir('nginx')
  for (const sub of ['body', 'proxy', 'uwsgi', 'fastcgi', 'scgi']) mkdirSync(path.join(dir, sub))
  const params = existsSync('/etc/nginx/uwsgi_params')
    ? readFileSync('/etc/nginx/uwsgi_params', 'utf8')
    : ['QUERY_STRING $query_string', 'REQUEST_METHOD $request_method', 'CONTENT_TYPE $content_type', 'CONTENT_LENGTH $content_length', 'REQUEST_URI $request_uri', 'PATH_INFO $document_uri', 'SERVER_PROTOCOL $server_protocol', 'REMOTE_ADDR $remote_addr', 'SERVER_PORT $server_port', 'SERVER_NAME $server_name'].map((l) => `uwsgi_param ${l};`).join('\n')
  writeFileSync(path.join(dir, 'uwsgi_params'), params)
  writeFileSync(path.join(dir, 'kinto.conf'), snippet)
  const errorLog = path.join(dir, 'error.log')
  const conf = path.join(dir, 'nginx.conf')
  writeFileSync(
    conf,
    [
      ...(process.getuid?.() === 0 ? ['user root root;'] : []),
      'worker_processes 1;',
      'daemon off;',
      `pid ${dir}/nginx.pid;`,
      `error_log ${errorLog} info;`,
      'events { worker_connections 128; }',
      'http {',
      `    access_log ${dir}/access.log;`,
      `    client_body_temp_path ${dir}/body;`,
      `    proxy_temp_path ${dir}/proxy;`,
      `    uwsgi_temp_path ${dir}/uwsgi;`,
      `    fastcgi_temp_path ${dir}/fastcgi;`,
      `    scgi_temp_path ${dir}/scgi;`,
      extraHttp,
      `    include ${dir}/kinto.conf;`,
      '}',
      '',
    ].join('\n'),
  )
  return {dir, conf, errorLog}
}

/** `nginx -t` on the snippet inside an http {} block. */
export function nginxTest(snippet: string): RunResult {
  const setup = nginxSetup(snippet)
  return run(tools.nginx!, ['-t', '-q', '-p', `${setup.dir}/`, '-c', setup.conf, '-e', setup.errorLog])
}

// ---------------------------------------------------------------- Apache

export const APACHE_PROXY_MODULES = ['mpm_event', 'authz_core', 'authz_host', 'headers', 'proxy', 'proxy_http']
export const APACHE_WSGI_MODULES = ['mpm_event', 'authz_core', 'authz_host', 'env', 'wsgi']

export interface ApacheSetup {
  dir: string
  conf: string
  errorLog: string
}

/** A complete Apache config in a temp folder: the modules, a Listen line (unless the snippet has it: `deploy apache --listen`), then the snippet. */
export function apacheSetup(snippet: string, modules: string[], listen: string): ApacheSetup {
  const dir = tempDir('apache')
  writeFileSync(path.join(dir, 'kinto.conf'), snippet)
  const errorLog = path.join(dir, 'error.log')
  const conf = path.join(dir, 'httpd.conf')
  const root = process.getuid?.() === 0
  writeFileSync(
    conf,
    [
      `ServerRoot "${dir}"`,
      'ServerName localhost',
      `PidFile ${dir}/httpd.pid`,
      `ErrorLog ${errorLog}`,
      'LogLevel warn',
      `Mutex file:${dir} default`,
      ...modules.map((m) => `LoadModule ${m}_module ${APACHE_MODULES_DIR}/mod_${m}.so`),
      ...(root ? ['User nobody', 'Group nogroup'] : []),
      'StartServers 1',
      'MaxRequestWorkers 16',
      'ServerLimit 16',
      ...(new RegExp(`^Listen ${listen.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm').test(snippet) ? [] : [`Listen ${listen}`]),
      `Include ${dir}/kinto.conf`,
      '',
    ].join('\n'),
  )
  return {dir, conf, errorLog}
}

/** `apache2ctl -t` on the snippet with the given modules loaded. */
export function apacheTest(snippet: string, modules: string[], listen = '127.0.0.1:18080'): RunResult {
  const setup = apacheSetup(snippet, modules, listen)
  return run(tools.apache2ctl ?? tools.apache2!, ['-f', setup.conf, '-t'])
}

// ---------------------------------------------------------------- uwsgi

/**
 * uwsgi's own parsing of a [uwsgi] section without serving: strict mode (an unknown option is
 * an error; plugin options are known once `plugin =` has loaded the plugin) and `--get`, which
 * prints one option's value and exits before binding or loading the app.
 */
export function uwsgiParse(section: string, option = 'socket'): RunResult {
  const dir = tempDir('uwsgi')
  const file = path.join(dir, 'kinto-uwsgi.ini')
  writeFileSync(file, section)
  return run(tools.uwsgi!, ['--ini', `${file}:uwsgi`, '--strict', '--get', option])
}

// ---------------------------------------------------------------- processes

export interface Started {
  child: ChildProcess
  output: () => string
}

/** Starts a long-running server; stopAll() ends it (its process group). */
export function startProcess(bin: string, args: string[], options: {cwd?: string; env?: NodeJS.ProcessEnv} = {}): Started {
  const child = spawn(bin, args, {cwd: options.cwd, env: {...process.env, ...options.env}, stdio: ['ignore', 'pipe', 'pipe'], detached: true})
  let output = ''
  child.stdout?.on('data', (d) => (output += d))
  child.stderr?.on('data', (d) => (output += d))
  children.add(child)
  child.on('exit', () => children.delete(child))
  return {child, output: () => output}
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return
  try {
    process.kill(-child.pid, signal)
  } catch {
    try {
      child.kill(signal)
    } catch {
      // already gone
    }
  }
}

/**
 * Stops one started process: TERM to the server's main process (which stops its own workers),
 * then KILL to its whole process group after a grace period, also when it has already exited
 * (nothing it started outlives the test).
 */
export async function stopProcess(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    try {
      child.kill('SIGTERM')
    } catch {
      // already gone
    }
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs)
    await exited
    clearTimeout(timer)
  }
  if (child.pid !== undefined) {
    try {
      process.kill(-child.pid, 'SIGKILL')
    } catch {
      // the group is empty
    }
  }
}

/** Stops every started process and removes the temporary folders. */
export async function stopAll(): Promise<void> {
  await Promise.all([...children].map((c) => stopProcess(c)))
  for (const dir of tempDirs.splice(0)) rmSync(dir, {recursive: true, force: true})
}

/** Polls `probe` until it returns true (or throws after `timeoutMs`, with `describe()` in the message). */
export async function waitFor(probe: () => Promise<boolean>, timeoutMs: number, describe: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  while (Date.now() < deadline) {
    try {
      if (await probe()) return
    } catch (error) {
      lastError = error
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`timed out after ${timeoutMs} ms: ${describe()}${lastError ? ` (last error: ${String(lastError)})` : ''}`)
}

// ---------------------------------------------------------------- HTTP client

export interface HttpReply {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

/**
 * One HTTP/1.1 request without keep-alive, optionally from a chosen loopback source address
 * (`localAddress: '127.0.0.2'` to be a client that is not allowed). Bounded by `timeoutMs`.
 */
export async function httpRequest(
  url: string,
  options: {method?: string; headers?: Record<string, string>; localAddress?: string; body?: string; timeoutMs?: number} = {},
): Promise<HttpReply> {
  const {request} = await import('node:http')
  return new Promise((resolve, reject) => {
    const req = request(url, {method: options.method ?? 'GET', headers: options.headers, localAddress: options.localAddress, agent: false}, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve({status: res.statusCode ?? 0, headers: res.headers, body}))
      res.on('error', reject)
    })
    req.setTimeout(options.timeoutMs ?? 10_000, () => req.destroy(new Error(`${options.method ?? 'GET'} ${url}: no answer in time`)))
    req.on('error', reject)
    req.end(options.body)
  })
}

// ---------------------------------------------------------------- running servers

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port: number, timeoutMs: number, describe: () => string, host = '127.0.0.1'): Promise<void> {
  const {connect} = await import('node:net')
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        const socket = connect({host, port})
        socket.once('connect', () => {
          socket.destroy()
          resolve(true)
        })
        socket.once('error', () => resolve(false))
      }),
    timeoutMs,
    describe,
  )
}

/** Real nginx serving the snippet (which must listen on 127.0.0.1:port), in the foreground of its group. */
export async function startNginx(snippet: string, port: number): Promise<Started & {setup: NginxSetup}> {
  const setup = nginxSetup(snippet)
  const started = startProcess(tools.nginx!, ['-p', `${setup.dir}/`, '-c', setup.conf, '-e', setup.errorLog])
  await waitForPort(port, 10_000, () => `nginx on port ${port}: ${started.output()} ${readLog(setup.errorLog)}`)
  return {...started, setup}
}

/** Real Apache serving the snippet with the modules loaded and `Listen 127.0.0.1:port`. */
export async function startApache(snippet: string, modules: string[], port: number): Promise<Started & {setup: ApacheSetup}> {
  const setup = apacheSetup(snippet, modules, `127.0.0.1:${port}`)
  const started = startProcess(tools.apache2!, ['-f', setup.conf, '-DFOREGROUND'])
  await waitForPort(port, 15_000, () => `apache on port ${port}: ${started.output()} ${readLog(setup.errorLog)}`)
  return {...started, setup}
}

export function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return ''
  }
}
