/**
 * `GET /v1/__api__` against upstream's document (kinto/core/openapi.py and the cornice_swagger
 * generator it drives): the names client generators key on (tags, operationIds, body parameter
 * names), the parameters and responses of each operation, and the Swagger 2.0 rules a generator
 * checks before it accepts the document.
 */
import {afterEach, describe, expect, test} from 'vitest'

import {client, memoryApp} from './helpers.js'

const apps: Array<ReturnType<typeof memoryApp>> = []
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()))
})

interface Parameter {
  name: string
  in: string
  required?: boolean
  type?: string
  items?: unknown
  enum?: string[]
  schema?: Record<string, unknown>
}
interface Operation {
  tags: string[]
  operationId: string
  consumes?: string[]
  produces?: string[]
  parameters?: Parameter[]
  responses: Record<string, {description: string; schema?: Record<string, unknown>}>
  security: unknown[]
}
type PathItem = Record<string, Operation> & {parameters?: Parameter[]}

const ALL_PLUGINS = {
  includes: 'kinto.plugins.accounts kinto.plugins.history kinto.plugins.default_bucket kinto.plugins.admin kinto.plugins.flush',
  'multiauth.policies': 'account basicauth',
  'multiauth.policy.account.use': 'kinto.plugins.accounts.AccountsPolicy',
  userid_hmac_secret: 'not so secret',
}

async function apiDocument(raw: Record<string, string> = ALL_PLUGINS): Promise<{paths: Record<string, PathItem>} & Record<string, unknown>> {
  const app = memoryApp(raw)
  apps.push(app)
  const r = await client(app, null)('GET', '/v1/__api__')
  expect(r.status).toBe(200)
  return r.body
}

const OPERATION_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch']
const PARAMETER_TYPES = ['string', 'number', 'integer', 'boolean', 'array', 'file']

/** The Swagger 2.0 rules (the specification's schema and its prose) a client generator enforces. */
function swaggerProblems(doc: {paths: Record<string, PathItem>} & Record<string, unknown>): string[] {
  const problems: string[] = []
  if (doc.swagger !== '2.0') problems.push('swagger is not "2.0"')
  if (!/^\//.test(String(doc.basePath))) problems.push('basePath does not start with /')
  if (String(doc.host).includes('://')) problems.push('host holds a scheme')
  const ids = new Set<string>()
  for (const [path, item] of Object.entries(doc.paths)) {
    if (!path.startsWith('/')) problems.push(`${path}: not starting with /`)
    const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1])
    for (const [method, value] of Object.entries(item)) {
      if (method === 'parameters') continue
      const op = value as Operation
      if (!OPERATION_METHODS.includes(method)) {
        problems.push(`${path}: unknown key ${method}`)
        continue
      }
      const where = `${method} ${path}`
      if (!op.operationId) problems.push(`${where}: no operationId`)
      else if (ids.has(op.operationId)) problems.push(`${where}: operationId ${op.operationId} used twice`)
      ids.add(op.operationId)
      const responses = Object.entries(op.responses ?? {})
      if (responses.length === 0) problems.push(`${where}: no responses`)
      for (const [code, response] of responses) {
        if (!/^(\d{3}|default)$/.test(code)) problems.push(`${where}: response key ${code}`)
        if (typeof response.description !== 'string') problems.push(`${where}: response ${code} has no description`)
      }
      const params = [...(item.parameters ?? []), ...(op.parameters ?? [])]
      const seen = new Set<string>()
      for (const p of params) {
        const key = `${p.in}:${p.name}`
        if (seen.has(key)) problems.push(`${where}: parameter ${key} twice`)
        seen.add(key)
        if (!['query', 'header', 'path', 'formData', 'body'].includes(p.in)) problems.push(`${where}: parameter ${p.name} in ${p.in}`)
        if (p.in === 'body') {
          if (!p.schema) problems.push(`${where}: body parameter without schema`)
        } else {
          if (!PARAMETER_TYPES.includes(String(p.type))) problems.push(`${where}: parameter ${p.name} type ${p.type}`)
          if (p.type === 'array' && !p.items) problems.push(`${where}: array parameter ${p.name} without items`)
        }
        if (p.in === 'path' && p.required !== true) problems.push(`${where}: path parameter ${p.name} not required`)
        if (p.in === 'path' && !templated.includes(p.name)) problems.push(`${where}: path parameter ${p.name} not in the path`)
      }
      for (const name of templated) if (!seen.has(`path:${name}`)) problems.push(`${where}: {${name}} not declared`)
      if (params.filter((p) => p.in === 'body').length > 1) problems.push(`${where}: two body parameters`)
    }
  }
  return problems
}

