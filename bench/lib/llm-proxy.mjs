// The floor of the LLM gateway benchmark: the least any gateway can add. A pass-through HTTP proxy
// in 40 lines of node:http (keep-alive to the replica, the response piped through byte for byte:
// no parsing, no routing, no metrics). It pays for what every gateway pays on this machine, one
// more process between client and replica (two more socket hops, a process to wake up), and
// nothing else. The gap between it and Tessera is Tessera's own doing.
//   node bench/lib/llm-proxy.mjs '{"port":8001,"upstream":"http://127.0.0.1:8000"}'
import http from 'node:http';

const { port, upstream } = JSON.parse(process.argv[2] ?? '{}');
const target = new URL(upstream);
if (target.hostname !== '127.0.0.1') throw new Error(`llm-proxy.mjs forwards to 127.0.0.1 only, not ${target.hostname}`);
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, keepAliveMsecs: 30_000 });
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host']);
const pick = (headers) => Object.fromEntries(Object.entries(headers).filter(([k]) => !HOP.has(k)));

const server = http.createServer((req, res) => {
  const up = http.request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: pick(req.headers), agent }, (ur) => {
    res.writeHead(ur.statusCode ?? 502, pick(ur.headers));
    ur.pipe(res);
  });
  up.on('error', (err) => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(String(err.message));
  });
  // the client left: drop the upstream request too (the replica aborts the sequence)
  res.on('close', () => {
    if (!res.writableFinished) up.destroy();
  });
  req.pipe(up);
});
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => process.stdout.write(`llm-proxy listening on 127.0.0.1:${port} → ${target.origin}\n`));
for (const signal of ['SIGTERM', 'SIGINT']) process.once(signal, () => server.close(() => process.exit(0)).closeAllConnections());
