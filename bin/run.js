#!/usr/bin/env node
// The installed `kinto`: runs the compiled commands of dist/ (bin/dev.js runs src/). oclif would
// otherwise look for TypeScript sources whenever NODE_ENV is development or test, which an
// operator's shell may set: a warning on every command where typescript is not installed.
import {execute, settings} from '@oclif/core'

settings.enableAutoTranspile = false
await execute({dir: import.meta.url})
