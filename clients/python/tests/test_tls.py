"""https://: the service speaks plain HTTP, so TLS is a proxy's job in front of it. This test puts a
small TLS-terminating proxy (a self-signed certificate made with the openssl command) in front of
the real server and runs every kind of call through it, the duplex stream included."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any, Iterator, Tuple

import pytest

import prefeval


class TLSProxy:
    """Terminates TLS and forwards the bytes both ways, on an asyncio loop of its own thread."""

    def __init__(self, upstream_port: int, cert: Path, key: Path) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        self.upstream_port = upstream_port
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.server = self.loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=context)
            )
            self.port = self.server.sockets[0].getsockname()[1]
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        started.wait(10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def pipe(source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
            try:
                while True:
                    data = await source.read(65536)
                    if not data:
                        break
                    target.write(data)
                    await target.drain()
            except (OSError, ssl.SSLError):
                pass
            finally:
                target.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    def close(self) -> None:
        async def shutdown() -> None:
            self.server.close()
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def tls(server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[str, str]]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    proxy = TLSProxy(server.port, cert, key)
    yield f"https://localhost:{proxy.port}", str(cert)
    proxy.close()


def test_https_batch_compare_and_duplex_stream(tls: Tuple[str, str]) -> None:
    url, ca = tls
    lists = [{"id": f"l{i}", "items": [{"reward": float((i + k) % 9)} for k in range(12)]} for i in range(3000)]
    with prefeval.Client(url, verify=ca) as client:
        assert client.evaluate(lists[:2]).summary.lists == 2
        assert client.compare([{"items": [{"rewards": [1.0, 0.0]}, {"rewards": [0.0, 1.0]}]}], models=["a", "b"]).lists == 1
        # With pairs the answer is far larger than the body: a real duplex through TLS.
        with client.evaluate_stream(iter(lists)) as stream:
            items = list(stream)
    assert [item.line for item in items] == list(range(1, 3001))
    assert stream.summary is not None and stream.summary.lists == 3000


def test_https_certificate_is_verified(tls: Tuple[str, str]) -> None:
    url, _ = tls
    with prefeval.Client(url, max_retries=0) as client:  # the system CAs do not know it
        with pytest.raises(prefeval.PrefevalConnectionError):
            client.evaluate([{"items": [{"reward": 1.0}, {"reward": 0.0}]}])
        with pytest.raises(prefeval.PrefevalConnectionError):
            client.evaluate_stream([{"items": [{"reward": 1.0}, {"reward": 0.0}]}])


@pytest.mark.anyio
async def test_https_async(tls: Tuple[str, str]) -> None:
    url, ca = tls
    async with prefeval.AsyncClient(url, verify=ca) as client:
        assert (await client.evaluate([{"items": [{"reward": 1.0}, {"reward": 0.0}]}])).summary.lists == 1
        stream = await client.evaluate_stream([{"items": [{"reward": float(i)}, {"reward": 0.5}]} for i in range(2000)])
        async with stream:
            lines = [item.line async for item in stream]
    assert lines == list(range(1, 2001))
