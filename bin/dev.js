#!/usr/bin/env -S node --no-warnings=ExperimentalWarning
// Runs the TypeScript sources directly (tsx), for development and for tests that spawn the CLI.
import {execute} from '@oclif/core'

await execute({development: true, dir: import.meta.url})
