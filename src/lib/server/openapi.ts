/**
 * `GET /v1/__api__`: an OpenAPI 2.0 (Swagger) description of the running instance, as upstream
 * serves one (title project_name, version http_api_version, basePath `/v<major>`, host of the
 * request, schemes `[http_scheme or "http"]`). Written from the services the runtime serves, so
 * plugins' endpoints are in it; the paths are built once (services do not change once started).
 *
 * Client generators key on the names, so they are upstream's (kinto/core/openapi.py over its
 * cornice services): tags and operationIds made from the service name unless the service gives
 * its own (`Service.openapi`), no HEAD nor OPTIONS operation, the path parameters on the path, the
 * querystring and header parameters of the resource endpoints, the body parameter named after its
 * schema (`ObjectSchema`), and the answers of each status code a resource endpoint gives.
 * Routes upstream serves outside its services (default bucket, admin, metrics) are left out.
 */
import {asString} from '../config/settings.js'
import type {OpenApiHints, Service, ViewDef} from './router.js'
import type {Runtime} from './runtime.js'
import {publicGet, service, utility} from './views.js'

type Json = Record<string, unknown>
type Parameter = Json & {name: string; in: string}

const UNDOCUMENTED_METHODS = new Set(['HEAD', 'OPTIONS'])
/** Upstream documents PATCH with these two: JSON Patch bodies have another schema. */
const DOCUMENTED_CONTENT_TYPES = new Set(['application/json', 'application/merge-patch+json'])

const ERROR_SCHEMA = {
  type: 'object',
  properties: {code: {type: 'integer'}, errno: {type: 'integer'}, error: {type: 'string'}, message: {type: 'string'}, info: {type: 'string'}, details: {}},
  required: ['code', 'errno', 'error'],
}
const PERMISSIONS_SCHEMA = {type: 'object', additionalProperties: {type: 'array', items: {type: 'string'}}}
const OBJECT_SCHEMA = {type: 'object', properties: {data: {type: 'object'}, permissions: PERMISSIONS_SCHEMA}}
const LIST_SCHEMA = {type: 'object', properties: {data: {type: 'array', items: {type: 'object'}}}}
const TIMESTAMP = {type: 'integer', minimum: 0}

const query = (name: string, schema: Json): Parameter => ({name, in: 'query', required: false, ...schema})
const header = (name: string, schema: Json): Parameter => ({name, in: 'header', required: false, ...schema})
const FIELDS = {type: 'array', items: {type: 'string'}, collectionFormat: 'csv'}
/** Every resource request may carry these (upstream's HeaderSchema). */
const PRECONDITIONS = [header('If-Match', {type: 'string'}), header('If-None-Match', {type: 'string'})]
const LIST_QUERY = [
  query('_limit', TIMESTAMP),
  query('_sort', FIELDS),
  query('_token', {type: 'string'}),
  query('_since', TIMESTAMP),
  query('_to', TIMESTAMP),
  query('_before', TIMESTAMP),
  query('id', {type: 'string'}),
  query('last_modified', TIMESTAMP),
]

/** The querystring and header parameters of a resource operation (upstream's request schemas). */
function resourceParameters(s: Service, method: string): Parameter[] {
  const params: Parameter[] = []
  if (s.endpointType === 'plural' && method !== 'POST') params.push(...LIST_QUERY)
  if (method === 'GET') params.push(query('_fields', FIELDS))
  params.push(...PRECONDITIONS)
  if (method === 'PATCH') params.push(header('Response-Behavior', {type: 'string', enum: ['full', 'light', 'diff']}))
  if (method === 'POST' || method === 'PUT' || method === 'PATCH') params.push({name: 'ObjectSchema', in: 'body', required: true, schema: OBJECT_SCHEMA})
  return params
}

const error = (description: string) => ({description, schema: ERROR_SCHEMA})
const CONTENT_TYPE_REFUSED = error('The body was not sent with a Content-Type the endpoint reads.')
const MISSING = error('The object does not exist, or was deleted.')

/** The answers of a resource operation by status code (upstream's ResourceResponses). */
function resourceResponses(s: Service, method: string): Json {
  const success = s.endpointType === 'plural' && method !== 'POST' ? {description: 'The objects asked for.', schema: LIST_SCHEMA} : {description: 'The object.', schema: OBJECT_SCHEMA}
  const responses: Json = {
    '200': success,
    '400': error('The request is invalid.'),
    '401': error('The request carries no credentials, and the endpoint needs some.'),
    '403': error('The caller may not do this, or may not reach the object.'),
    '406': error('The Accept header allows none of the types the endpoint answers.'),
    '412': error('The object changed since the version the precondition header names.'),
    default: error('Another error.'),
  }
  if (method === 'GET') responses['304'] = {description: 'Nothing changed since the version If-None-Match names.'}
  if (method === 'POST') Object.assign(responses, {'200': {description: 'The object existed already.', schema: OBJECT_SCHEMA}, '201': {description: 'The object, created.', schema: OBJECT_SCHEMA}})
  if (method === 'PUT') responses['201'] = {description: 'The object, created.', schema: OBJECT_SCHEMA}
  if (method === 'POST' || method === 'PUT' || method === 'PATCH') responses['415'] = CONTENT_TYPE_REFUSED
  if (s.endpointType === 'object' && method !== 'PUT') responses['404'] = MISSING
  return responses
}

