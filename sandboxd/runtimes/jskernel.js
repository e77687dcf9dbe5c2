// jskernel.js -- the stateful JavaScript interpreter of a warmpool slot.
//
// sandboxd (sandboxd/kernel.c) starts it once per slot, at warm-up, inside
// the slot (its uid, seccomp filter, cgroup), as
//     /usr/bin/node /opt/warmpool/jskernel.js
// with LD_PRELOAD=/opt/warmpool/nodump.so (the process is not dumpable: no
// other process of the slot can write its memory through /proc; Node has no
// prctl of its own), no NODE_OPTIONS nor any other NODE_* variable, fd 0 /dev/null, fds 1 and 2 the output files sandboxd reads back, fd 3
// the requests and fd 4 the replies (see README.md next to this file). One
// request per line: {"code": "...", "max_output": N}; one reply per request:
// {"status": "ok"|"error", "result": "<util.inspect of the completion value>"|null,
//  "value": <the value as JSON>}: what Azure's API answers as the result: a
// boolean, a finite number or a string as itself, NaN and infinities as null,
// undefined and null as "", anything else as its util.inspect text.
//
// Each execution is a vm.Script run in this very context (not a separate
// one): globals, `var`, functions and top-level `let`/`const` persist between
// executions (they live in the context's global lexical scope); Node's whole
// world is there (require, console, process, Buffer, timers). Declaring the
// same `let`/`const` twice is a SyntaxError, as in two <script>s of one page.
// A completion value that is a Promise is awaited. Code with a top-level
// `await` is run as Node's REPL runs it (the same rewriting: the value of its
// last expression is the completion value, and its top-level declarations
// become globals that later executions see), through a REPL server made on
// first use with no input and no output.
'use strict';

const fs = require('fs');
const path = require('path');
const net = require('net');
const util = require('util');
const vm = require('vm');
const { createRequire } = require('module');

const REQ_FD = 3;
const REP_FD = 4;
const HERE = __filename;
const writeSync = fs.writeSync;
const stringify = JSON.stringify;
const parse = JSON.parse;
const inspect = util.inspect;
const byteLength = Buffer.byteLength;

// Refuse to serve when dumpable (a non-dumpable process's /proc files belong
// to root): a run of the slot could then rewrite this process's memory.
if (fs.statSync('/proc/self/mem').uid !== 0 && process.getuid() !== 0) {
	writeSyncAll(2, 'jskernel: still dumpable: /opt/warmpool/nodump.so was not preloaded (build it: make)\n');
	process.exit(78);
}

function writeSyncAll(fd, text) {
	const buf = Buffer.from(text, 'utf8');
	for (let off = 0; off < buf.length;)
		off += writeSync(fd, buf, off, buf.length - off);
}

function send(obj) {
	const buf = Buffer.from(stringify(obj) + '\n', 'utf8');
	let off = 0;
	while (off < buf.length) {
		try {
			off += writeSync(REP_FD, buf, off, buf.length - off);
		} catch (e) {
			if (e.code !== 'EAGAIN')
				process.exit(70);
		}
	}
}

function writeErr(text) {
	const buf = Buffer.from(text, 'utf8');
	let off = 0;
	while (off < buf.length) {
		try {
			off += writeSync(2, buf, off, buf.length - off);
		} catch (e) {
			if (e.code !== 'EAGAIN')
				return;
		}
	}
}

