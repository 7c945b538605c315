"""Invokes ``cue`` with an argument list (never a shell), a timeout and a cap on output size."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pequod.cue.diagnostics import Diagnostic, parse_cue_errors
from pequod.metrics import CUE_EVAL_DURATION
from pequod.toolchain.locate import find_binary

DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_OUTPUT_BYTES = 16 * 1024 * 1024


class CueError(Exception):
    """``cue`` rejected the module or the input; ``diagnostics`` says where and why."""

    def __init__(self, summary: str, diagnostics: list[Diagnostic]) -> None:
        self.summary = summary
        self.diagnostics = diagnostics
        details = "\n".join(f"  {d}" for d in diagnostics)
        super().__init__(f"{summary}\n{details}" if details else summary)


class CueTimeoutError(CueError):
    """The evaluation did not finish within the time limit (e.g. a non-terminating module)."""


class CueOutputTooLargeError(CueError):
    """The evaluation produced more output than the configured cap."""


@dataclass(frozen=True)
class CueSettings:
    """How ``cue`` is run. ``binary`` defaults to the pinned build (or ``$PEQUOD_CUE``)."""

    binary: Path | None = None
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES

    def resolve_binary(self) -> Path:
        return self.binary or find_binary("cue", allow_path_lookup=True)


async def run_cue(
    arguments: list[str],
    *,
    cwd: Path,
    stdin: bytes | None = None,
    settings: CueSettings | None = None,
) -> bytes:
    """Runs ``cue ARGUMENTS`` in ``cwd`` and returns its standard output.

    Raises :class:`CueError` (with parsed diagnostics) when cue fails, :class:`CueTimeoutError`
    past the time limit and :class:`CueOutputTooLargeError` past the output cap; in both of the
    latter the process is killed.
    """
    settings = settings or CueSettings()
    started = time.monotonic()
    creation = asyncio.ensure_future(
        asyncio.create_subprocess_exec(
            str(settings.resolve_binary()),
            *arguments,
            cwd=cwd,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    )
    try:
        # Cancelling create_subprocess_exec half-way can leave it waiting forever for the
        # pipes of a process it has already killed (CPython 3.11); let it finish, then stop
        # the process ourselves.
        process = await asyncio.shield(creation)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            orphan = await creation
            await _abandon(orphan, [])
        raise
    assert process.stdout is not None
    assert process.stderr is not None
    readers = [
        asyncio.ensure_future(_read_capped(process.stdout, settings.max_output_bytes)),
        asyncio.ensure_future(_read_capped(process.stderr, settings.max_output_bytes)),
    ]
    try:
        await _feed(process, stdin)
        async with asyncio.timeout(settings.timeout_seconds):
            stdout, stderr = await asyncio.gather(*readers)
        await process.wait()
    except TimeoutError:
        raise CueTimeoutError(
            f"cue did not finish within {settings.timeout_seconds:g} s "
            "(does the module loop or build something very large?)",
            [],
        ) from None
    finally:
        await _abandon(process, readers)
        CUE_EVAL_DURATION.labels(arguments[0] if arguments else "").observe(
            time.monotonic() - started
        )
    if process.returncode != 0:
        text = stderr.decode(errors="replace")
        raise CueError(f"cue exited with status {process.returncode}", parse_cue_errors(text))
    return stdout


async def _feed(process: asyncio.subprocess.Process, stdin: bytes | None) -> None:
    if process.stdin is None:
        return
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        process.stdin.write(stdin or b"")
        await process.stdin.drain()
    process.stdin.close()


async def _read_capped(stream: asyncio.StreamReader, max_output: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await stream.read(65536):
        size += len(chunk)
        if size > max_output:
            raise CueOutputTooLargeError(
                f"cue produced more than {max_output} bytes of output; refusing it", []
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def _abandon(
    process: asyncio.subprocess.Process, readers: Sequence[asyncio.Future[bytes]]
) -> None:
    """Kills a process that is still running and drains its pipes, so that waiting for it
    cannot hang on a pipe nobody reads any more."""
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            while await stream.read(65536):
                pass
    await process.wait()
