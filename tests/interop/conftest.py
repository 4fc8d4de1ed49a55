"""Fixtures for the Amplify JS interop tests: a TLS emulator subprocess and a driver runner."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import pytest

from .harness import DriverRun, EmulatorProcess, missing_prerequisite, run_driver


class AmplifyRunner(Protocol):
    """Runs one driver scenario against an emulator (the module's API-key one by default)."""

    def __call__(
        self,
        steps: Sequence[Mapping[str, Any]],
        *,
        auth: Mapping[str, Any] | None = None,
        emulator: EmulatorProcess | None = None,
        timeout_ms: int = 20_000,
    ) -> DriverRun: ...


class EmulatorFactory(Protocol):
    """Starts an emulator with ``config`` (``--config``) and extra ``PYTHONPATH`` entries."""

    def __call__(
        self, config: Mapping[str, Any] | None, *, pythonpath: Sequence[Path] = ()
    ) -> EmulatorProcess: ...


@pytest.fixture(scope="session")
def amplify_prerequisites() -> None:
    """Skip when Node or the pinned Amplify JS install is missing."""
    reason = missing_prerequisite()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def emulator(
    amplify_prerequisites: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmulatorProcess]:
    """One emulator with the default configuration (API-key auth), shared by a module."""
    process = EmulatorProcess(tmp_path_factory.mktemp("emulator"))
    try:
        process.start()
        yield process
    finally:
        process.stop()


@pytest.fixture
def emulator_factory(amplify_prerequisites: None, tmp_path: Path) -> Iterator[EmulatorFactory]:
    """Start emulators with a given ``--config``; all are stopped at teardown."""
    started: list[EmulatorProcess] = []

    def start(
        config: Mapping[str, Any] | None, *, pythonpath: Sequence[Path] = ()
    ) -> EmulatorProcess:
        workdir = tmp_path / f"emulator-{len(started)}"
        process = EmulatorProcess(workdir, config, pythonpath=pythonpath)
        started.append(process)
        process.start()
        return process

    try:
        yield start
    finally:
        for process in reversed(started):
            process.stop()


@pytest.fixture
def amplify(amplify_prerequisites: None, request: pytest.FixtureRequest) -> AmplifyRunner:
    """Run a driver scenario; ``auth`` defaults to the emulator's first API key.

    Without an explicit ``emulator`` the module's shared one is used (and started on first use).
    """

    def run(
        steps: Sequence[Mapping[str, Any]],
        *,
        auth: Mapping[str, Any] | None = None,
        emulator: EmulatorProcess | None = None,
        timeout_ms: int = 20_000,
    ) -> DriverRun:
        target: EmulatorProcess = (
            emulator if emulator is not None else request.getfixturevalue("emulator")
        )
        info = target.info
        result = run_driver(
            endpoint=info.http_endpoint,
            region=info.region,
            auth=auth if auth is not None else {"mode": "apiKey", "apiKey": info.api_key},
            steps=steps,
            ca_cert=info.ca_cert,
            timeout_ms=timeout_ms,
        )
        if result.returncode != 0:
            # Put the server's side of the story next to the driver's frame transcript.
            result = dataclasses.replace(result, stderr=f"{result.stderr}\n{target.log_tail()}")
        return result

    return run
