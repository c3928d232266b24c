// CLI figures: wall time of `kinto` commands as a deploy script sees them (process start
// included), each the median of repeated runs. Folded in from the first bench/migrate.js, which
// is now a thin entry point over migrateFigures().
import {cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {createBenchDatabase} from './dataset.js'
import {median, note, root, run, targetRoot} from './util.js'

async function timed(bin, args, cwd = root) {
  const r = await run(process.execPath, [bin, ...args], {cwd, timeoutMs: 300_000})
  if (r.code !== 0) throw new Error(`kinto ${args.join(' ')} exited ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`)
  return r.ms
}

function migrateIni(dir, url) {
  const ini = path.join(dir, 'kinto.ini')
  const lines = ['[app:main]', 'use = egg:kinto']
  for (const b of ['storage', 'permission', 'cache']) lines.push(`kinto.${b}_backend = kinto.core.${b}.postgresql`, `kinto.${b}_url = ${url}`)
  writeFileSync(ini, lines.join('\n') + '\n')
  return ini
}

/** Full `kinto migrate` on an empty database, then the no-op one; medians over `runs` fresh databases. */
export async function migrateFigures(bin, engine, adminUrl, runs) {
  const install = []
  const noop = []
  for (let i = 0; i < runs; i++) {
    const db = await createBenchDatabase(engine, adminUrl)
    try {
      const ini = migrateIni(db.dir, db.url)
      install.push(await timed(bin, ['migrate', '--ini', ini]))
      noop.push(await timed(bin, ['migrate', '--ini', ini]))
    } finally {
      await db.drop()
    }
  }
  return {install: median(install), noop: median(noop), runs}
}

/**
 * A copy of the built CLI without the oclif.manifest.json the build writes: what a start costs when
 * oclif must import every command module to learn the commands (a build that skipped that step).
 * Returns the bin path and a cleanup, or null when it cannot be made.
 */
export async function noManifestCopy() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-bench-nomanifest-'))
  try {
    for (const d of ['bin', 'dist', 'templates', 'sql']) if (existsSync(path.join(targetRoot(), d))) cpSync(path.join(targetRoot(), d), path.join(dir, d), {recursive: true})
    cpSync(path.join(targetRoot(), 'package.json'), path.join(dir, 'package.json'))
    symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'))
    return {bin: path.join(dir, 'bin', 'run.js'), dir, cleanup: () => rmSync(dir, {recursive: true, force: true})}
  } catch (err) {
    note(`could not make a copy without the oclif manifest: ${err.message}`)
    rmSync(dir, {recursive: true, force: true})
    return null
  }
}

/**
 * Every CLI figure the bench reports. `bins` maps a label to a bin (the build as is, and the same without
 * its oclif manifest); the runs of the bins alternate, so that noise from other processes hits them
 * alike. The migrate figures run fresh databases; PGlite's full install (initdb) is slow, so it is
 * measured for the first bin only and only when `full`.
 */
export async function cliFigures({bins, runs, adminUrl, full = true}) {
  const labels = Object.keys(bins)
  const fig = Object.fromEntries(labels.map((l) => [l, {}]))
  const cwd = mkdtempSync(path.join(os.tmpdir(), 'kinto-bench-cli-'))
  const alternate = async (name, argsOf) => {
    const times = Object.fromEntries(labels.map((l) => [l, []]))
    for (let i = 0; i < runs; i++) for (const l of labels) times[l].push(await timed(bins[l], argsOf(l, i), cwd))
    for (const l of labels) fig[l][name] = median(times[l])
  }
  try {
    // Node.js alone (`node -e 0`): the part of every start that is not ours.
    const node = []
    for (let i = 0; i < runs; i++) node.push((await run(process.execPath, ['-e', '0'], {cwd, timeoutMs: 60_000})).ms)
    for (const l of labels) fig[l].node = median(node)
    await alternate('version', () => ['--version'])
    await alternate('init', (l, i) => {
      const ini = path.join(cwd, `init-${l}-${i}`, 'kinto.ini')
      mkdirSync(path.dirname(ini))
      return ['init', '--ini', ini, '--yes', '--backend', 'memory']
    })
    const deployIni = path.join(cwd, `init-${labels[0]}-0`, 'kinto.ini')
    await alternate('deployNginx', () => ['deploy', 'nginx', '--ini', deployIni, '--server-name', 'kinto.example.com'])
    if (adminUrl) {
      for (const l of labels) fig[l].pg = {install: [], noop: [], runs}
      for (let i = 0; i < runs; i++) {
        for (const l of labels) {
          const one = await migrateFigures(bins[l], 'postgresql', adminUrl, 1)
          fig[l].pg.install.push(one.install)
          fig[l].pg.noop.push(one.noop)
        }
      }
      for (const l of labels) fig[l].pg = {install: median(fig[l].pg.install), noop: median(fig[l].pg.noop), runs}
    }
    if (full) fig[labels[0]].pglite = await migrateFigures(bins[labels[0]], 'pglite', adminUrl, Math.min(runs, 3))
  } finally {
    rmSync(cwd, {recursive: true, force: true})
  }
  return fig
}
