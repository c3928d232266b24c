/** `kinto deploy nginx` with kinto_attachment configured: the files location, and its checked values. */
import {describe, expect, test} from 'vitest'

import {DeployValueError, apacheOptionsFrom, nginxOptionsFrom, renderApache, renderNginx, type DeployConfig} from '../../src/lib/deploy/index.js'

function config(settings: Record<string, unknown>): DeployConfig {
  return {path: '/etc/kinto/kinto.ini', dir: '/etc/kinto', settings, server: {host: '127.0.0.1', port: 8888}}
}

const ATTACHMENTS = {includes: 'kinto_attachment', 'attachment.base_path': '/srv/kinto/files', 'attachment.base_url': 'https://cdn.example.com/files/'}

describe('deploy nginx and attachments', () => {
  test('a location serves base_path at base_url’s path, with long cache headers', () => {
    const out = renderNginx(nginxOptionsFrom(config(ATTACHMENTS), {}))
    expect(out).toContain('    location ^~ /files/ {\n        alias /srv/kinto/files/;\n')
    expect(out).toContain('add_header Cache-Control "public, max-age=31536000, immutable" always;')
    // No script of an uploaded file runs in the origin (PDFs aside, which Chromium would not show).
    expect(out).toContain('add_header Content-Security-Policy $kinto_attachment_csp always;')
    expect(out).toContain(`map $sent_http_content_type $kinto_attachment_csp {\n    default "default-src 'none'; style-src 'unsafe-inline'; sandbox";\n    ~^application/pdf "";\n}`)
    expect(out.indexOf('location ^~ /files/')).toBeLessThan(out.indexOf('location / {'))
    expect(out).toMatch(/location ~ \^\/v\[0-9\]\+\/buckets\/.*\/attachment\$ \{\n        proxy_request_buffering off;\n        proxy_pass http:\/\/kinto_backend;/)
  })

  test.each([
    ['a filename_pattern without {filename}', {'attachment.filename_pattern': '{rid}'}],
    ['a collection’s filename_pattern without {filename}', {'attachment.resources.main.icons.filename_pattern': '{rid}-{datetime}'}],
  ])('%s: the same URL may serve a new file, so it is revalidated, never immutable', (_name, extra) => {
    const out = renderNginx(nginxOptionsFrom(config({...ATTACHMENTS, ...extra}), {}))
    expect(out).toContain('add_header Cache-Control "public, no-cache" always;')
    expect(out).not.toContain('immutable')
  })

  test('a filename_pattern with {filename} (its random part) keeps the long cache', () => {
    const out = renderNginx(nginxOptionsFrom(config({...ATTACHMENTS, 'attachment.filename_pattern': '{rid}/{filename}'}), {}))
    expect(out).toContain('add_header Cache-Control "public, max-age=31536000, immutable" always;')
    expect(out).not.toContain('no-cache')
  })

  test('a relative base_path is taken from the ini’s folder', () => {
    const out = renderNginx(nginxOptionsFrom(config({...ATTACHMENTS, 'attachment.base_path': 'files'}), {}))
    expect(out).toContain('alias /etc/kinto/files/;')
  })

  test.each([
    ['without kinto_attachment', {...ATTACHMENTS, includes: 'kinto.plugins.history'}],
    ['with base_url at the root', {...ATTACHMENTS, 'attachment.base_url': 'https://cdn.example.com/'}],
    ['with relative locations', {...ATTACHMENTS, 'attachment.base_url': ''}],
  ])('no files location %s', (_name, settings) => {
    expect(renderNginx(nginxOptionsFrom(config(settings), {}))).not.toContain('alias')
  })

  test('a base_url path that would break the file is refused, naming the setting', () => {
    let error: unknown
    try {
      renderNginx(nginxOptionsFrom(config({...ATTACHMENTS, 'attachment.base_url': 'https://cdn.example.com/a;b/'}), {}))
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(DeployValueError)
    expect((error as Error).message).toMatch(/kinto.attachment.base_url/)
  })
  test.each([
    ['kinto.attachment.max_size_bytes', {'attachment.max_size_bytes': 200 * 1024 * 1024}],
    ['a collection’s max_size_bytes', {'attachment.max_size_bytes': 1024, 'attachment.resources.main.videos.max_size_bytes': String(200 * 1024 * 1024)}],
  ])('%s over the default body size: the proxies let such an upload through (with room for the multipart envelope)', (_name, extra) => {
    const settings = {...ATTACHMENTS, ...extra}
    expect(renderNginx(nginxOptionsFrom(config(settings), {}))).toContain('client_max_body_size 201m;')
    expect(renderApache(apacheOptionsFrom(config(settings), {}))).toContain(`LimitRequestBody ${201 * 1024 * 1024}`)
    // Under the default, or without the plugin: the default; --max-body-size always wins.
    expect(renderNginx(nginxOptionsFrom(config({...ATTACHMENTS, 'attachment.max_size_bytes': 1024 * 1024}), {}))).toContain('client_max_body_size 75m;')
    expect(renderNginx(nginxOptionsFrom(config({...settings, includes: ''}), {}))).toContain('client_max_body_size 75m;')
    expect(renderNginx(nginxOptionsFrom(config(settings), {'max-body-size': '10m'}))).toContain('client_max_body_size 10m;')
  })
})