/** Upstream's default tag: the service name, capitalised, `-plural`/`-object` made `s`. */
function defaultTag(s: Service): string {
  const name = s.name.charAt(0).toUpperCase() + s.name.slice(1).toLowerCase()
  return name.replace('-plural', 's').replace('-object', 's')
}

/** Upstream's default operationId: `get_buckets`, `create_bucket`, `update_record`, `create_flush`… */
function defaultOperationId(s: Service, method: string): string {
  const verb = ({post: 'create', put: 'update'} as Record<string, string>)[method.toLowerCase()] ?? method.toLowerCase()
  let name = s.name
  if (verb === 'create') name = name.replace('-plural', '')
  return `${verb}_${name.replace('-plural', 's').replace('-object', '')}`
}

function operation(s: Service, view: ViewDef, hints: OpenApiHints, security: Array<Record<string, string[]>>): Json {
  const method = view.method
  const parameters: Parameter[] = s.resourceName ? resourceParameters(s, method) : (hints.query ?? []).map((q) => ({...q, in: 'query'}))
  if (!s.resourceName && hints.body && view.parseBody) parameters.push({name: hints.body.name, in: 'body', required: true, schema: hints.body.schema})
  const consumes = view.contentTypes?.filter((t) => DOCUMENTED_CONTENT_TYPES.has(t))
  let responses: Json
  if (s.resourceName) responses = resourceResponses(s, method)
  else if (hints.responses) {
    responses = {}
    for (const [code, response] of Object.entries(hints.responses)) {
      if (typeof response !== 'string') responses[code] = response
      else if (code.startsWith('2')) responses[code] = {description: response, schema: {type: 'object'}}
      else if (code.startsWith('3')) responses[code] = {description: response}
      else responses[code] = error(response)
    }
  } else responses = {default: {description: 'The answer.'}}
  return {
    tags: hints.tags ?? [defaultTag(s)],
    operationId: hints.operationIds?.[method] ?? defaultOperationId(s, method),
    ...(consumes?.length ? {consumes} : {}),
    produces: ['application/json'],
    ...(parameters.length > 0 ? {parameters} : {}),
    responses,
    security: view.permission === 'public' && !hints.authenticated ? [] : security,
  }
}

/** The paths object: each described service's path with its parameters and one operation per method. */
function pathsOf(services: Service[], security: Array<Record<string, string[]>>): Record<string, Json> {
  const paths: Record<string, Json> = {}
  for (const s of services) {
    if (s.openapi === false) continue
    const hints = s.openapi ?? {}
    const views = [...s.views.values()].filter((v) => !UNDOCUMENTED_METHODS.has(v.method))
    if (views.length === 0) continue
    const path = hints.path ?? s.pattern.replace(/\{(\w+)\*\}/g, '{$1}')
    const item: Json = {}
    const names = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1])
    if (names.length > 0) item.parameters = names.map((name) => ({name, in: 'path', required: true, type: hints.pathTypes?.[name] ?? 'string'}))
    for (const view of views) item[view.method.toLowerCase()] = operation(s, view, hints, security)
    paths[path] = item
  }
  return paths
}

/** The tags of the operations, in the order they first appear (as upstream lists them). */
function tagsOf(paths: Record<string, Json>): Array<{name: string}> {
  const names = new Set<string>()
  for (const item of Object.values(paths)) {
    for (const [key, op] of Object.entries(item)) if (key !== 'parameters') for (const t of (op as {tags: string[]}).tags) names.add(t)
  }
  return [...names].map((name) => ({name}))
}

export function openapiService(runtime: Runtime): Service {
  let built: {paths: unknown; tags: unknown; securityDefinitions: unknown} | undefined
  return service(
    'openapi',
    '/__api__',
    [
      publicGet(async (ctx) => {
        if (!built) {
          const securityDefinitions: Record<string, Record<string, unknown>> = {}
          for (const p of runtime.policies) {
            const own = p.securityDefinition?.()
            if (own) securityDefinitions[own.name] = own.definition
            // Upstream's basicauth definition is `{"type": "basic"}` alone.
            else securityDefinitions[p.name] = p.name === 'basicauth' || p.name === 'account' ? {type: 'basic'} : {type: 'apiKey', name: 'Authorization', in: 'header'}
          }
          const security = Object.keys(securityDefinitions).map((name) => ({[name]: []}))
          const paths = pathsOf(runtime.router.services, security)
          built = {paths, tags: tagsOf(paths), securityDefinitions}
        }
        const version = asString(runtime.settings, 'http_api_version') ?? '1.23'
        return {
          body: {
            swagger: '2.0',
            info: {title: asString(runtime.settings, 'project_name') ?? 'kinto', version},
            host: ctx.req.host,
            basePath: `/v${version.split('.')[0]}`,
            schemes: [asString(runtime.settings, 'http_scheme') || 'http'],
            ...built,
          },
        }
      }),
    ],
    {noTransaction: true, openapi: utility('get_openapi_spec', {'200': 'This description of the running server.'})},
  )
}
