'use strict';

// An express app with cube/front.js around routes that fail the ways Cube's
// can (a handler that rejects, one that throws, an error thrown later on its
// own), to show that each request is answered and the process goes on.
// Usage: node failing.js <cube folder>; prints "listening on <port>".
const path = require('path');

const cubeDir = path.resolve(process.argv[2]);
const express = require(path.join(cubeDir, 'node_modules', 'express'));
const front = require(path.join(cubeDir, 'front.js'));

const log = (message, fields) => console.log(front.boundedLine({ message, ...fields }));
front.protectProcess(log);
const app = express();
front.mountFront(app, { apiSecret: 'failing-test', maxInFlight: 0, log });
app.get('/cubejs-api/v1/load', async (req, res, next) => {
  if (req.query.fail === 'reject') {
    await Promise.resolve();
    throw new Error(`rejected in ${__filename}`);
  }
  if (req.query.fail === 'throw') throw new Error(`thrown in ${__filename}`);
  if (req.query.fail === 'later') {
    setTimeout(() => { throw new Error('thrown on its own'); }, 1);
    Promise.reject(new Error('rejected on its own'));
  }
  next();
}, (req, res) => res.json({ ok: true }));
app.get('/cubejs-api/v1/meta', (req, res) => res.status(400).json({
  error: `Error: cannot open ${cubeDir}/model/x.js`, stack: new Error('x').stack,
}));
front.mountBack(app, log);
const server = app.listen(0, '127.0.0.1', () => console.log(`listening on ${server.address().port}`));
