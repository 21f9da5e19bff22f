// Reading a daemon's Prometheus endpoint in tests: one request over its unix
// socket, and one sample out of the exposition text.
import * as http from 'node:http';
import { SLACK_MS } from './vigil';

/** One HTTP request over a unix socket: status, body and content type. */
export function scrape(socketPath: string, urlPath = '/metrics', method = 'GET'): Promise<{ status: number; body: string; type?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: urlPath, method, timeout: SLACK_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ...(res.headers['content-type'] ? { type: res.headers['content-type'] } : {}) }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${socketPath} within ${SLACK_MS} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** The value of one sample (`name{labels} value`) whose labels include `labels`, or undefined when absent. */
export function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const m = /^[^{]+\{([^}]*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const have = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[2]);
  }
  return undefined;
}
