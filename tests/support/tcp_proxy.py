"""A TCP proxy the tests own, on 127.0.0.1, that they can cut and restore (issue 9, faults).

It forwards each accepted connection to ``target`` byte for byte (asyncio, in a thread of its
own). Three states:

- ``open``: connections are accepted and forwarded;
- ``cut``: every live connection is aborted and the listening socket is closed, so new
  connections are refused at once (the database went away);
- ``blackhole``: every live connection is aborted, new connections are accepted but nothing is
  forwarded or answered (a peer that went silent: the client's own timeouts must end it).

``restore()`` opens it again on the same port, so a server configured with the proxy's address
needs no restart. ``cut_after_next_commit()`` arms a sharper fault for a PostgreSQL target: the
next ``COMMIT`` a client sends reaches the database, and either the database's answer is dropped
and the proxy cut at that moment (the transaction is committed but the client never learns it:
the case an Idempotency-Key exists for), or the answer is passed on and the proxy cut at the
next thing a client sends (the database goes away right after a commit). Only the test's own
connections go through it; it never touches the target otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading

CHUNK = 65536
CALL_TIMEOUT_S = 10.0
# A simple-protocol Query message 'Q', its length (4 + 7), "COMMIT" and NUL, as psycopg sends it
# outside a pipeline; in a pipeline (the app commits with its last statements) the extended
# protocol's Parse message 'P', its length (4 + 1 + 7 + 2), the unnamed statement, "COMMIT" and
# no parameter types.
COMMIT_QUERIES = (b"Q\x00\x00\x00\x0bCOMMIT\x00", b"P\x00\x00\x00\x0e\x00COMMIT\x00\x00\x00")


class TcpProxy:
    """``TcpProxy(host, port).start()``; ``.port`` is where to connect; ``cut()``,
    ``blackhole()``, ``restore()``, ``stop()``."""

    def __init__(self, target_host: str, target_port: int, listen_port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.port = listen_port
        self.state = "stopped"
        self.accepted = 0  # connections accepted while open (forwarded)
        self.aborted = 0  # live connections aborted by cut() or blackhole()
        self.held = 0  # connections accepted and held silent while blackholed
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy",
                                        daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._transports: set[asyncio.BaseTransport] = set()
        self._commit_armed = False
        self._drop_commit_reply = True
        self._cut_on_next_send = False
        self.struck = threading.Event()

    # --- the test's side (any thread) ----------------------------------------------------------

    def start(self) -> TcpProxy:
        self._thread.start()
        self._run(self._listen())
        self.state = "open"
        return self

    def cut(self) -> None:
        """Refuse new connections and abort every live one."""
        self._run(self._close(keep_listening=False))
        self.state = "cut"

    def blackhole(self) -> None:
        """Abort every live connection; accept new ones but never forward nor answer."""
        self._run(self._silence())
        self.state = "blackhole"

    def cut_after_next_commit(self, drop_reply: bool = True) -> None:
        """Arm the commit fault (``drop_reply``: the answer to the COMMIT is lost, else the
        cut comes at the next query); ``struck`` is set once the proxy was cut by it."""
        self.struck.clear()
        self._drop_commit_reply = drop_reply
        self._cut_on_next_send = False
        self._commit_armed = True

    def restore(self) -> None:
        """Forward again, on the same port, with no fault left armed."""
        self._commit_armed = self._cut_on_next_send = False
        self._run(self._reopen())
        self.state = "open"

    def stop(self) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self._run(self._shutdown())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(CALL_TIMEOUT_S)
        if not self._loop.is_running():
            self._loop.close()
        self.state = "stopped"

    @property
    def live_connections(self) -> int:
        return len(self._transports)

    def _run(self, coroutine) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(CALL_TIMEOUT_S)

    # --- the loop's side ------------------------------------------------------------------------

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True, backlog=128)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _reopen(self) -> None:
        await self._close(keep_listening=False)
        await self._listen()

    async def _silence(self) -> None:
        await self._close(keep_listening=True)
        if self._server is None:
            await self._listen()

    async def _shutdown(self) -> None:
        await self._close(keep_listening=False)
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        if tasks:  # the aborted connections end their tasks by themselves
            await asyncio.wait(tasks, timeout=CALL_TIMEOUT_S / 2)

    async def _close(self, keep_listening: bool) -> None:
        self.state = "blackhole" if keep_listening else "cut"
        if not keep_listening and self._server is not None:
            self._server.close()
            self._server = None
        for transport in list(self._transports):
            transport.abort()
        self.aborted += len(self._transports)
        self._transports.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = writer.transport
        self._transports.add(client)
        try:
            if self.state == "cut":
                return  # accepted just before the listener closed: abort it too
            if self.state == "blackhole":
                self.held += 1
                # Hold the connection, read and drop whatever comes, answer nothing.
                while await reader.read(CHUNK):
                    pass
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
            except OSError:
                return
            self.accepted += 1
            upstream = up_writer.transport
            self._transports.add(upstream)
            link = _Link()
            try:
                await asyncio.gather(self._pipe(reader, up_writer, link.client_sent),
                                     self._pipe(up_reader, writer, link.server_sent))
            finally:
                self._transports.discard(upstream)
                upstream.abort()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            self._transports.discard(client)
            client.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    forward) -> None:
        """Copy until end of stream, then pass the end on (half close), as TCP would;
        ``forward(proxy, data)`` may hold a chunk back (False)."""
        try:
            while data := await reader.read(CHUNK):
                if not await forward(self, data):
                    return
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            writer.transport.abort()


class _Link:
    """One proxied connection: it notices the armed COMMIT going up and drops its answer."""

    def __init__(self) -> None:
        self.commit_sent = False

    async def client_sent(self, proxy: TcpProxy, data: bytes) -> bool:
        if proxy._cut_on_next_send:
            # The first thing any client sends after the commit went through: cut instead.
            proxy._cut_on_next_send = False
            await proxy._close(keep_listening=False)
            proxy.struck.set()
            return False
        if proxy._commit_armed and any(query in data for query in COMMIT_QUERIES):
            proxy._commit_armed = False
            self.commit_sent = True
        return True

    async def server_sent(self, proxy: TcpProxy, data: bytes) -> bool:
        if not self.commit_sent:
            return True
        # The database answered the COMMIT: it is done.
        self.commit_sent = False
        if not proxy._drop_commit_reply:
            proxy._cut_on_next_send = True
            return True
        await proxy._close(keep_listening=False)
        proxy.struck.set()
        return False


def port_is_refused(port: int) -> bool:
    """True when nothing accepts on 127.0.0.1:``port`` (the connection is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return True
        except OSError:
            return False
        return False
