"""Device workers for real: a redis-server, `prunebench worker` subprocesses, OpenVINO measuring on the CPU.

Jobs are this project's own exports (ResNet-20, random weights) and tiny test sets; small round counts keep
each job well under a second, except where a test needs a job long enough to kill a worker in the middle.

This file holds the unit layer's tests (in-process, no pytester, no subprocess, no real training or device); the
topic's other tests are in tests/e2e/test_worker.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis_servers

from pytest_prunebench.broker import BrokerError, connect

TLS_SECRET = "tls-hunter2"


def test_mistakes_in_a_tls_url_are_one_line_without_the_password(tmp_path: Path) -> None:
    from pytest_prunebench.broker import redact

    base = f"rediss://:{TLS_SECRET}@127.0.0.1:{redis_servers.free_port()}/0"
    shown = base.replace(TLS_SECRET, "***")
    missing = tmp_path / "no-such-ca.pem"
    with pytest.raises(BrokerError) as info:
        connect(f"{base}?ssl_ca_certs={missing}")
    assert str(info.value) == (f"broker {shown}?ssl_ca_certs={missing}: ssl_ca_certs {missing} does not exist on "
                               f"this host")
    with pytest.raises(BrokerError) as info:  # redis-py would pass the misspelt option on as a keyword: TypeError
        connect(f"{base}?ssl_ca_cert={missing}")
    assert str(info.value).startswith(f"broker {shown}?ssl_ca_cert={missing}: unknown URL option ssl_ca_cert (")
    # redis-py also takes a password (and a key file's) as query options
    assert redact(f"rediss://h:1/0?password={TLS_SECRET}&ssl_password=x&ssl_ca_certs=/ca.pem") == \
        "rediss://h:1/0?password=***&ssl_password=***&ssl_ca_certs=/ca.pem"


@pytest.mark.parametrize(("meta", "expected"), [
    (b'{"v": 1, "job": "j1", "case": "test_schedule_filters"}', "test_schedule_filters"),
    (b'{"job": "j1", "case": "' + b"x" * 300 + b'"}', "x" * 200),
    (b'{"job": "j1", "case": "two\\nlines"}', None),  # a worker's lines stay one line each
    (b'{"job": "j1", "case": 7}', None),
    (b'{"job": "j1"}', None),
    (b'[1, 2]', None),
    (b"not json", None),
    (None, None),
])
def test_a_taken_job_is_named_by_its_case_before_the_whole_job_is_checked(meta: bytes | None,
                                                                          expected: str | None) -> None:
    from pytest_prunebench.protocol import case_of

    assert case_of(meta) == expected
