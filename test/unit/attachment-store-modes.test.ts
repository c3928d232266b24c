/**
 * docs/attachments.md: folders 0755 and files 0644, because the web server that `kinto deploy
 * nginx` points at base_path (another user) must read them. That holds under any umask of the
 * server process (systemd's UMask=0077, a hardened shell), not only the usual 022.
 */
import {statSync} from 'node:fs'
import path from 'node:path'
import {Readable} from 'node:stream'

import {afterEach, describe, expect, it} from 'vitest'

import {LocalStore} from '../../src/lib/server/plugins/attachment/store.js'
import {tempFolders} from '../helpers/tmp.js'

const tmp = tempFolders('attachment-modes')
const mode = (p: string) => statSync(p).mode & 0o777

describe('attachment files and folders', () => {
  const umask = process.umask()
  afterEach(() => {
    process.umask(umask)
  })

  it('are made 0755 and 0644 under a umask of 077, gzipped or not, the folders between base_path and the file too', async () => {
    process.umask(0o077)
    const store = new LocalStore(tmp())
    const written = await store.write(Readable.from([Buffer.from('{"a": 1}')]), 'b1/c1', 0)
    const location = await store.commit(written.tempPath, 'b1/c1', 'f.json')
    const gzipped = await store.gzip(await store.write(Readable.from([Buffer.from('{"a": 2}')]), 'b1/c1', 0))
    const gzLocation = await store.commit(gzipped.tempPath, 'b1/c1', 'g.json.gz')

    expect(mode(store.resolve(location)).toString(8)).toBe('644')
    expect(mode(store.resolve(gzLocation)).toString(8)).toBe('644')
    expect(mode(store.resolve('b1/c1')).toString(8)).toBe('755')
    expect(mode(store.resolve('b1')).toString(8)).toBe('755')
    expect(path.dirname(store.resolve(location))).toBe(store.resolve('b1/c1'))
  })
})
