/**
 * A bare HTTP pass-through proxy in a process of its own, for the HTTP benchmark: the least any service placed
 * between a client and Storage must do (read every byte from one socket, write it to another), with no Functions
 * host, no library and no crypto. Its throughput is the ceiling for a relay on the same CPUs.
 *
 * Usage (from bench/http.bench.ts): node passThroughProxy.js <target origin>; prints `listening <port>`, and exits
 * when its parent closes the IPC channel.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

const target = new URL(process.argv[2] ?? '');
const agent = new http.Agent({ keepAlive: true });
const server = http.createServer((req, res) => {
  const upstream = http.request(
    { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', () => res.destroy());
  req.pipe(upstream);
});
server.listen(0, '127.0.0.1', () => {
  console.log(`listening ${(server.address() as AddressInfo).port}`);
});
process.on('disconnect', () => process.exit(0));
