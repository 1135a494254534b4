"""Helpers for the service tests: a `run --schedule` process, its stderr, its endpoints.

:class:`Service` starts the real console script in the background, collects its stderr
line by line in a thread (so a test waits for a line instead of sleeping), reads the
status URL it prints, and fetches the endpoints. :class:`Fifo` makes a source file a
named pipe: each run blocks in the source's read until the test lets it through, so a
test knows a run is in progress, and for how long.
"""

from __future__ import annotations

import errno
import os
import pathlib
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence

import attrs
import httpx

from ._helpers import COMMAND, Cli

WAIT = 60.0
"""Seconds a test waits for a line or a state before it fails."""


@attrs.frozen
class Response:
    """One answer of the status server."""

    status: int
    text: str
    headers: httpx.Headers


class Service:
    """A `kanidm-sync run --schedule ...` process (a context manager that kills it)."""

    def __init__(self, cli: Cli, args: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [*COMMAND, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli.env(env),
        )
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.stdout = ""
        self._url: str | None = None

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    @property
    def stderr(self) -> str:
        """Everything the process wrote on stderr so far."""
        with self._lock:
            return "\n".join(self.lines)

    def wait_for(self, pattern: str, *, count: int = 1, timeout: float = WAIT) -> list[str]:
        """Wait until ``count`` stderr lines match ``pattern`` (a regex); returns them."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                found = [line for line in self.lines if re.search(pattern, line)]
            if len(found) >= count:
                return found
            if self.proc.poll() is not None:
                self._reader.join(timeout=5)
                with self._lock:
                    found = [line for line in self.lines if re.search(pattern, line)]
                if len(found) >= count:
                    return found
                raise AssertionError(
                    f"exited {self.proc.returncode} before {count} line(s) matching "
                    f"{pattern!r}:\n{self.stderr}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"no {count} line(s) matching {pattern!r}:\n{self.stderr}")
            time.sleep(0.02)

    @property
    def url(self) -> str:
        """The status URL the process printed (waits for it)."""
        if self._url is None:
            line = self.wait_for(r"serving the status on http://")[0]
            match = re.search(r"(http://\S+?)/?(?:\s|\"|$)", line)
            assert match is not None, line
            self._url = match.group(1)
        return self._url

    def get(self, path: str, *, token: str | None = None) -> Response:
        """GET ``path`` from the status server."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with httpx.Client(timeout=30) as client:
            answer = client.get(self.url + path, headers=headers)
        return Response(answer.status_code, answer.text, answer.headers)

    def status(self) -> dict[str, object]:
        """``/status.json``."""
        import json

        answer = self.get("/status.json")
        assert 200 == answer.status, answer.text
        data: dict[str, object] = json.loads(answer.text)
        return data

    def until(
        self, check: str, predicate: Callable[[dict[str, object]], bool], timeout: float = WAIT
    ) -> dict[str, object]:
        """Poll ``/status.json`` until ``predicate(data)`` holds; returns the data."""
        deadline = time.monotonic() + timeout
        while True:
            data = self.status()
            if predicate(data):
                return data
            if time.monotonic() > deadline:
                raise AssertionError(f"status.json never showed {check}: {data}")
            time.sleep(0.05)

    def signal(self, signum: int) -> None:
        """Send a signal."""
        self.proc.send_signal(signum)

    def finish(self, timeout: float = WAIT) -> int:
        """Wait for the exit; returns the exit status (stdout in :attr:`stdout`)."""
        # Not communicate(): it would read stderr too, racing the reader thread.
        self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        assert self.proc.stdout is not None
        self.stdout = self.proc.stdout.read()
        return self.proc.returncode

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=WAIT)
        self._reader.join(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


class Fifo:
    """A named pipe standing in for a source file: each read waits for :meth:`feed`.

    ``feed(text)`` hands ``text`` to the next reader (in a thread: a writer waits for its
    reader). Until then a run that reads the file is in progress, blocked in the source.
    Feed again only after that read is over (the run's line is out): two writers at once
    could hand one reader both texts.
    """

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        if path.exists():
            path.unlink()
        os.mkfifo(path)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def feed(self, text: str) -> None:
        """Let the next read return ``text``."""
        thread = threading.Thread(target=self._write, args=(text,), daemon=True)
        thread.start()
        self._threads.append(thread)

    def _write(self, text: str) -> None:
        while not self._stop.is_set():
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                    raise
                time.sleep(0.01)
                continue
            try:
                os.set_blocking(fd, True)
                os.write(fd, text.encode("utf-8"))
            finally:
                os.close(fd)  # the reader sees the end of the file
            return

    def close(self) -> None:
        """Stop the writers that still wait for a reader."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
