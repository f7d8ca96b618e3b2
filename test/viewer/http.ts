import { request } from 'node:http';

/** A raw HTTP answer. */
export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * One HTTP request with exactly the headers given (fetch would not let a test
 * set `Host`, nor leave `Origin` out the way curl does).
 */
export function rawRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        method: options.method ?? 'GET',
        headers: options.headers,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

/** POSTs an action to `<base>actions` the way the console's page does: its own origin, the token, JSON. */
export function postAction(
  base: string,
  action: unknown,
  over: { token?: string | null; origin?: string | null; host?: string; type?: string; method?: string } = {},
): Promise<Answer> {
  const u = new URL(base);
  const headers: Record<string, string> = {
    host: over.host ?? u.host,
    'content-type': over.type ?? 'application/json',
  };
  const origin = over.origin === undefined ? u.origin : over.origin;
  if (origin !== null) headers.origin = origin;
  if (over.token !== null && over.token !== undefined) headers.authorization = `Bearer ${over.token}`;
  return rawRequest(new URL('actions', base).href, {
    method: over.method ?? 'POST',
    headers,
    body: over.method === 'GET' ? undefined : JSON.stringify(action),
  });
}
