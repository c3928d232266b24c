/**
 * The permission contract: every Permission implementation must pass it.
 */
import {beforeEach, describe, expect, it} from 'vitest'

import type {Permission} from '../../src/lib/permission/types.js'

const B = '/buckets/b1'
const C = '/buckets/b1/collections/c1'
const REC = '/buckets/b1/collections/c1/records/r1'

const sorted = (m: Map<string, Set<string>>) => Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, [...v].sort()]))

export function permissionContract(get: () => Permission): void {
  let perm: Permission
  beforeEach(async () => {
    perm = get()
    await perm.flush()
  })

  describe('user principals', () => {
    it('adds (idempotently), lists and removes principals of a user', async () => {
      await perm.addUserPrincipal('basicauth:alice', '/buckets/b1/groups/g1')
      await perm.addUserPrincipal('basicauth:alice', '/buckets/b1/groups/g1')
      await perm.addUserPrincipal('basicauth:alice', '/buckets/b1/groups/g2')
      expect(await perm.getUserPrincipals('basicauth:alice')).toEqual(new Set(['/buckets/b1/groups/g1', '/buckets/b1/groups/g2']))
      await perm.removeUserPrincipal('basicauth:alice', '/buckets/b1/groups/g1')
      await perm.removeUserPrincipal('basicauth:alice', '/not/there')
      expect(await perm.getUserPrincipals('basicauth:alice')).toEqual(new Set(['/buckets/b1/groups/g2']))
    })

    it("includes the groups of system.Authenticated in every user's principals", async () => {
      await perm.addUserPrincipal('system.Authenticated', '/buckets/b1/groups/everyone')
      await perm.addUserPrincipal('basicauth:bob', '/buckets/b1/groups/g1')
      expect(await perm.getUserPrincipals('basicauth:bob')).toEqual(new Set(['/buckets/b1/groups/g1', '/buckets/b1/groups/everyone']))
      expect(await perm.getUserPrincipals('basicauth:nobody')).toEqual(new Set(['/buckets/b1/groups/everyone']))
    })

    it('removePrincipal drops every membership in a group', async () => {
      await perm.addUserPrincipal('u1', '/g')
      await perm.addUserPrincipal('u2', '/g')
      await perm.addUserPrincipal('u2', '/h')
      await perm.removePrincipal('/g')
      expect(await perm.getUserPrincipals('u1')).toEqual(new Set())
      expect(await perm.getUserPrincipals('u2')).toEqual(new Set(['/h']))
    })
  })

  describe('access control entries', () => {
    beforeEach(async () => {
      await perm.addPrincipalToAce(B, 'write', 'alice')
      await perm.addPrincipalToAce(B, 'read', 'system.Everyone')
      await perm.addPrincipalToAce(C, 'write', 'bob')
      await perm.addPrincipalToAce(C, 'record:create', 'carol')
      await perm.addPrincipalToAce(REC, 'write', 'dave')
      await perm.addPrincipalToAce('/buckets/b2', 'write', 'alice')
      await perm.addPrincipalToAce('/buckets/b2/collections/c9', 'read', 'alice')
    })

    it('adds idempotently, reads and removes principals of an ACE', async () => {
      await perm.addPrincipalToAce(B, 'write', 'alice')
      await perm.addPrincipalToAce(B, 'write', 'erin')
      expect(await perm.getObjectPermissionPrincipals(B, 'write')).toEqual(new Set(['alice', 'erin']))
      await perm.removePrincipalFromAce(B, 'write', 'alice')
      await perm.removePrincipalFromAce(B, 'write', 'ghost')
      expect(await perm.getObjectPermissionPrincipals(B, 'write')).toEqual(new Set(['erin']))
      expect(await perm.getObjectPermissionPrincipals('/nothing', 'write')).toEqual(new Set())
    })

    it('removePrincipalFromObjects takes the principal out of every ACE of the named objects only', async () => {
      await perm.addPrincipalToAce(B, 'read', 'alice')
      await perm.addPrincipalToAce(C, 'read', 'alice')
      await perm.addPrincipalToAce(C, 'record:create', 'alice')
      await perm.removePrincipalFromObjects('alice', [B, C, '/nothing'])
      await perm.removePrincipalFromObjects('alice', [])
      expect(await perm.getObjectPermissions(B)).toEqual({read: new Set(['system.Everyone'])})
      expect(await perm.getObjectPermissions(C)).toEqual({write: new Set(['bob']), 'record:create': new Set(['carol'])})
      // Not named: kept.
      expect(await perm.getObjectPermissionPrincipals('/buckets/b2', 'write')).toEqual(new Set(['alice']))
      expect(await perm.getObjectPermissionPrincipals('/buckets/b2/collections/c9', 'read')).toEqual(new Set(['alice']))
    })

    it('addPrincipalToAceAndRead adds (idempotently) and answers the whole ACL, each entry once', async () => {
      expect(await perm.addPrincipalToAceAndRead(C, 'write', 'erin')).toEqual({write: new Set(['bob', 'erin']), 'record:create': new Set(['carol'])})
      expect(await perm.addPrincipalToAceAndRead(C, 'write', 'erin')).toEqual({write: new Set(['bob', 'erin']), 'record:create': new Set(['carol'])})
      expect(await perm.getObjectPermissions(C)).toEqual({write: new Set(['bob', 'erin']), 'record:create': new Set(['carol'])})
      expect(await perm.addPrincipalToAceAndRead('/buckets/b1/collections/new', 'write', 'frank')).toEqual({write: new Set(['frank'])})
      expect(await perm.getObjectPermissionPrincipals('/buckets/b1/collections/new', 'write')).toEqual(new Set(['frank']))
    })

    it('addPrincipalsToAcesAndRead writes every entry and answers each object\'s whole ACL, in entry order (where offered)', async (ctx) => {
      if (!perm.addPrincipalsToAcesAndRead) return ctx.skip('addPrincipalsToAcesAndRead is not offered by this permission backend')
      const NEW = C + '/records/new'
      // Not in the objects' order: the answers follow the entries.
      const acls = await perm.addPrincipalsToAcesAndRead([
        [NEW, 'write', 'erin'],
        [REC, 'write', 'erin'],
        [C, 'write', 'erin'],
        [B, 'read', 'frank'],
      ])
      expect(acls).toEqual([
        {write: new Set(['erin'])},
        {write: new Set(['dave', 'erin'])},
        {write: new Set(['bob', 'erin']), 'record:create': new Set(['carol'])},
        {write: new Set(['alice']), read: new Set(['system.Everyone', 'frank'])},
      ])
      // Written: the regular reads see them (and each answer is the object's ACL as read now).
      expect(await perm.getObjectsPermissions([NEW, REC, C, B])).toEqual(acls)
      expect(await perm.getObjectPermissionPrincipals(NEW, 'write')).toEqual(new Set(['erin']))
      expect(await perm.getObjectPermissionPrincipals(B, 'read')).toEqual(new Set(['system.Everyone', 'frank']))
      // Other objects untouched.
      expect(await perm.getObjectPermissions('/buckets/b2')).toEqual({write: new Set(['alice'])})
      expect(await perm.getObjectPermissions('/buckets/b2/collections/c9')).toEqual({read: new Set(['alice'])})
    })

    it('addPrincipalsToAcesAndRead is idempotent: entries already there, or given twice, are written and answered once (where offered)', async (ctx) => {
      if (!perm.addPrincipalsToAcesAndRead) return ctx.skip('addPrincipalsToAcesAndRead is not offered by this permission backend')
      const NEW = C + '/records/twice'
      const entries: Array<[string, string, string]> = [
        [C, 'write', 'bob'],
        [NEW, 'write', 'gina'],
        [NEW, 'write', 'gina'],
        [REC, 'write', 'dave'],
      ]
      const expected = [
        {write: new Set(['bob']), 'record:create': new Set(['carol'])},
        {write: new Set(['gina'])},
        {write: new Set(['gina'])},
        {write: new Set(['dave'])},
      ]
      expect(await perm.addPrincipalsToAcesAndRead(entries)).toEqual(expected)
      expect(await perm.addPrincipalsToAcesAndRead(entries)).toEqual(expected)
      expect(await perm.getObjectsPermissions([C, NEW, REC])).toEqual([expected[0], expected[1], expected[3]])
      // Each ACE once: removing it once leaves none.
      await perm.removePrincipalFromAce(NEW, 'write', 'gina')
      expect(await perm.getObjectPermissions(NEW)).toEqual({})
    })

    it('addPrincipalsToAcesAndRead: several entries for one object each answer its ACL after the whole write; an empty list answers [] (where offered)', async (ctx) => {
      if (!perm.addPrincipalsToAcesAndRead) return ctx.skip('addPrincipalsToAcesAndRead is not offered by this permission backend')
      const acls = await perm.addPrincipalsToAcesAndRead([
        [C, 'write', 'hank'],
        [B, 'write', 'ivy'],
        [C, 'read', 'jo'],
        [C, 'write', 'kim'],
      ])
      const c = {write: new Set(['bob', 'hank', 'kim']), 'record:create': new Set(['carol']), read: new Set(['jo'])}
      expect(acls).toEqual([c, {write: new Set(['alice', 'ivy']), read: new Set(['system.Everyone'])}, c, c])
      expect(await perm.getObjectPermissions(C)).toEqual(c)
      expect(await perm.addPrincipalsToAcesAndRead([])).toEqual([])
    })

    it('getObjectPermissions and getObjectsPermissions (in order, filtered)', async () => {
      expect(await perm.getObjectPermissions(C)).toEqual({write: new Set(['bob']), 'record:create': new Set(['carol'])})
      expect(await perm.getObjectPermissions(C, ['write', 'read'])).toEqual({write: new Set(['bob'])})
      expect(await perm.getObjectsPermissions([REC, '/none', B])).toEqual([
        {write: new Set(['dave'])},
        {},
        {write: new Set(['alice']), read: new Set(['system.Everyone'])},
      ])
      expect(await perm.getObjectsPermissions([])).toEqual([])
    })

    it('replaceObjectPermissions rewrites only the named permissions', async () => {
      await perm.replaceObjectPermissions(B, {write: ['frank', 'frank', 'alice'], 'collection:create': ['gina']})
      expect(await perm.getObjectPermissions(B)).toEqual({
        write: new Set(['frank', 'alice']),
        read: new Set(['system.Everyone']),
        'collection:create': new Set(['gina']),
      })
      await perm.replaceObjectPermissions(B, {write: []})
      expect(await perm.getObjectPermissions(B)).toEqual({read: new Set(['system.Everyone']), 'collection:create': new Set(['gina'])})
      await perm.replaceObjectPermissions(B, {})
      expect(Object.keys(await perm.getObjectPermissions(B)).sort()).toEqual(['collection:create', 'read'])
    })

    it('deleteObjectPermissions: exact ids and * wildcards (for cascades)', async () => {
      await perm.deleteObjectPermissions(C + '/records/*')
      expect(await perm.getObjectPermissions(REC)).toEqual({})
      expect(await perm.getObjectPermissions(C)).not.toEqual({})
      await perm.deleteObjectPermissions(B, B + '/*')
      expect(await perm.getObjectPermissions(B)).toEqual({})
      expect(await perm.getObjectPermissions(C)).toEqual({})
      expect(await perm.getObjectPermissions('/buckets/b2')).toEqual({write: new Set(['alice'])})
      await perm.deleteObjectPermissions()
    })

    it('deleteObjectPermissions: a page of 70000 ids at once (more than a statement has parameters)', async () => {
      const ids = Array.from({length: 70000}, (_, i) => `${C}/records/x${i}`)
      await perm.addPrincipalToAce(ids[69999], 'read', 'bob')
      await perm.deleteObjectPermissions(...ids, B + '/groups/*')
      expect(await perm.getObjectPermissions(ids[69999])).toEqual({})
      expect(await perm.getObjectPermissions(REC)).not.toEqual({})
    })

    it('deleteObjectPermissions: _ and % are not wildcards', async () => {
      await perm.addPrincipalToAce('/buckets/a_b', 'write', 'x')
      await perm.addPrincipalToAce('/buckets/aXb', 'write', 'x')
      await perm.addPrincipalToAce('/buckets/aXb/collections/c', 'write', 'x')
      await perm.deleteObjectPermissions('/buckets/a_b', '/buckets/a_b/*')
      expect(await perm.getObjectPermissions('/buckets/aXb')).toEqual({write: new Set(['x'])})
      expect(await perm.getObjectPermissions('/buckets/aXb/collections/c')).toEqual({write: new Set(['x'])})
      expect(await perm.getObjectPermissions('/buckets/a_b')).toEqual({})
    })

    it('checkPermission: any bound permission held by any principal', async () => {
      expect(await perm.checkPermission(['bob'], [[B, 'write'], [C, 'write']])).toBe(true)
      expect(await perm.checkPermission(['nobody', 'system.Everyone'], [[B, 'read']])).toBe(true)
      expect(await perm.checkPermission(['bob'], [[B, 'write']])).toBe(false)
      expect(await perm.checkPermission(['bob'], [[B + '*', 'write']])).toBe(false)
      expect(await perm.checkPermission([], [[B, 'write']])).toBe(false)
      expect(await perm.checkPermission(['alice'], [])).toBe(false)
    })

    it('getAccessibleObjects: everything a principal holds', async () => {
      expect(sorted(await perm.getAccessibleObjects(['alice']))).toEqual({
        '/buckets/b1': ['write'],
        '/buckets/b2': ['write'],
        '/buckets/b2/collections/c9': ['read'],
      })
    })

    it('getAccessibleObjects with bound permissions and wildcards, with or without children', async () => {
      const who = ['alice', 'bob', 'dave', 'system.Everyone']
      expect(sorted(await perm.getAccessibleObjects(who, [['/buckets/*', 'write']]))).toEqual({
        '/buckets/b1': ['write'],
        '/buckets/b1/collections/c1': ['write'],
        '/buckets/b1/collections/c1/records/r1': ['write'],
        '/buckets/b2': ['write'],
      })
      expect(sorted(await perm.getAccessibleObjects(who, [['/buckets/*', 'write'], ['/buckets/*', 'read']], {withChildren: false}))).toEqual({
        '/buckets/b1': ['read', 'write'],
        '/buckets/b2': ['write'],
      })
      expect(sorted(await perm.getAccessibleObjects(who, [['/buckets/b1/collections/*', 'write']], {withChildren: false}))).toEqual({
        '/buckets/b1/collections/c1': ['write'],
      })
      expect(sorted(await perm.getAccessibleObjects(['carol'], [[C, 'record:create']]))).toEqual({[C]: ['record:create']})
      expect((await perm.getAccessibleObjects(who, [])).size).toBe(0)
    })

    it('getAuthorizedPrincipals', async () => {
      expect(await perm.getAuthorizedPrincipals([[B, 'write'], [C, 'write'], [C, 'read']])).toEqual(new Set(['alice', 'bob']))
      expect(await perm.getAuthorizedPrincipals([])).toEqual(new Set())
    })

    it('flush empties everything', async () => {
      await perm.addUserPrincipal('u', '/g')
      await perm.flush()
      expect(await perm.getObjectPermissions(B)).toEqual({})
      expect(await perm.getUserPrincipals('u')).toEqual(new Set())
    })
  })

  it('heartbeat works, readonly too, and leaves nothing behind', async () => {
    expect(await perm.heartbeat(false)).toBe(true)
    expect(await perm.heartbeat(true)).toBe(true)
    expect(await perm.getUserPrincipals('__heartbeat__')).toEqual(new Set())
  })
}
