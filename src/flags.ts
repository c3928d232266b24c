import {Flags} from '@oclif/core'

/** Shared flags, defined once. Every command that reads config takes --ini. */
export const iniFlag = Flags.string({
  summary: 'Kinto ini file to read.',
  description: 'Defaults to $KINTO_INI, else config/kinto.ini relative to the current folder.',
  env: 'KINTO_INI',
  default: 'config/kinto.ini',
  helpValue: 'FILE',
})

export const yesFlag = Flags.boolean({
  char: 'y',
  summary: 'Answer yes to every question; never prompt.',
  env: 'KINTO_YES',
  default: false,
})

export const forceFlag = Flags.boolean({
  summary: 'Overwrite or destroy what exists.',
  default: false,
})

export const adminUrlFlag = Flags.string({
  summary: 'PostgreSQL URL of a role allowed to create databases and roles.',
  description: 'Defaults to the storage URL of the ini.',
  env: 'KINTO_ADMIN_URL',
  helpValue: 'URL',
})

export const dryRunFlag = Flags.boolean({
  summary: 'Print what would be done; change nothing.',
  default: false,
})
