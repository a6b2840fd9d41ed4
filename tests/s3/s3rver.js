// SPDX-License-Identifier: MIT
// s3rver.js: the S3 server of the tests (@20minutes/s3rver), on 127.0.0.1
// at the first free port from FIRST to LAST, its buckets "lupine" and
// "other" made at start. Prints "port N" once it answers; appends
// "METHOD URL" of each request to LOG, so tests can count what was sent.
// Usage: node --openssl-legacy-provider s3rver.js MODULES DIR LOG FIRST LAST
'use strict';
const [modules, dir, log, first, last] = process.argv.slice(2);
const fs = require('fs');
const S3rver = require(modules + '/node_modules/@20minutes/s3rver');

async function start(port) {
  const server = new S3rver({ address: '127.0.0.1', port, directory: dir, silent: true,
    configureBuckets: [{ name: 'lupine', configs: [] }, { name: 'other', configs: [] }] });
  await server.run();
  server.httpServer.prependListener('request', (req) => {
    fs.appendFileSync(log, req.method + ' ' + req.url + '\n');
  });
  return server;
}

// Whether a port is free: s3rver reports a taken one as an uncaught error
// event, not a failed start, so each is tried on a bare server first.
function free(port) {
  return new Promise((resolve) => {
    const probe = require('net').createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

(async () => {
  for (let port = Number(first); port <= Number(last); port++) {
    if (await free(port)) {
      await start(port);
      console.log('port ' + port);
      return;
    }
  }
  console.error('s3rver.js: no free port from ' + first + ' to ' + last);
  process.exit(1);
})();
