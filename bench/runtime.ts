/**
 * Layer: bench. The runtime role's cycle (runtime_publish, issue 15's
 * compute-node side) through its real I/O (src/roles/runtime/daemon.ts's
 * realRuntimeIo: the file, the agent's self and leader, one KV read, a ?cas
 * write) against the Consul TEST DOUBLE on loopback: how long a steady
 * (unchanged) cycle and a publishing cycle take, and what each sends.
 *
 *   npx ts-node-transpile-only bench/runtime.ts [--runs N]
 *
 * Writes bench/results/runtime.json (medians in ms).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { normalizeRuntimePublish } from '../src/roles/runtime/config';
import { realRuntimeIo } from '../src/roles/runtime/daemon';
import { RuntimePublisher } from '../src/roles/runtime/runner';
import { freeLoopbackPort, startConsulDouble, tempAgentConfig } from '../test/support/consul-double';
import { median, round } from './lib/stats';
import { writeResult } from './lib/results';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '200' } } });
const RUNS = Number(values.runs);

async function main(): Promise<void> {
  const cfgDir = tempAgentConfig({ node_name: 'cmp-01', retry_join: ['10.99.0.5'] });
  const d = await startConsulDouble({ configDir: cfgDir, host: '127.0.0.1', port: await freeLoopbackPort() });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-bench-runtime-'));
  try {
    const file = path.join(dir, 'runtime_config.json');
    const cfg = normalizeRuntimePublish({ consul: { url: d.url }, kv_prefix: 'ha_cluster', file, interval: '60s', request_timeout: '5s' });
    const pub = new RuntimePublisher(cfg, 'cmp-01', realRuntimeIo(cfg), pino({ level: 'silent' }));
    const steady: number[] = [];
    const publishing: number[] = [];
    const obj = { vcpus: 8, instances_path: '/var/lib/nova/instances', disks: Array.from({ length: 8 }, (_, i) => `/dev/vd${String.fromCharCode(97 + i)}`) };
    fs.writeFileSync(file, JSON.stringify(obj));
    await pub.cycle();
    const before = (await d.requests()).length;
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      const r = await pub.cycle();
      steady.push(performance.now() - t0);
      if (r.reason !== 'unchanged') throw new Error(`expected an unchanged cycle, got ${JSON.stringify(r)}`);
    }
    const steadyRequests = (await d.requests()).length - before;
    for (let i = 0; i < RUNS; i++) {
      fs.writeFileSync(file, JSON.stringify({ ...obj, vcpus: i }));
      const t0 = performance.now();
      const r = await pub.cycle();
      publishing.push(performance.now() - t0);
      if (r.result !== 'published') throw new Error(`expected a publication, got ${JSON.stringify(r)}`);
    }
    const result = {
      runs: RUNS,
      steadyCycleMs: round(median(steady)),
      requestsPerSteadyCycle: round(steadyRequests / RUNS),
      publishingCycleMs: round(median(publishing)),
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    writeResult('runtime', result);
  } finally {
    await d.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(cfgDir, { recursive: true, force: true });
  }
}

main().catch((e) => { process.stderr.write(`${(e as Error).stack}\n`); process.exit(1); });