describe('/__api__ as upstream words it', () => {
  test('a valid Swagger 2.0 document, every plugin on', async () => {
    const doc = await apiDocument()
    expect(swaggerProblems(doc)).toEqual([])
  })

  test('the operationIds and tags of upstream: utilities, batch, history, resources', async () => {
    const {paths} = await apiDocument()
    const named = (path: string, method: string) => ({operationId: paths[path]?.[method]?.operationId, tags: paths[path]?.[method]?.tags})
    expect(named('/', 'get')).toEqual({operationId: 'server_info', tags: ['Utilities']})
    expect(named('/__heartbeat__', 'get')).toEqual({operationId: '__heartbeat__', tags: ['Utilities']})
    expect(named('/__lbheartbeat__', 'get')).toEqual({operationId: '__lbheartbeat__', tags: ['Utilities']})
    expect(named('/__version__', 'get')).toEqual({operationId: '__version__', tags: ['Utilities']})
    expect(named('/__api__', 'get')).toEqual({operationId: 'get_openapi_spec', tags: ['Utilities']})
    expect(named('/contribute.json', 'get')).toEqual({operationId: 'contribute', tags: ['Utilities']})
    expect(named('/batch', 'post')).toEqual({operationId: 'batch', tags: ['Batch']})
    expect(named('/buckets/{bucket_id}/history', 'get')).toEqual({operationId: 'get_history', tags: ['History']})
    expect(named('/buckets/{bucket_id}/history', 'delete')).toEqual({operationId: 'delete_history', tags: ['History']})
    expect(named('/buckets', 'post')).toEqual({operationId: 'create_bucket', tags: ['Buckets']})
    expect(named('/buckets/{id}', 'patch')).toEqual({operationId: 'patch_bucket', tags: ['Buckets']})
    expect(named('/accounts/{id}', 'put')).toEqual({operationId: 'update_account', tags: ['Accounts']})
    // upstream's tag is the service name with `-plural` turned into `s`: `permissions-plural`.
    expect(named('/permissions', 'get')).toEqual({operationId: 'get_permissionss', tags: ['Permissionss']})
    expect(named('/__flush__', 'post')).toEqual({operationId: 'create_flush', tags: ['Flush']})
  })

  // Upstream's default_security: `[]` for a view declared with NO_PERMISSION_REQUIRED, every exposed
  // method otherwise, also for the history snapshot, whose view has no `permission` (it checks read
  // access itself). Its basicauth definition is `{"type": "basic"}`, nothing more.
  test('security: none where upstream requires no permission, every method elsewhere', async () => {
    const doc = await apiDocument()
    const {paths} = doc
    const methods = [{account: []}, {basicauth: []}]
    for (const [path, method] of [['/', 'get'], ['/__heartbeat__', 'get'], ['/__lbheartbeat__', 'get'], ['/__version__', 'get'], ['/contribute.json', 'get'], ['/__api__', 'get'], ['/batch', 'post'], ['/__flush__', 'post']]) {
      expect(paths[path][method].security, `${method} ${path}`).toEqual([])
    }
    expect(paths['/buckets/{id}'].get.security).toEqual(methods)
    expect(paths['/buckets/{bucket_id}/history'].get.security).toEqual(methods)
    expect(paths['/buckets/{bucket_id}/snapshot/collections/{collection_id}@{timestamp}'].get.security).toEqual(methods)
    expect((doc.securityDefinitions as Record<string, unknown>).basicauth).toEqual({type: 'basic'})
  })

  test('HEAD and OPTIONS are not described, nor the routes upstream serves outside its services', async () => {
    const {paths} = await apiDocument()
    for (const [path, item] of Object.entries(paths)) {
      expect(Object.keys(item), path).not.toContain('head')
      expect(Object.keys(item), path).not.toContain('options')
    }
    // the default bucket and the admin console are plain routes upstream (not in its document)
    expect(Object.keys(paths).filter((p) => p.startsWith('/buckets/default') || p.startsWith('/admin'))).toEqual([])
  })

  test('list and object operations list their querystring, header and body parameters', async () => {
    const {paths} = await apiDocument()
    const names = (ps: Parameter[] | undefined) => (ps ?? []).map((p) => `${p.in}:${p.name}`)
    const records = paths['/buckets/{bucket_id}/collections/{collection_id}/records']
    expect(names(records.parameters)).toEqual(['path:bucket_id', 'path:collection_id'])
    expect(names(records.get.parameters)).toEqual(
      expect.arrayContaining(['query:_limit', 'query:_sort', 'query:_token', 'query:_since', 'query:_to', 'query:_before', 'query:id', 'query:last_modified', 'query:_fields', 'header:If-Match', 'header:If-None-Match']),
    )
    expect(records.get.parameters!.find((p) => p.name === '_limit')).toMatchObject({type: 'integer', required: false})
    expect(records.get.parameters!.find((p) => p.name === '_sort')).toMatchObject({type: 'array', items: {type: 'string'}})
    expect(names(records.delete.parameters)).not.toContain('query:_fields')
    expect(names(records.post.parameters)).toContain('body:ObjectSchema')
    const record = paths['/buckets/{bucket_id}/collections/{collection_id}/records/{id}']
    expect(names(record.get.parameters)).toEqual(expect.arrayContaining(['query:_fields', 'header:If-Match', 'header:If-None-Match']))
    expect(record.patch.parameters!.find((p) => p.name === 'Response-Behavior')).toMatchObject({in: 'header', type: 'string', enum: ['full', 'light', 'diff']})
    expect(record.patch.consumes).toEqual(['application/json', 'application/merge-patch+json'])
    const body = record.put.parameters!.find((p) => p.in === 'body')!
    expect(body.schema).toMatchObject({type: 'object', properties: {data: {type: 'object'}, permissions: {type: 'object'}}})
    expect(names(paths['/batch'].post.parameters)).toEqual(['body:BatchPayloadSchema'])
  })

  test('responses: the success, the errors a client must tell apart, and the error body', async () => {
    const {paths} = await apiDocument()
    const codes = (op: Operation) => Object.keys(op.responses).sort()
    const buckets = paths['/buckets']
    expect(codes(buckets.get)).toEqual(['200', '304', '400', '401', '403', '406', '412', 'default'])
    expect(codes(buckets.post)).toEqual(['200', '201', '400', '401', '403', '406', '412', '415', 'default'])
    const bucket = paths['/buckets/{id}']
    expect(codes(bucket.get)).toEqual(['200', '304', '400', '401', '403', '404', '406', '412', 'default'])
    expect(codes(bucket.put)).toEqual(['200', '201', '400', '401', '403', '406', '412', '415', 'default'])
    expect(bucket.get.responses['404'].schema).toMatchObject({type: 'object', properties: {code: {type: 'integer'}, errno: {type: 'integer'}, error: {type: 'string'}, message: {type: 'string'}}})
    expect(buckets.get.responses['200'].schema).toMatchObject({type: 'object', properties: {data: {type: 'array'}}})
    expect(codes(paths['/__heartbeat__'].get)).toEqual(['200', '503'])
    // the heartbeat's 503 is its status map, not an error body
    expect(paths['/__heartbeat__'].get.responses['503'].schema).toEqual({type: 'object'})
    expect(codes(paths['/batch'].post)).toEqual(['200', '400', 'default'])
  })

  test('the history snapshot is described with its collection id and timestamp', async () => {
    const {paths} = await apiDocument()
    const snapshot = paths['/buckets/{bucket_id}/snapshot/collections/{collection_id}@{timestamp}']
    expect(snapshot?.get).toBeDefined()
    expect(snapshot.parameters).toEqual([
      expect.objectContaining({name: 'bucket_id', in: 'path', type: 'string'}),
      expect.objectContaining({name: 'collection_id', in: 'path', type: 'string'}),
      expect.objectContaining({name: 'timestamp', in: 'path', type: 'integer'}),
    ])
  })

  test('readonly: no write operation is described', async () => {
    const {paths} = await apiDocument({...ALL_PLUGINS, includes: 'kinto.plugins.accounts kinto.plugins.history kinto.plugins.default_bucket', readonly: 'true'})
    const methods = new Set(Object.values(paths).flatMap((item) => Object.keys(item)))
    expect([...methods].sort()).toEqual(['get', 'parameters'])
  })
})
