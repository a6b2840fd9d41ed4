// SPDX-License-Identifier: MIT
// proxy.js: a fault-injecting proxy in front of the tests' S3 server, for
// what the server itself does not do. Every request with a body has its
// x-amz-content-sha256 checked against the body (400
// XAmzContentSHA256Mismatch otherwise); AbortMultipartUpload (DELETE
// ?uploadId=) is answered here with 204 and logged as "ABORT key". Faults
// come from the file CONTROL, read at each request (JSON, may be absent):
//   {"fail": "partNumber=2", "status": 500}  answer that status to requests
//                                             whose URL contains the text
//                                             (and "method": "PUT": of that
//                                             method only)
//   {"stall": "GET"}                          never answer that method
//   {"cut": "GET", "after": 1000000}          break the connection of the first
//                                             such request of each URL after so
//                                             many bytes of the answer's body
// A Range header is logged as "RANGE <value>".
// Prints "port N"; logs "METHOD URL" of each request to LOG.
// Usage: node proxy.js UPSTREAM_PORT CONTROL LOG FIRST LAST
'use strict';
const [upstream, control, log, first, last] = process.argv.slice(2);
const http = require('http');
const crypto = require('crypto');
const fs = require('fs');

function faults() {
  try { return JSON.parse(fs.readFileSync(control, 'utf8')); } catch (e) { return {}; }
}

const cut = new Set();   // the URLs whose answer was cut already

function handle(req, res) {
  const chunks = [];
  const sha = crypto.createHash('sha256');
  req.on('data', (c) => { sha.update(c); chunks.push(c); });
  req.on('end', () => {
    const f = faults();
    fs.appendFileSync(log, req.method + ' ' + req.url + '\n');
    if (req.headers.range) fs.appendFileSync(log, 'RANGE ' + req.headers.range + '\n');
    const declared = req.headers['x-amz-content-sha256'];
    const digest = sha.digest('hex');
    if (f.stall && f.stall === req.method) return;   // the client's timeout ends it
    if (f.fail && req.url.includes(f.fail) && (!f.method || f.method === req.method)) {
      res.writeHead(f.status || 500, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0"?><Error><Code>InternalError</Code>' +
        '<Message>injected by the test proxy</Message></Error>');
      return;
    }
    if (declared && declared !== 'UNSIGNED-PAYLOAD' && declared !== digest) {
      res.writeHead(400, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0"?><Error><Code>XAmzContentSHA256Mismatch</Code>' +
        '<Message>The provided x-amz-content-sha256 header does not match</Message></Error>');
      return;
    }
    if (req.method === 'DELETE' && /[?&]uploadId=/.test(req.url)) {
      fs.appendFileSync(log, 'ABORT ' + req.url.split('?')[0] + '\n');
      res.writeHead(204);
      res.end();
      return;
    }
    const body = Buffer.concat(chunks);
    const headers = Object.assign({}, req.headers);
    const up = http.request({ host: '127.0.0.1', port: upstream, method: req.method,
      path: req.url, headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      if (f.cut === req.method && !cut.has(req.url) && r.statusCode === 200) {
        cut.add(req.url);
        let sent = 0;
        r.on('data', (c) => {
          if (sent >= f.after) return;
          res.write(c.subarray(0, Math.min(c.length, f.after - sent)));
          sent += c.length;
          if (sent >= f.after) res.socket.destroy();
        });
        return;
      }
      r.pipe(res);
    });
    up.on('error', () => { res.destroy(); });
    up.end(body);
  });
}

(function listen(port) {
  if (port > Number(last)) {
    console.error('proxy.js: no free port from ' + first + ' to ' + last);
    process.exit(1);
  }
  const server = http.createServer(handle);
  server.once('error', (e) => {
    if (e.code === 'EADDRINUSE') listen(port + 1); else throw e;
  });
  server.listen(port, '127.0.0.1', () => console.log('port ' + port));
})(Number(first));
