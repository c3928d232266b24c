import {readFileSync, readlinkSync} from 'node:fs'

/** Whether a process of that pid exists (one of another user's counts: EPERM). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * What tells the process running as a pid from an earlier one given the same pid (after a
 * reboot, or another process reusing it): the kernel's boot id, the pid namespace the pid is
 * counted in, and the process's start time (Linux /proc).
 */
export interface ProcessIdentity {
  boot: string
  pidns: string
  start: string
}

function bootId(): string {
  return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
}

/** The identity of `pid` now (null where /proc does not say: not Linux, or no such process). */
export function processIdentity(pid: number): ProcessIdentity | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The fields after the command name (which may hold spaces and parentheses) start at field 3;
    // starttime is field 22.
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? ''
    if (!/^\d+$/.test(start)) return null
    return {boot: bootId(), pidns: readlinkSync('/proc/self/ns/pid'), start}
  } catch {
    return null
  }
}

/**
 * Whether the process that recorded `identity` (its processIdentity then) still runs as `pid`.
 * After a reboot (another boot id) it cannot. In the same pid namespace, a process with another
 * start time is a later one given that pid. A pid of another namespace (a container's) cannot be
 * checked from here: it counts as running while some process has that pid, as without identity.
 */
export function sameProcessAlive(pid: number, identity: ProcessIdentity | undefined): boolean {
  if (identity && typeof identity.boot === 'string') {
    try {
      if (identity.boot !== bootId()) return false
    } catch {}
  }
  if (!processAlive(pid)) return false
  if (!identity || typeof identity.start !== 'string') return true
  const now = processIdentity(pid)
  if (now === null || now.pidns !== identity.pidns) return true
  return now.start === identity.start
}

/** Whether `pid` is stopped (SIGSTOP, Ctrl-Z: state T in /proc); false where /proc does not say. */
export function processStopped(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return /^[Tt]$/.test(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '')
  } catch {
    return false
  }
}
