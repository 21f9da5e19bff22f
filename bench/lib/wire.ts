/**
 * Layer: bench support. Wire traffic at rest, counted on the lab bridge:
 * every ARP frame and every VRRP packet (IP protocol 112) that enters the
 * bridge from one of its ports, i.e. that some host put on the wire. The
 * capture runs in the bridge's namespace (`tcpdump -i any -Q in`), and the
 * bridge's own interface `br0` is left out so that a broadcast flooded to it
 * is not counted twice.
 *
 * Without tcpdump it falls back to the bridge ports' receive counters
 * (`ip -s link`), which count the same frames but cannot tell ARP from VRRP.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { Lab } from '../../test/support/lab';

/** Frames per second put on the wire, by kind. */
export interface WireRate {
  /** Everything counted (ARP + VRRP + other), per second. */
  frames_per_s: number;
  arp_requests_per_s?: number;
  arp_replies_per_s?: number;
  vrrp_per_s?: number;
  other_per_s?: number;
  seconds: number;
  method: 'tcpdump' | 'link-counters';
}

function hasTcpdump(): boolean {
  return spawnSync('sh', ['-c', 'command -v tcpdump'], { stdio: 'ignore' }).status === 0;
}

/** Bridge ports' received packets (frames hosts sent), summed. */
async function portRxPackets(lab: Lab): Promise<number> {
  const r = spawnSync('ip', ['-n', lab.bridgeNs, '-s', '-j', 'link', 'show', 'master', 'br0'], { encoding: 'utf8', timeout: 5000 });
  const links = JSON.parse(r.stdout || '[]') as Array<{ stats64?: { rx?: { packets?: number } } }>;
  return links.reduce((s, l) => s + (l.stats64?.rx?.packets ?? 0), 0);
}

/**
 * Count what the lab's hosts send for `seconds` (the caller keeps the
 * client quiet meanwhile) and return the rates.
 */
export async function measureWire(lab: Lab, seconds: number): Promise<WireRate> {
  if (!hasTcpdump()) {
    const before = await portRxPackets(lab);
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const after = await portRxPackets(lab);
    return { frames_per_s: (after - before) / seconds, seconds, method: 'link-counters' };
  }
  const counts = { req: 0, rep: 0, vrrp: 0, other: 0 };
  const td = spawn('ip', ['netns', 'exec', lab.bridgeNs, 'tcpdump', '-i', 'any', '-Q', 'in', '-nn', '-e', '-l', '-q',
    'arp or ip proto 112'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let buf = '';
  let started = false;
  let counting = false;
  let stderr = '';
  const ready = new Promise<void>((resolve) => {
    td.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!started && stderr.includes('listening on')) { started = true; resolve(); }
    });
    setTimeout(resolve, 3000);
  });
  td.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (!counting) continue;
      const f = line.trim().split(/\s+/);
      if (f[1] === 'br0' || f.length < 3) continue;
      if (/\bRequest\b/.test(line)) counts.req++;
      else if (/\bReply\b/.test(line)) counts.rep++;
      else if (/VRRP|ip-proto-112/.test(line)) counts.vrrp++;
      else counts.other++;
    }
  });
  const exited = new Promise<void>((r) => td.once('exit', () => r()));
  try {
    await ready;
    if (!started) throw new Error(`tcpdump did not start in ${lab.bridgeNs}: ${stderr.trim()}`);
    counting = true;
    await new Promise((r) => setTimeout(r, seconds * 1000));
    counting = false;
  } finally {
    td.kill('SIGINT');
    const t = setTimeout(() => td.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(t);
  }
  const per = (n: number) => Math.round((n / seconds) * 1000) / 1000;
  return {
    frames_per_s: per(counts.req + counts.rep + counts.vrrp + counts.other),
    arp_requests_per_s: per(counts.req),
    arp_replies_per_s: per(counts.rep),
    vrrp_per_s: per(counts.vrrp),
    other_per_s: per(counts.other),
    seconds,
    method: 'tcpdump',
  };
}
