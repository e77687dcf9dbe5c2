// blocking-stdio.js — preloaded into every judged JavaScript run
// (config/languages/javascript.conf: node --require /opt/warmpool/blocking-stdio.js).
//
// On Linux node writes to a stdout or stderr *pipe* asynchronously: what the
// pipe does not take at once is queued in node's own heap and written when
// the event loop gets to it. A judged program rarely yields to the loop, so
//   - a flood (`for(;;)process.stdout.write(...)`) never reaches the output
//     limit sandboxd counts on the pipe: it fills the heap instead and ends
//     as memory_limit_exceeded seconds later;
//   - output queued when the program calls process.exit() is lost.
// A blocking pipe makes node write as C, Python and Java do: a write returns
// once the pipe took it, so sandboxd sees every byte as it is written.
//
// The streams are made blocking when first used (console.log included), not
// here: creating them loads node's stream modules, which a program that
// prints nothing would otherwise not pay for in time and memory.
'use strict';
for (const name of ['stdout', 'stderr']) {
	const d = Object.getOwnPropertyDescriptor(process, name);
	if (!d || typeof d.get !== 'function' || !d.configurable)
		continue;
	Object.defineProperty(process, name, {
		configurable: true,
		enumerable: d.enumerable,
		get() {
			const s = d.get.call(process);
			if (s && s._handle && typeof s._handle.setBlocking === 'function')
				s._handle.setBlocking(true);
			Object.defineProperty(process, name, {
				configurable: true,
				enumerable: d.enumerable,
				writable: true,
				value: s,
			});
			return s;
		},
	});
}
