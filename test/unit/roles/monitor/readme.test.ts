// The README's config example is a valid monitor: section (the doc cannot drift from the schema).
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { normalizeMonitor } from '../../../../src/roles/monitor/config';

t.test('README example normalizes', async (t) => {
  const md = readFileSync(join(__dirname, '../../../../src/roles/monitor/README.md'), 'utf8');
  const block = /```yaml\n([\s\S]*?)```/.exec(md);
  t.ok(block, 'the README has a yaml block');
  const doc = parse(block![1]!) as { monitor: unknown };
  const cfg = normalizeMonitor(doc.monitor);
  t.equal(cfg.networks.length, 3);
  t.equal(cfg.matrix.columns.length, 3);
  t.equal(cfg.guards.maxDown, 3);
});

t.test('README matrix example is K-20', async (t) => {
  const md = readFileSync(join(__dirname, '../../../../src/roles/monitor/README.md'), 'utf8');
  const blocks = [...md.matchAll(/```yaml\n([\s\S]*?)```/g)];
  const rows = (parse(blocks[1]![1]!) as { matrix: unknown[] }).matrix;
  const cfg = normalizeMonitor({
    networks: { mgmt: { url: 'http://127.0.0.1:8500' }, tenant: { url: 'http://127.0.0.1:8501' } },
    inventory: { source: 'kv' },
    matrix: rows,
  });
  t.same(cfg.matrix.rows, { 11: [], 10: ['migrate'], '01': ['email'], '00': ['ipmi', 'evacuate'] });
});
