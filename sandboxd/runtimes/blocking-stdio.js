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
'use strict';
for (const s of [process.stdout, process.stderr]) {
	if (s._handle && typeof s._handle.setBlocking === 'function')
		s._handle.setBlocking(true);
}
