/**
 * kinto.plugins.admin: upstream serves the Kinto Admin web app (a built JavaScript bundle) at
 * /v1/admin/. kinto-ops does not ship that bundle: including the plugin is reported once at
 * startup, /v1/admin and everything below answer a 404 saying so (instead of a bare "not found"),
 * and its side effect is kept — it turns on GET /v1/permissions (see index.ts), which the admin
 * app uses. No `admin` capability is advertised, since there is no console to link to.
 */
import {ERRNO, HttpError} from '../errors.js'
import type {ViewDef} from '../router.js'
import type {KintoPlugin} from './index.js'

export const ADMIN_NOT_SERVED =
  'The Kinto Admin web console is not served by this server (kinto-ops does not ship it). Run a kinto-admin build elsewhere and point it at this server; kinto.plugins.admin only enables /v1/permissions here.'

const notServed: ViewDef = {
  method: 'GET',
  permission: 'public',
  async handler() {
    throw new HttpError(404, {errno: ERRNO.MISSING_RESOURCE, message: ADMIN_NOT_SERVED})
  },
}

export const adminPlugin: KintoPlugin = {
  name: 'kinto.plugins.admin',
  includeme(api) {
    api.runtime.logger.warn(
      {plugin: 'kinto.plugins.admin'},
      'kinto.includes lists kinto.plugins.admin: the Kinto Admin web console is not bundled with kinto-ops, so /v1/admin/ is not served (404); /v1/permissions is enabled as upstream does with this plugin.',
    )
    const views = new Map([['GET', notServed]])
    api.addService({name: 'admin_home', pattern: '/admin', views, noTransaction: true})
    api.addService({name: 'admin_static', pattern: '/admin/{subpath*}', views, noTransaction: true})
  },
}
