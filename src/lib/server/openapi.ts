/**
 * `GET /v1/__api__`: an OpenAPI 2.0 (Swagger) description of the running instance, as upstream
 * serves one (title project_name, version http_api_version, basePath `/v<major>`, host of the
 * request, schemes `[http_scheme or "http"]`). Written from the services the runtime serves, so
 * plugins' endpoints are in it; the paths are built once (services do not change once started).
 */
import {asString} from '../config/settings.js'
import type {Service, ViewDef} from './router.js'
import type {Runtime} from './runtime.js'
import {publicGet, service} from './views.js'

type Operation = Record<string, unknown>

const RESPONSES: Record<string, Record<string, {description: string}>> = {
  GET: {'200': {description: 'The object, the list or the answer asked for.'}},
  HEAD: {'200': {description: 'The headers of the GET answer (Total-Records on lists).'}},
  POST: {'201': {description: 'Created.'}, '200': {description: 'It existed already, or done (batch).'}},
  PUT: {'201': {description: 'Created.'}, '200': {description: 'Replaced.'}},
  PATCH: {'200': {description: 'Modified.'}},
  DELETE: {'200': {description: 'Deleted (a tombstone, or the list of them).'}},
}

/** `Buckets`, `Records`…, or `Utilities` for the endpoints that are not a resource. */
function tagOf(s: Service): string {
  if (!s.resourceName) return 'Utilities'
  const name = s.resourceName.charAt(0).toUpperCase() + s.resourceName.slice(1)
  return name.endsWith('s') ? name : `${name}s`
}

/** `get_buckets`, `create_bucket`, `update_record`…; the service name for the others. */
function operationId(s: Service, method: string): string {
  const verb = ({POST: 'create', PUT: 'update'} as Record<string, string>)[method] ?? method.toLowerCase()
  if (!s.resourceName) return `${verb}_${s.name.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_|_$/g, '')}`
  const plural = s.endpointType === 'plural' && method !== 'POST'
  return `${verb}_${s.resourceName}${plural ? 's' : ''}`
}

function operation(s: Service, view: ViewDef, security: Array<Record<string, string[]>>): Operation {
  const parameters: Array<Record<string, unknown>> = [...s.pattern.matchAll(/\{(\w+)\*?\}/g)].map((m) => ({name: m[1], in: 'path', required: true, type: 'string'}))
  if (view.parseBody) parameters.push({name: 'body', in: 'body', required: false, schema: {type: 'object'}})
  return {
    tags: [tagOf(s)],
    operationId: operationId(s, view.method),
    ...(view.contentTypes ? {consumes: view.contentTypes} : {}),
    produces: ['application/json'],
    parameters,
    responses: RESPONSES[view.method] ?? {'200': {description: 'Done.'}},
    security: view.permission === 'public' ? [] : security,
  }
}

/** The paths object: each service's pattern with one operation per method it serves. */
function pathsOf(services: Service[], security: Array<Record<string, string[]>>): Record<string, Record<string, Operation>> {
  const paths: Record<string, Record<string, Operation>> = {}
  for (const s of services) {
    if (s.views.size === 0) continue
    const item = (paths[s.pattern.replace(/\{(\w+)\*\}/g, '{$1}')] ??= {})
    for (const view of s.views.values()) item[view.method.toLowerCase()] = operation(s, view, security)
    const get = s.views.get('GET')
    if (get && !s.views.has('HEAD')) item.head = {...operation(s, get, security), operationId: operationId(s, 'HEAD'), responses: RESPONSES.HEAD}
  }
  return paths
}

export function openapiService(runtime: Runtime): Service {
  let built: {paths: unknown; tags: unknown; securityDefinitions: unknown} | undefined
  return service(
    'openapi',
    '/__api__',
    [
      publicGet(async (ctx) => {
        if (!built) {
          const securityDefinitions: Record<string, Record<string, string>> = {}
          for (const p of runtime.policies) {
            const own = p.securityDefinition?.()
            if (own) securityDefinitions[own.name] = own.definition
            else securityDefinitions[p.name] = p.name === 'basicauth' || p.name === 'account' ? {type: 'basic', description: `${p.name} (HTTP Basic)`} : {type: 'apiKey', name: 'Authorization', in: 'header'}
          }
          const security = Object.keys(securityDefinitions).map((name) => ({[name]: []}))
          const services = runtime.router.services
          built = {
            paths: pathsOf(services, security),
            tags: [...new Set(services.map(tagOf))].sort().map((name) => ({name})),
            securityDefinitions,
          }
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
    {noTransaction: true},
  )
}