// The error as Node prints it, without this file's frames and Node's own.
function describe(e) {
	if (e instanceof Error || (e && typeof e.stack === 'string')) {
		let stack;
		try {
			stack = String(e.stack);
		} catch (e2) {
			return 'Uncaught ' + safeInspect(e) + '\n';
		}
		const lines = stack.split('\n').filter(
			(l) => !(/^\s+at /.test(l) && (l.includes(HERE) || /\(node:|at node:/.test(l))));
		return lines.join('\n').replace(/\n*$/, '\n');
	}
	return 'Uncaught ' + safeInspect(e) + '\n';
}

function safeInspect(v) {
	try {
		return inspect(v);
	} catch (e) {
		return '[uninspectable value]';
	}
}

// The code's world: this context's globals, plus what a CommonJS module has.
globalThis.require = createRequire(path.join(process.cwd(), '[exec]'));
globalThis.module = { exports: {}, require: globalThis.require };
globalThis.exports = globalThis.module.exports;
globalThis.__filename = path.join(process.cwd(), '[exec]');
globalThis.__dirname = process.cwd();

// Errors thrown later by timers or promises the code left behind are
// printed (to the stderr of whichever execution is running), not fatal.
process.on('uncaughtException', (e) => writeErr(describe(e)));
process.on('unhandledRejection', (e) => writeErr(describe(e)));

// null when the code needs top-level await (run by runAwait), else its Script.
function compile(code, filename) {
	try {
		return new vm.Script(code, { filename });
	} catch (e) {
		if (e instanceof SyntaxError && /await is only valid/.test(e.message))
			return null;
		throw e;
	}
}

let replServer = null;
let replPending = null; // the callback of the REPL evaluation in flight

// Node's REPL evaluation (its top-level await rewriting), with our globals.
// Errors of an awaited evaluation reach the REPL's domain, not the callback:
// they are routed to the evaluation in flight, or printed as uncaught.
function runAwait(code, filename) {
	if (!replServer) {
		const repl = require('repl');
		const { PassThrough, Writable } = require('stream');
		replServer = repl.start({
			input: new PassThrough(), output: new Writable({ write(c, e, cb) { cb(); } }),
			terminal: false, useGlobal: true, prompt: '', ignoreUndefined: true,
		});
		replServer._domain.removeAllListeners('error');
		replServer._domain.on('error', (e) => {
			if (replPending)
				replPending(e); // (it clears replPending)
			else
				writeErr(describe(e));
		});
	}
	return new Promise((resolve, reject) => {
		const done = (err, value) => {
			if (replPending !== done)
				return;
			replPending = null;
			if (err)
				reject(err);
			else
				resolve(value);
		};
		replPending = done;
		replServer.eval(code, globalThis, filename, done);
	});
}

// The value as Azure answers it (see the top of this file).
function jsonValue(v, text) {
	if (v === undefined || v === null)
		return '';
	if (typeof v === 'boolean' || typeof v === 'string')
		return v;
	if (typeof v === 'number')
		return Number.isFinite(v) ? v : null;
	return text === null ? '' : text;
}

let cells = 0;

async function cell(req) {
	let status = 'ok';
	let result = null;
	let out = '';
	const maxOutput = typeof req.max_output === 'number' ? req.max_output : 1 << 20;
	cells++;
	try {
		if (typeof req.code !== 'string')
			throw new TypeError('no code');
		const filename = `cell-${cells}`;
		const script = compile(req.code, filename);
		let value = script ? script.runInThisContext({ displayErrors: false }) : await runAwait(req.code, filename);
		if (value !== null && (typeof value === 'object' || typeof value === 'function') &&
		    typeof value.then === 'function')
			value = await value;
		if (value !== undefined)
			result = inspect(value);
		out = jsonValue(value, result);
	} catch (e) {
		status = 'error';
		writeErr(describe(e));
	}
	if (result !== null && byteLength(result, 'utf8') > maxOutput)
		result = Buffer.from(result, 'utf8').subarray(0, maxOutput).toString('utf8');
	if (typeof out === 'string' && byteLength(out, 'utf8') > maxOutput)
		out = Buffer.from(out, 'utf8').subarray(0, maxOutput).toString('utf8');
	return { status, result, value: out };
}

// Requests arrive on fd 3 through the event loop, so that timers and
// promises of earlier executions keep running between executions.
const queue = [];
let pending = '';
let busy = false;

async function drain() {
	if (busy)
		return;
	busy = true;
	while (queue.length) {
		let req;
		try {
			req = parse(queue.shift());
		} catch (e) {
			process.exit(70);
		}
		send(await cell(req));
	}
	busy = false;
}

function listen() {
	const input = new net.Socket({ fd: REQ_FD, readable: true, writable: false });
	input.setEncoding('utf8');
	input.on('data', (chunk) => {
		pending += chunk;
		let nl;
		while ((nl = pending.indexOf('\n')) >= 0) {
			queue.push(pending.slice(0, nl));
			pending = pending.slice(nl + 1);
		}
		drain();
	});
	input.on('end', () => process.exit(0)); // sandboxd closed the pipe: the slot is going
	input.on('error', () => process.exit(0));
	send({ ready: true });
}

// Warm every path an execution takes (compile, run, inspect, an error's
// stack), so that the first execution is as fast as the next; then ready.
describe(new Error('warm-up'));
cell({ code: '[1, "x"]', max_output: 64 }).then(() => {
	cells = 0;
	listen();
});
