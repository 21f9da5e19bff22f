/**
 * Layer: bench support. One HTTP request made from inside a lab host (to a
 * service on that host's loopback, such as a Consul test double), by a
 * short-lived node process started in the namespace. Meant for setup and
 * read-back outside the measured windows: each call spawns a process.
 */
import type { LabHost } from '../../test/support/lab';

/** Status and body of a request made from a lab host; status 0 when it failed. */
export interface NsHttpResponse { status: number; body: string }

// Runs in the namespace: argv[1] url, argv[2] method, argv[3] body ('' for none).
const SCRIPT = [
  "const http=require('http');",
  'const r=http.request(process.argv[1],{method:process.argv[2],timeout:5000},(res)=>{',
  "let b='';res.setEncoding('utf8');res.on('data',(c)=>{b+=c;});",
  "res.on('end',()=>{process.stdout.write(JSON.stringify({status:res.statusCode,body:b}));});});",
  "r.on('timeout',()=>r.destroy(new Error('timeout')));",
  "r.on('error',(e)=>{process.stdout.write(JSON.stringify({status:0,body:String(e)}));});",
  'r.end(process.argv[3]||undefined);',
].join('');

/** `method url` from inside `host`, with an optional body. */
export async function nsHttp(host: LabHost, method: string, url: string, body?: string): Promise<NsHttpResponse> {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const r = await host.exec([process.execPath, '-e', SCRIPT, url, method, body ?? ''], { timeoutMs: 15_000, env });
  try {
    return JSON.parse(r.stdout) as NsHttpResponse;
  } catch {
    return { status: 0, body: `no answer (exit ${r.code}): ${r.stderr.trim().slice(0, 300)}` };
  }
}

/** GET `url` from inside `host` and parse the JSON body; throws on a non-200 answer. */
export async function nsGetJson<T>(host: LabHost, url: string): Promise<T> {
  const r = await nsHttp(host, 'GET', url);
  if (r.status !== 200) throw new Error(`GET ${url} from ${host.ns}: ${r.status} ${r.body.slice(0, 300)}`);
  return JSON.parse(r.body) as T;
}
