/**
 * Layer: test support. A real IPMI BMC simulator for the lab: Debian's
 * `ipmi_sim` (package openipmi) bound to a lab host's address on UDP 623,
 * with the smallest config that works (shared/spec/bmc-and-nova.md §1b):
 * one LAN channel, one admin user, and a chassis_control script whose power
 * state is a file the test can read. Plus a recording wrapper for ipmitool
 * that runs the real ipmitool inside the controller's namespace and writes
 * down its own /proc/self/cmdline and the names (not values) of its
 * environment, so a test can prove what reached argv.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { LabHost } from './lab';

/** A running simulator. */
export interface IpmiSim {
  proc: ChildProcess;
  ip: string;
  port: number;
  /** '1' on, '0' off, as the chassis_control script stores it. */
  power(): string;
  setPower(on: boolean): void;
  output(): string;
}

/** Start ipmi_sim in `host` on its address, user `user` with `password`, power on. */
export function startIpmiSim(host: LabHost, dir: string, user: string, password: string, port = 623): IpmiSim {
  const state = path.join(dir, 'power');
  fs.writeFileSync(state, '1\n');
  const ctl = path.join(dir, 'chassisctl');
  // ipmi_sim's chassis_control interface (openipmi lanserv/ipmi_sim_chassiscontrol):
  // `<mc> get <names…>` prints `name:value` lines; `<mc> set <name> <value>…` prints nothing.
  fs.writeFileSync(ctl, [
    '#!/bin/sh',
    `state=${JSON.stringify(state)}`,
    'shift; op=$1; shift',
    'case "$op" in',
    'get) for n in "$@"; do case "$n" in power) echo "power:$(cat "$state")";; boot) echo "boot:default";; esac; done;;',
    'set) while [ $# -ge 2 ]; do case "$1" in power) echo "$2" > "$state";; esac; shift 2; done;;',
    'esac',
    'exit 0',
    '',
  ].join('\n'), { mode: 0o700 });
  const conf = path.join(dir, 'lan.conf');
  fs.writeFileSync(conf, [
    'name "vigilsim"',
    'set_working_mc 0x20',
    '  startlan 1',
    `    addr ${host.ip} ${port}`,
    '    priv_limit admin',
    '    allowed_auths_callback none md5',
    '    allowed_auths_user none md5',
    '    allowed_auths_operator none md5',
    '    allowed_auths_admin none md5',
    '    guid a123456789abcdefa123456789abcdef',
    '  endlan',
    `  chassis_control "${ctl} 0x20"`,
    `  user 2 true "${user}" "${password}" admin 10 none md5`,
    '',
  ].join('\n'), { mode: 0o600 });
  const emu = path.join(dir, 'sim.emu');
  fs.writeFileSync(emu, 'mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02\nmc_enable 0x20\n');
  const stateDir = path.join(dir, 'simstate');
  fs.mkdirSync(stateDir, { recursive: true });
  const proc = host.spawn(['/usr/bin/ipmi_sim', '-c', conf, '-f', emu, '-s', stateDir, '-n']);
  let out = '';
  proc.stdout?.on('data', (c: Buffer) => { out += c.toString(); });
  proc.stderr?.on('data', (c: Buffer) => { out += c.toString(); });
  return {
    proc, ip: host.ip, port,
    power: () => fs.readFileSync(state, 'utf8').trim(),
    setPower: (on) => fs.writeFileSync(state, on ? '1\n' : '0\n'),
    output: () => out,
  };
}

/** What the recording wrapper saw for one run. */
export interface RecordedRun { cmdline: string[]; envNames: string[] }

/**
 * Write an executable wrapper that records its own argv (/proc/self/cmdline,
 * NUL-separated, exactly what `ps` shows) and environment names, then
 * execs the real ipmitool inside `host`'s namespace. Returns its path and
 * a reader of the runs recorded so far.
 */
export function recordingIpmitool(dir: string, host: LabHost): { program: string; runs(): RecordedRun[] } {
  const rec = path.join(dir, 'ipmitool-runs');
  fs.mkdirSync(rec, { recursive: true });
  const program = path.join(dir, 'ipmitool-wrapper');
  fs.writeFileSync(program, [
    '#!/bin/sh',
    `d=${JSON.stringify(rec)}/$$`,
    'mkdir -p "$d"',
    'tr "\\000" "\\n" < /proc/$$/cmdline > "$d/argv"',
    'env | cut -d= -f1 | sort > "$d/env"',
    `exec ip netns exec ${host.ns} /usr/bin/ipmitool "$@"`,
    '',
  ].join('\n'), { mode: 0o700 });
  return {
    program,
    runs: () => fs.readdirSync(rec).map((pid) => ({
      cmdline: fs.readFileSync(path.join(rec, pid, 'argv'), 'utf8').split('\n').filter(Boolean),
      envNames: fs.readFileSync(path.join(rec, pid, 'env'), 'utf8').split('\n').filter(Boolean),
    })),
  };
}
