import {expect} from 'vitest'

import {KintoError} from '../../src/lib/errors.js'

/** The KintoError fn throws (fails the test when it throws nothing or something else). */
export function kintoErrorOf(fn: () => unknown): KintoError {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(KintoError)
    return error as KintoError
  }
  throw new Error('expected an error')
}
