"""EU DSS (the European Commission's signature validation library) as an outside validator.

tests/tools/dss-validator is a small Java program on DSS 6.4; `build.sh` builds it with Maven
unless the jar is newer than its sources. `DssValidator` keeps one JVM for the test session and
sends it one file per line (DSS's start-up costs seconds; a validation afterwards well under one).
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kit.config import REPO_ROOT

TOOL_DIR = REPO_ROOT / "tests" / "tools" / "dss-validator"
JAR = TOOL_DIR / "target" / "dss-validator.jar"
BUILD_TIMEOUT_SECONDS = 900  # a fresh machine downloads DSS and its dependencies once (~2 min)
ANSWER_TIMEOUT_SECONDS = 300  # the first answer includes the JVM loading DSS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DssResult:
    """DSS's simple report of one file, first signature at the top level."""

    raw: dict[str, Any]

    @property
    def indication(self) -> str | None:
        return self.raw.get("indication")

    @property
    def sub_indication(self) -> str | None:
        return self.raw.get("sub_indication")

    @property
    def signature_format(self) -> str | None:
        return self.raw.get("signature_format")

    @property
    def error_keys(self) -> list[str]:
        return [str(e["key"]) for e in self.raw.get("errors", [])]

    @property
    def crl_urls_fetched(self) -> list[str]:
        return list(self.raw.get("crl_urls_fetched", []))

    @property
    def millis(self) -> int:
        return int(self.raw.get("millis", 0))

    def __str__(self) -> str:
        return json.dumps(self.raw, ensure_ascii=False, indent=1)


def build_validator() -> Path:
    """The jar, built first if missing or older than pom.xml or a source file."""
    if shutil.which("mvn") is None or shutil.which("java") is None:
        pytest.fail("EU DSS validator needs Java 17 and Maven (Debian: openjdk-17-jdk-headless maven)")
    completed = subprocess.run(
        [str(TOOL_DIR / "build.sh")], capture_output=True, text=True, timeout=BUILD_TIMEOUT_SECONDS, check=False
    )
    if completed.returncode != 0 or not JAR.exists():
        pytest.fail(f"building the EU DSS validator failed:\n{completed.stderr[-4000:]}")
    return JAR


class DssValidator:
    """One long-lived `java -jar dss-validator.jar --stdin`; `validate` is one request/answer."""

    def __init__(self, jar: Path, detailed_reports: Path | None = None) -> None:
        # C1 only and the serial collector: less CPU for a JVM that lives for one test session.
        command = ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-jar", str(jar), "--stdin"]
        if detailed_reports is not None:
            command += ["--detailed", str(detailed_reports)]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
        )
        self._lock = threading.Lock()
        self._stderr: list[str] = []
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def validate(self, trust_anchor: Path, signed: Path, detached_content: Path | None = None) -> DssResult:
        """Validate `signed` (a PAdES PDF, or a detached CAdES with its content) trusting only
        `trust_anchor`; CRLs are fetched online from the URLs in the certificates."""
        fields = [str(trust_anchor), str(signed)] + ([str(detached_content)] if detached_content else [])
        with self._lock:
            assert self._process.stdin is not None and self._process.stdout is not None
            self._process.stdin.write("\t".join(fields) + "\n")
            self._process.stdin.flush()
            line = _readline(self._process, ANSWER_TIMEOUT_SECONDS)
        if not line:
            pytest.fail(f"the EU DSS validator died:\n{''.join(self._stderr)[-4000:]}")
        answer = json.loads(line)
        if "error" in answer:
            pytest.fail(f"EU DSS could not validate {signed.name}: {answer['error']}")
        result = DssResult(answer)
        # `pytest --log-cli-level=INFO` shows each verdict and how long DSS took.
        log.info(
            "EU DSS: %s %s/%s %s %s in %d ms",
            signed.name,
            result.indication,
            result.sub_indication,
            result.signature_format,
            result.error_keys,
            result.millis,
        )
        return result

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)

    def _drain_stderr(self) -> None:
        assert self._process.stderr is not None
        for line in self._process.stderr:
            self._stderr.append(line)


def _readline(process: subprocess.Popen[str], timeout: float) -> str:
    """A line from the validator, or "" if it died or took longer than `timeout`."""
    result: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: result.append(process.stdout.readline() if process.stdout else ""))
    reader.start()
    reader.join(timeout)
    if reader.is_alive():
        process.kill()
        reader.join(10)
        return ""
    return result[0] if result else ""


@pytest.fixture(scope="session")
def dss_validator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DssValidator]:
    """EU DSS in one JVM for the session; its detailed reports (XML) go to a temp dir for humans."""
    validator = DssValidator(build_validator(), tmp_path_factory.mktemp("dss-detailed-reports"))
    try:
        yield validator
    finally:
        validator.close()
