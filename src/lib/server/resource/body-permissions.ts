/** The `permissions` member of a request body, read as upstream's schema reads it. */
import {invalid, invalidParameters, type ValidationIssue} from '../errors.js'
import {isPlainObject} from '../patch.js'
import {colanderStringError, pyRepr} from '../py-repr.js'

/**
 * A mapping of the resource's permission names (`names`) to lists of principals, or null for a
 * name to remove: each principal a colander String. Anything else is upstream's 400.
 */
export function validatePermissions(value: unknown, names: readonly string[]): Record<string, string[] | null> {
  if (!isPlainObject(value)) {
    throw invalid('body', 'permissions', `"${pyRepr(value)}" is not a mapping type: Does not implement dict-like functionality.`)
  }
  // An unknown permission name fails the whole mapping, as upstream's OneOf check on it.
  const unknownPerm = Object.keys(value).find((perm) => value[perm] !== null && !names.includes(perm))
  if (unknownPerm !== undefined) {
    throw invalid('body', 'permissions', `"${unknownPerm}" is not one of ${names.join(', ')}`)
  }
  const issues: ValidationIssue[] = []
  const result: Record<string, string[] | null> = {}
  for (const [perm, principals] of Object.entries(value)) {
    if (principals === null) {
      result[perm] = null
      continue
    }
    if (!Array.isArray(principals)) {
      issues.push({location: 'body', name: `permissions.${perm}`, description: `"${pyRepr(principals)}" is not iterable`})
      continue
    }
    principals.forEach((p, i) => {
      const error = colanderStringError(p)
      if (error !== undefined) issues.push({location: 'body', name: `permissions.${perm}.${i}`, description: error})
    })
    result[perm] = principals as string[]
  }
  if (issues.length > 0) throw invalidParameters(issues)
  return result
}
