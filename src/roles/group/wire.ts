/**
 * Layer: role `group`, wiring. One group's engine over the real members,
 * the journal, the hooks and the preflight checks (ARP probe, owner lock),
 * shared by the CLI and the daemon's runner so both act the same way.
 */
import { hostname } from 'node:os';
import { readSecureFile } from '../../config/permissions';
import { ConsulClient } from '../../consul/client';
import { GroupEngine, type Step } from './engine';
import { RealAddressIo, addressProbeCheck, buildMembers, runHook } from './io';
import { OwnerLock } from './owner-lock';
import { readJournal, recordMember, type Journal } from './state';
import type { GroupConfig, Member } from './types';

/** An engine with the parts the callers also use directly. */
export interface WiredGroup {
  engine: GroupEngine;
  members: Member[];
  lock?: OwnerLock;
  journal: Journal;
  /** Read the journal again (another invocation may have changed it). */
  reload(): void;
}

/** The owner lock of `g` on this node, through the configured Consul agent. */
export function ownerLockOf(g: GroupConfig, topNode: string | undefined): OwnerLock | undefined {
  const c = g.ownerLock;
  if (!c) return undefined;
  const token = c.tokenFile !== undefined ? readSecureFile(c.tokenFile, 'key', { label: 'token file' }).trim() : undefined;
  const client = new ConsulClient({ url: c.url, timeoutMs: 5000, ...(token ? { token } : {}) });
  return new OwnerLock(client, { ...c, node: c.node ?? topNode ?? hostname() }, g.name);
}

/**
 * Wire group `g`. `dry`: the lock check only reads. A dry run does not
 * write the journal (the engine does not record in a plan).
 */
export function wireGroup(g: GroupConfig, opts: { io: RealAddressIo; node?: string; dry: boolean; withLock: boolean; onStep?: (s: Step) => void }): WiredGroup {
  const journal = readJournal(g.stateDir, g.name);
  const lock = opts.withLock ? ownerLockOf(g, opts.node) : undefined;
  const members = buildMembers(g, opts.io, (m) => journal.members[m]);
  const engine = new GroupEngine({
    config: g,
    members,
    // The lock first: it is what gives the right to act; the probe then finds what the holder left behind.
    preflight: [...(lock ? [lock.check(opts.dry)] : []), addressProbeCheck(g)],
    runHook: (h, cmd) => runHook(g, h, cmd),
    recorded: (m) => journal.members[m],
    record: (m, s) => { journal.members[m] = s; recordMember(g.stateDir, g.name, m, s); },
    ...(opts.onStep ? { onStep: opts.onStep } : {}),
  });
  return { engine, members, ...(lock ? { lock } : {}), journal, reload: () => Object.assign(journal, readJournal(g.stateDir, g.name)) };
}
