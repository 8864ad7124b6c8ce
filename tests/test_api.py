"""The JSON API under /api/v1/, against the real daemon over HTTP (moto's CloudFront)."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.store.sqlite import StateFile
from tests.pg import Cluster
from tests.support import Daemon, Moto, free_port, http_get, wait_for, write_config
from tests.webclient import OTHER_TOKEN, TOKEN, Answer, api_config, call

pytestmark = pytest.mark.slow
API = "/api/v1/invalidations"


def start(
    tmp_path: Path, moto: Moto, *, ready: bool = True, tokens: bool = True, **http: Any
) -> Daemon:
    daemon = Daemon(api_config(tmp_path, moto.url, tokens=tokens, **http))
    if ready:
        daemon.wait_ready()
    return daemon


@pytest.fixture(scope="module")
def daemon(moto: Moto, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    running = start(tmp_path_factory.mktemp("api"), moto)
    yield running
    assert running.stop() == 0
    assert "Traceback" not in running.stderr()


def tracked(daemon: Daemon) -> set[tuple[str, str]]:
    with closing(StateFile(daemon.config.parent / "state.db")) as state:
        return {tuple(inv.key) for inv in state.all()}  # type: ignore[misc]


def register(daemon: Daemon, dist: str, inv: str, **extra: object) -> Answer:
    body = {"distribution_id": dist, "invalidation_id": inv, **extra}
    return call(daemon.url + API, "POST", body, token=TOKEN)


def test_post_tracks_get_shows_and_delete_untracks(daemon: Daemon, moto: Moto) -> None:
    dist = moto.create_distribution()
    inv = moto.create_invalidation(dist)
    creator = "arn:aws:iam::123456789012:role/ci"
    first = register(daemon, dist, inv, creator=creator, paths=["/index.html", "/app/*"])
    assert first.status == 201, first.text
    assert first.json["source"] == "api" and first.json["creator"] == creator
    assert first.json["paths"] == ["/index.html", "/app/*"]
    again = register(daemon, dist, inv)
    assert again.status == 200 and again.json["invalidation_id"] == inv

    pair = f"{daemon.url}{API}/{dist}/{inv}"
    seen = wait_for(lambda: (a := call(pair)).json["status"] == "InProgress" and a)
    assert seen.status == 200
    body = seen.json
    assert body["account"] == "default" and body["create_time"].endswith("Z")
    assert body["age_seconds"] >= 0 and body["stuck"] is False and body["given_up"] is False
    assert body["transitions"] == [
        {
            "from_status": None,
            "to_status": "InProgress",
            "observed_at": body["transitions"][0]["observed_at"],
            "latency_seconds": None,
            "latency_uncertainty_seconds": None,
        }
    ]

    gone = call(pair, "DELETE", token=OTHER_TOKEN)
    assert (gone.status, gone.json["was_tracked"]) == (200, True)
    assert call(pair, "DELETE", token=OTHER_TOKEN).json["was_tracked"] is False
    assert call(pair).status == 404
    assert (dist, inv) not in tracked(daemon)

    writes = [(w["method"], w["caller"], w["status"]) for w in daemon.events("api_write")]
    assert ("POST", "ci-bot", 201) in writes and ("DELETE", "deploy", 200) in writes
    for line in daemon.raw:  # the name is logged, the token never
        assert TOKEN not in line and OTHER_TOKEN not in line


def test_wait_answers_once_completion_is_recorded(daemon: Daemon, moto: Moto) -> None:
    dist = moto.create_distribution()
    inv = moto.create_invalidation(dist)
    assert register(daemon, dist, inv).status == 201
    pair = f"{daemon.url}{API}/{dist}/{inv}"
    wait_for(lambda: call(pair).json["status"] == "InProgress")
    answers: list[Answer] = []
    waiter = threading.Thread(target=lambda: answers.append(call(f"{pair}?wait=120", timeout=150)))
    waiter.start()
    wait_for(lambda: "cloudfront_invalidation_monitor_http_waiters 1.0" in daemon.metrics())
    moto.set_status(dist, inv, "Completed")
    # Woken by the recorder: far sooner than the 120 s the caller was ready to wait.
    waiter.join(60)
    assert not waiter.is_alive()
    [answer] = answers
    assert answer.status == 200 and answer.json["status"] == "Completed"
    assert answer.json["latency_seconds"] > 0
    assert answer.json["latency_uncertainty_seconds"] is not None
    moves = [(t["from_status"], t["to_status"]) for t in answer.json["transitions"]]
    assert moves == [(None, "InProgress"), ("InProgress", "Completed")]
    recorded = [e for e in daemon.events("invalidation_transition") if e["invalidation_id"] == inv]
    assert [e["to_status"] for e in recorded] == ["InProgress", "Completed"]


def test_wait_ends_at_its_deadline_with_the_current_state(daemon: Daemon, moto: Moto) -> None:
    dist = moto.create_distribution()
    inv = moto.create_invalidation(dist)
    assert register(daemon, dist, inv).status == 201
    answer = call(f"{daemon.url}{API}/{dist}/{inv}?wait=1.5")
    assert answer.status == 200 and answer.json["status"] in (None, "InProgress")


def test_wait_tracks_an_untracked_pair_only_for_a_caller_who_may_write(
    daemon: Daemon, moto: Moto
) -> None:
    dist = moto.create_distribution()
    inv = moto.create_invalidation(dist, status="Completed")
    pair = f"{daemon.url}{API}/{dist}/{inv}"
    refused = call(f"{pair}?wait=5")
    assert refused.status == 404 and refused.error["code"] == "not_tracked"
    assert (dist, inv) not in tracked(daemon)
    answer = call(f"{pair}?wait=60", token=TOKEN, timeout=90)
    assert answer.status == 200 and answer.json["status"] == "Completed"
    assert answer.json["source"] == "api"
    assert (dist, inv) in tracked(daemon)
    assert any(w["invalidation_id"] == inv for w in daemon.events("api_write"))


def test_list_pages_through_the_tracked_pairs_with_filters(daemon: Daemon, moto: Moto) -> None:
    dist = moto.create_distribution()
    ids = sorted(moto.create_invalidation(dist) for _ in range(3))
    for inv in ids:
        assert register(daemon, dist, inv).status == 201
    listing = f"{daemon.url}{API}?distribution_id={dist}"
    url = f"{listing}&limit=2"
    first = call(url)
    assert first.status == 200
    assert [p["invalidation_id"] for p in first.json["invalidations"]] == ids[:2]
    cursor = first.json["next_cursor"]
    second = call(f"{url}&cursor={cursor}")
    assert [p["invalidation_id"] for p in second.json["invalidations"]] == ids[2:]
    assert second.json["next_cursor"] is None
    wait_for(lambda: len(call(f"{listing}&status=InProgress").json["invalidations"]) == 3)
    assert call(f"{listing}&status=Completed").json["invalidations"] == []


D, INV = "EDFDVBD6EXAMPLE", "I2J0I21PCUYOIK"
PAIR = {"distribution_id": D, "invalidation_id": INV}
BAD_INPUT = [
    # (method, path, body or raw bytes, token, status, code, field)
    ("POST", API, PAIR, None, 401, "unauthorized", "Authorization"),
    ("POST", API, PAIR, "not-a-token-of-ours-at-all", 401, "unauthorized", "Authorization"),
    ("POST", API, b'{"distribution_id": "E', TOKEN, 400, "malformed_json", "body"),
    ("POST", API, b"[1, 2]", TOKEN, 400, "invalid", "body"),
    ("POST", API, {**PAIR, "colour": "red"}, TOKEN, 400, "invalid", "colour"),
    ("POST", API, {**PAIR, "distribution_id": "e1"}, TOKEN, 400, "invalid", "distribution_id"),
    ("POST", API, {**PAIR, "invalidation_id": "I/../x"}, TOKEN, 400, "invalid", "invalidation_id"),
    ("POST", API, {"invalidation_id": INV}, TOKEN, 400, "invalid", "distribution_id"),
    ("POST", API, {**PAIR, "account": "nope"}, TOKEN, 400, "unknown_account", "account"),
    ("POST", API, {**PAIR, "paths": ["/a", 3]}, TOKEN, 400, "invalid", "paths.1"),
    ("POST", API, b"x" * (64 * 1024 + 1), TOKEN, 413, "too_large", "body"),
    ("POST", f"{API}?wait=3", PAIR, TOKEN, 400, "invalid", "wait"),
    ("GET", f"{API}/{D}/{INV}?wait=3601", None, TOKEN, 400, "invalid", "wait"),
    ("GET", f"{API}/{D}/{INV}?wait=soon", None, TOKEN, 400, "invalid", "wait"),
    ("GET", f"{API}/{D}/{INV}?wait=5&account=nope", None, TOKEN, 400, "unknown_account", "account"),
    ("GET", f"{API}/{D}/{INV}?colour=red", None, None, 400, "invalid", "colour"),
    ("GET", f"{API}/e1/{INV}", None, None, 400, "invalid", "distribution_id"),
    ("DELETE", f"{API}/{D}/i-lower", None, TOKEN, 400, "invalid", "invalidation_id"),
    ("DELETE", f"{API}/{D}/{INV}", None, None, 401, "unauthorized", "Authorization"),
    ("GET", f"{API}?status=Finished", None, None, 400, "invalid", "status"),
    ("GET", f"{API}?limit=0", None, None, 400, "invalid", "limit"),
    ("GET", f"{API}?cursor=bm90LWEtY3Vyc29y", None, None, 400, "invalid", "cursor"),
    ("GET", f"{API}?limit=1&limit=2", None, None, 400, "invalid", "limit"),
    ("PUT", API, PAIR, TOKEN, 405, "method_not_allowed", None),
    ("GET", "/api/v1/nothing-here", None, None, 404, "not_found", None),
]


def test_bad_input_is_a_4xx_naming_the_field_and_writes_nothing(
    daemon: Daemon, tmp_path: Path
) -> None:
    before = tracked(daemon)
    writes = len(daemon.events("api_write"))
    problems = []
    for method, path, body, token, status, code, field in BAD_INPUT:
        raw = body if isinstance(body, bytes) else None
        answer = call(daemon.url + path, method, None if raw else body, token=token, raw=raw)
        got = (answer.status, answer.error["code"], answer.error["field"])
        if got != (status, code, field):
            problems.append((method, path, got, answer.error["message"]))
    assert not problems, problems
    unsent = call(daemon.url + API, "POST", raw=json.dumps(PAIR).encode(), token=TOKEN,
                  content_type="text/plain")  # fmt: skip
    assert (unsent.status, unsent.error["field"]) == (415, "Content-Type")
    assert call(daemon.url + API, "POST", PAIR).headers["WWW-Authenticate"].startswith("Bearer")
    assert tracked(daemon) == before
    assert len(daemon.events("api_write")) == writes
    assert (D, INV) not in {(e["distribution_id"], e["invalidation_id"])
                          for e in daemon.events("invalidation_tracked")}  # fmt: skip


def test_without_a_tokens_file_writing_is_off_and_says_how_to_turn_it_on(
    moto: Moto, tmp_path: Path
) -> None:
    daemon = start(tmp_path, moto, tokens=False)
    try:
        answer = call(daemon.url + API, "POST", PAIR, token=TOKEN)
        assert answer.status == 403 and answer.error["code"] == "writes_disabled"
        assert "http.tokens_file" in answer.error["message"]
        waited = call(f"{daemon.url}{API}/{D}/{INV}?wait=1", token=TOKEN)
        assert waited.status == 404  # not tracked, and nobody may track it
        assert call(daemon.url + API).status == 200  # reading stays open
        assert tracked(daemon) == set()
        assert daemon.stop() == 0
    finally:
        daemon.stop(signal.SIGKILL)


def test_reads_can_require_a_token(moto: Moto, tmp_path: Path) -> None:
    daemon = start(tmp_path, moto, read_requires_token=True)
    try:
        refused = call(daemon.url + API)
        assert refused.status == 401 and refused.error["field"] == "Authorization"
        assert call(daemon.url + API, token=OTHER_TOKEN).status == 200
        # The status page, metrics and probes stay open.
        for path in ("/", "/metrics", "/healthz", "/readyz"):
            assert http_get(daemon.url + path)[0] == 200, path
        assert daemon.stop() == 0
    finally:
        daemon.stop(signal.SIGKILL)


def test_one_long_poll_more_than_http_max_waiters_is_told_to_retry(
    moto: Moto, tmp_path: Path
) -> None:
    daemon = start(tmp_path, moto, max_waiters=2)
    try:
        dist = moto.create_distribution()
        inv = moto.create_invalidation(dist)
        assert register(daemon, dist, inv).status == 201
        pair = f"{daemon.url}{API}/{dist}/{inv}"
        answers: list[Answer] = []
        waiters = [
            threading.Thread(target=lambda: answers.append(call(f"{pair}?wait=120", timeout=150)))
            for _ in range(2)
        ]
        for waiter in waiters:
            waiter.start()
        wait_for(lambda: "cloudfront_invalidation_monitor_http_waiters 2.0" in daemon.metrics())
        third = call(f"{pair}?wait=120")
        assert third.status == 503 and third.error["code"] == "too_many_waiters"
        assert third.headers["Retry-After"] == "5"
        # Refused, a wait that would have tracked its pair writes nothing either.
        other = moto.create_invalidation(dist)
        untracked = call(f"{daemon.url}{API}/{dist}/{other}?wait=120", token=TOKEN)
        assert untracked.status == 503 and untracked.error["code"] == "too_many_waiters"
        assert (dist, other) not in tracked(daemon)
        refused = 'http_refused_total{reason="waiters"} 2.0'
        wait_for(lambda: refused in daemon.metrics())  # rendered at most once a second
        moto.set_status(dist, inv, "Completed")
        for waiter in waiters:
            waiter.join(60)
        assert [a.json["status"] for a in answers] == ["Completed", "Completed"]
        assert daemon.stop() == 0
    finally:
        daemon.stop(signal.SIGKILL)


def test_shutdown_answers_the_long_polls_at_once(moto: Moto, tmp_path: Path) -> None:
    daemon = start(tmp_path, moto)
    try:
        dist = moto.create_distribution()
        inv = moto.create_invalidation(dist)
        assert register(daemon, dist, inv).status == 201
        answers: list[Answer] = []
        url = f"{daemon.url}{API}/{dist}/{inv}?wait=3600"
        waiter = threading.Thread(target=lambda: answers.append(call(url, timeout=60)))
        waiter.start()
        wait_for(lambda: "cloudfront_invalidation_monitor_http_waiters 1.0" in daemon.metrics())
        assert daemon.stop() == 0
        waiter.join(30)
        [answer] = answers
        assert answer.status == 503 and answer.error["code"] == "shutting_down"
        assert answer.headers["Retry-After"] == "5"
    finally:
        daemon.stop(signal.SIGKILL)


def certificate(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def test_tls_serves_the_api_and_the_probes_over_https(moto: Moto, tmp_path: Path) -> None:
    import ssl

    cert, key = certificate(tmp_path)
    tls = {"cert_file": str(cert), "key_file": str(key)}
    daemon = start(tmp_path, moto, ready=False, tls=tls)
    try:
        trust = ssl.create_default_context(cafile=str(cert))
        https = daemon.url.replace("http://", "https://")

        def ready() -> bool:
            try:
                return call(f"{https}/readyz", context=trust).status == 200
            except OSError:
                return False

        wait_for(ready)
        dist = moto.create_distribution()
        inv = moto.create_invalidation(dist)
        body = {"distribution_id": dist, "invalidation_id": inv}
        assert call(https + API, "POST", body, token=TOKEN, context=trust).status == 201
        assert http_get(daemon.url + "/healthz")[0] != 200  # no plain HTTP beside it
        assert daemon.stop() == 0
    finally:
        daemon.stop(signal.SIGKILL)


def test_a_key_that_does_not_load_is_a_config_error(moto: Moto, tmp_path: Path) -> None:
    cert, _ = certificate(tmp_path)
    config = write_config(
        tmp_path / "monitor.yaml",
        state={"path": str(tmp_path / "state.db")},
        http={
            "listen": f"127.0.0.1:{free_port()}",
            "tls": {"cert_file": str(cert), "key_file": str(cert)},
        },
    )
    daemon = Daemon(config)
    try:
        assert daemon.proc.wait(30) == 78
        [line] = daemon.stderr().splitlines()
        assert line.startswith("cloudfront-invalidation-monitor: config error: http.tls: ")
    finally:
        daemon.stop(signal.SIGKILL)


def test_the_api_of_replicas_on_postgresql_serves_one_shared_set(
    tmp_path: Path, moto: Moto, pg_url: str
) -> None:
    """Registered on a standby, polled by the active replica, waited for on the standby:
    the long poll answers once the other replica records the completion."""

    def replica(name: str) -> Daemon:
        config = api_config(tmp_path / name, moto.url)
        settings = yaml.safe_load(config.read_text())
        settings["state"] = {"url": pg_url, "lease_seconds": 3}
        config.write_text(yaml.safe_dump(settings))
        return Daemon(config)

    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    active = replica("a")
    active.wait_ready()
    wait_for(
        lambda: 'cloudfront_invalidation_monitor_active{account="default"} 1.0' in active.metrics()
    )
    standby = replica("b")
    try:
        standby.wait_ready()
        assert http_get(standby.url + "/readyz")[1].startswith("standing by")
        dist = moto.create_distribution()
        inv = moto.create_invalidation(dist)
        assert register(standby, dist, inv).status == 201
        assert register(active, dist, inv).status == 200  # one set: already tracked
        pair = f"{API}/{dist}/{inv}"
        wait_for(lambda: call(standby.url + pair).json["status"] == "InProgress")
        listed = call(f"{standby.url}{API}?distribution_id={dist}").json
        assert [p["invalidation_id"] for p in listed["invalidations"]] == [inv]

        answers: list[Answer] = []
        waiter = threading.Thread(
            target=lambda: answers.append(call(f"{standby.url}{pair}?wait=120", timeout=150))
        )
        waiter.start()
        wait_for(lambda: "cloudfront_invalidation_monitor_http_waiters 1.0" in standby.metrics())
        moto.set_status(dist, inv, "Completed")
        waiter.join(60)  # far sooner than the 120 s asked for
        assert not waiter.is_alive()
        [answer] = answers
        assert answer.status == 200 and answer.json["status"] == "Completed"
        assert answer.json["latency_seconds"] > 0
        assert not [e for e in standby.events("invalidation_transition")]  # the active one's

        gone = call(standby.url + pair, "DELETE", token=TOKEN)
        assert (gone.status, gone.json["was_tracked"]) == (200, True)
        assert call(active.url + pair).status == 404
    finally:
        assert standby.stop() == 0 and active.stop() == 0


def test_a_state_store_out_of_reach_is_a_json_503_to_retry(tmp_path: Path, moto: Moto) -> None:
    with Cluster() as cluster:
        config = api_config(tmp_path, moto.url)
        settings = yaml.safe_load(config.read_text())
        settings["state"] = {"url": cluster.url}
        config.write_text(yaml.safe_dump(settings))
        daemon = Daemon(config)
        try:
            daemon.wait_ready()
            dist = moto.create_distribution()
            inv = moto.create_invalidation(dist)
            cluster.stop()
            answer = register(daemon, dist, inv)
            assert answer.status == 503 and answer.error["code"] == "state_unavailable"
            assert answer.headers["Retry-After"] == "5"
            read = call(f"{daemon.url}{API}/{dist}/{inv}")
            assert read.status == 503 and read.error["code"] == "state_unavailable"
            cluster.start()
            wait_for(lambda: register(daemon, dist, inv).status == 201, timeout=60)
            assert daemon.stop() == 0
        finally:
            daemon.stop(signal.SIGKILL)
        assert "Traceback" not in daemon.stderr()
