"""The client library and the `server402` command line, run as real processes against the real pipeline (the API
in-process on a loopback port, the sandbox upstream, a worker in the test's loop, Redis) and the sandbox x402
facilitator. The CLI is a separate process started with asyncio, so the loop keeps serving it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support import Pipeline
from x402.http.clients.httpx import x402HttpxClient
from x402_support import buyer

from client.cli import main
from sandbox.facilitator.config import DEMO_PAY_TO, DEMO_WALLET_KEY
from sandbox.facilitator.testing import RunningFacilitator

ROOT = Path(__file__).resolve().parents[1]
PAID, FREE = "face-detection", "facial-expression-recognition"
ADMIN = "api.admin"  # the operator's commands: server402-admin
PRICE_ATOMIC = 10_000  # 1 cent in USDC's 6 decimals
CLI_TIMEOUT_S = 90


@pytest.fixture
def operator_terms() -> dict[str, Any]:
    return {"defaults": {"amountCents": 1, "qps": 1000}, "services": {FREE: {"amountCents": 0}}}


@pytest.fixture
def pipeline_env(facilitator: RunningFacilitator) -> dict[str, str]:
    return {"SERVER402_X402_FACILITATOR_URL": facilitator.url, "SERVER402_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def base_url(pipeline: Pipeline) -> str:
    return str(pipeline.api.make_url("")).rstrip("/")


def cli_env(pipeline: Pipeline, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("SERVER402_")}
    env.update(
        ALIBABA_CLOUD_ECS_METADATA_DISABLED="true",
        NO_PROXY="127.0.0.1,localhost,::1",
        SERVER402_URL=base_url(pipeline),
        REDIS_URL=pipeline.settings.redis_url,
    )
    return {**env, **(extra or {})}


async def start(
    pipeline: Pipeline, *args: str, env: dict[str, str] | None = None, module: str = "client.cli"
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        cwd=ROOT,
        env=cli_env(pipeline, env),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def cli(
    pipeline: Pipeline, *args: str, stdin: bytes = b"", env: dict[str, str] | None = None, module: str = "client.cli"
) -> Ran:
    process = await start(pipeline, *args, env=env, module=module)
    out, err = await asyncio.wait_for(process.communicate(stdin), CLI_TIMEOUT_S)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())


async def buy_token(pipeline: Pipeline, calls: int, service: str = PAID) -> str:
    wallet = buyer()
    wallet.set_spend_controls(False)  # more than the client's default USD 1 cap
    async with x402HttpxClient(wallet, base_url=base_url(pipeline), timeout=30) as client:
        response = await client.post("/api/payments", json={"serviceId": service, "calls": calls})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


async def used_calls(pipeline: Pipeline, token: str) -> int:
    payment_id = token.removeprefix("s402pt_").split(".")[0]
    response = await pipeline.api.get(f"/api/payments/{payment_id}", headers={"X-Payment-Token": token})
    assert response.status == 200
    used: int = (await response.json())["usedCalls"]
    return used


def item_lines(pipeline: Pipeline, count: int, *, start: int = 0, service: str = PAID) -> list[bytes]:
    face = pipeline.sandbox.image("face.jpg")
    return [
        json.dumps({"customId": f"item-{i}", "serviceId": service, "input": {"ImageURL": face}}).encode() + b"\n"
        for i in range(start, start + count)
    ]


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


# ---------------------------------------------------------------- help and usage


@pytest.mark.parametrize(
    "command",
    [
        "", "call", "jobs", "jobs get", "jobs cancel", "buy", "batch", "batch submit", "batch status",
        "batch results", "batch cancel",
    ],
)  # fmt: skip
def test_every_command_and_subcommand_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """(`admin` is not a client command: the operator's commands are server402-admin, python -m api.admin.)"""
    assert main([*command.split(), "--help"], environ={}) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("usage: ") and len(shown) > 100


def test_the_installed_console_script_runs_and_usage_errors_exit_2() -> None:
    import subprocess

    script = Path(sys.executable).with_name("server402")
    assert script.exists(), "make installs the project editable: .venv/bin/server402"
    env = {"PATH": os.environ.get("PATH", ""), "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"}
    shown = subprocess.run([script, "--help"], capture_output=True, text=True, env=env, timeout=30, check=False)
    assert shown.returncode == 0 and "batch" in shown.stdout
    for args in (["call"], ["batch", "submit", "-"], ["call", "x", "novalue"], ["nonsense"]):
        ran = subprocess.run([script, *args], capture_output=True, text=True, env=env, timeout=30, check=False)
        assert ran.returncode == 2, (args, ran.stderr)
        assert ran.stderr.strip() and "Traceback" not in ran.stderr


# ---------------------------------------------------------------- calls, jobs, payments


async def test_call_with_a_bought_token_prints_the_result_and_jobs_get_follows_an_async_call(
    pipeline: Pipeline, facilitator: RunningFacilitator
) -> None:
    bought = await cli(pipeline, "buy", PAID, "--calls", "3", env={"SERVER402_WALLET_KEY": DEMO_WALLET_KEY})
    assert bought.code == 0, bought.err
    token = one_line(bought.out)
    assert token.startswith("s402pt_") and "3 call(s) of face-detection for USD 0.03" in bought.err
    assert await facilitator.balance(DEMO_PAY_TO) == 3 * PRICE_ATOMIC

    face = pipeline.sandbox.image("face.jpg")
    called = await cli(pipeline, "call", PAID, f"ImageURL={face}", "--token", token)
    assert called.code == 0, called.err
    assert called.json()["data"]["Action"] == "DetectFace"
    assert token not in called.out + called.err

    queued = await cli(pipeline, "--json", "call", PAID, "--input", json.dumps({"ImageURL": face}), "--async",
                       env={"SERVER402_PAYMENT_TOKEN": token})  # fmt: skip
    assert queued.code == 0, queued.err
    job = json.loads(one_line(queued.out))
    assert job["status"] in ("queued", "running", "succeeded") and f"jobs get {job['jobId']}" in queued.err

    followed = await cli(pipeline, "jobs", "get", job["jobId"], "--wait", "30", "--token", token)
    assert followed.code == 0, followed.err
    view = followed.json()
    assert view["status"] == "succeeded" and view["result"]["data"]["Action"] == "DetectFace"
    assert await used_calls(pipeline, token) == 2

    finished = await cli(pipeline, "jobs", "cancel", job["jobId"], "--token", token)
    assert finished.code == 1 and "already finished" in one_line(finished.err)


async def test_call_pays_inline_with_the_demo_wallet(pipeline: Pipeline, facilitator: RunningFacilitator) -> None:
    process = await start(pipeline, "call", PAID, "--input-file", "-", "--wallet-key", DEMO_WALLET_KEY)
    body = json.dumps({"ImageURL": pipeline.sandbox.image("face.jpg")}).encode()
    out, err = await asyncio.wait_for(process.communicate(body), CLI_TIMEOUT_S)
    assert process.returncode == 0, err.decode()
    assert json.loads(out)["data"]["Action"] == "DetectFace"
    assert await facilitator.balance(DEMO_PAY_TO) == PRICE_ATOMIC
    assert DEMO_WALLET_KEY.removeprefix("0x") not in (out + err).decode()


async def test_refusals_are_one_line_on_stderr_and_exit_1(pipeline: Pipeline) -> None:
    face = pipeline.sandbox.image("face.jpg")
    unpaid = await cli(pipeline, "call", PAID, f"ImageURL={face}")
    line = one_line(unpaid.err)
    assert unpaid.code == 1 and unpaid.out == ""
    assert "payment required" in line and "HTTP 402" in line and f"server402 buy {PAID} --calls N" in line

    bogus = "s402pt_pay_000000000000000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    bad_token = await cli(pipeline, "call", PAID, f"ImageURL={face}", "--token", bogus)
    line = one_line(bad_token.err)
    assert bad_token.code == 1 and "HTTP 402" in line and "check --token" in line and bogus not in line

    invalid = await cli(pipeline, "call", FREE, "ImageURL=not a url")
    assert invalid.code == 1 and "HTTP 400" in one_line(invalid.err)

    refused = await cli(pipeline, "call", FREE, f"ImageURL={pipeline.sandbox.image('missing.jpg')}")
    assert refused.code == 1 and "(HTTP 422, InvalidImage.Download)" in one_line(refused.err)

    unreachable = await cli(pipeline, "--url", "http://127.0.0.1:9", "jobs", "get", "job_x")
    assert unreachable.code == 1 and "no answer from http://127.0.0.1:9" in one_line(unreachable.err)

    bad_json = await cli(pipeline, "call", FREE, "--input", "{not json")
    assert bad_json.code == 2 and "not valid JSON" in one_line(bad_json.err)


async def test_the_admin_commands_create_and_list_keys_and_a_created_key_calls(pipeline: Pipeline) -> None:
    """`server402-admin` (python -m api.admin): the operator's commands, apart from the client's."""
    created = await cli(pipeline, "keys", "create", "--name", "cli robot", "--service", FREE, "--json", module=ADMIN)
    assert created.code == 0, created.err
    issued = created.json()
    assert issued["apiKey"]["name"] == "cli robot" and issued["apiKey"]["services"] == [FREE]

    listed = await cli(pipeline, "keys", "list", "--json", module=ADMIN)
    assert listed.code == 0, listed.err
    assert issued["apiKey"]["id"] in [json.loads(line)["id"] for line in listed.out.splitlines()]

    face = pipeline.sandbox.image("face.jpg")
    called = await cli(pipeline, "call", FREE, f"ImageURL={face}", env={"SERVER402_API_KEY": issued["key"]})
    assert called.code == 0, called.err
    assert called.json()["data"]["Action"] == "RecognizeExpression"
    refused = await cli(pipeline, "call", PAID, f"ImageURL={face}", "--api-key", issued["key"])
    assert refused.code == 1 and "HTTP 403" in one_line(refused.err) and issued["key"] not in refused.err


# ---------------------------------------------------------------- batches


async def test_batch_submit_runs_a_few_hundred_items_and_reads_their_results(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    missing = pipeline.sandbox.image("missing.jpg")
    lines = item_lines(pipeline, 290)
    lines += [json.dumps({"customId": f"bad-{i}", "serviceId": PAID, "input": {"ImageURL": missing}}).encode() + b"\n"
              for i in range(10)]  # fmt: skip
    items = tmp_path / "items.jsonl"
    items.write_bytes(b"\n".join(lines[:150]) + b"\n\r\n" + b"".join(lines[150:]))  # blank lines are skipped
    token = await buy_token(pipeline, 300)

    ran = await cli(pipeline, "batch", "submit", str(items), "--chunk-size", "128", "--token", token)
    assert ran.code == 0, ran.err
    assert one_line(ran.out) == "300 items in 3 batches: 290 succeeded, 10 failed, 0 canceled, 0 expired"
    state = json.loads((tmp_path / "items.jsonl.server402.json").read_text())
    assert [(b["firstItem"], b["items"]) for b in state["batches"]] == [(1, 128), (129, 128), (257, 44)]
    assert ran.err.count(" submitted") == 3

    status = await cli(pipeline, "--json", "batch", "status", "--state", f"{items}.server402.json", "--token", token)
    views = [json.loads(line) for line in status.out.splitlines()]
    assert [view["status"] for view in views] == ["completed"] * 3

    output = tmp_path / "results.jsonl"
    results = await cli(pipeline, "batch", "results", "--state", f"{items}.server402.json", "--output", str(output),
                        "--token", token)  # fmt: skip
    assert results.code == 0, results.err
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(rows) == 300 and len({row["customId"] for row in rows}) == 300
    assert Counter(row["status"] for row in rows) == {"succeeded": 290, "failed": 10}
    assert {row["error"]["code"] for row in rows if row["status"] == "failed"} == {"InvalidImage.Download"}

    first = state["batches"][0]["batchId"]
    tail = await cli(pipeline, "batch", "results", first, "--offset", "100", "--token", token)
    assert len(tail.out.splitlines()) == 28

    again = await cli(pipeline, "batch", "submit", str(items), "--token", token)  # everything recorded: no request
    assert again.code == 0 and " submitted" not in again.err and one_line(again.out).startswith("300 items in 3")
    assert await used_calls(pipeline, token) == 300


async def test_batch_submit_resumes_after_sigkill_and_submits_nothing_twice(pipeline: Pipeline, tmp_path: Path) -> None:
    lines = item_lines(pipeline, 500)
    token = await buy_token(pipeline, 600)
    state_file = tmp_path / "state.json"
    args = ("batch", "submit", "-", "--state", str(state_file), "--token", token)

    process = await start(pipeline, *args, "--chunk-size", "100")
    assert process.stdin is not None and process.stderr is not None
    process.stdin.write(b"".join(lines[:250]))  # two full chunks and half a third: the pipe stays open
    await process.stdin.drain()
    for _ in range(2):
        line = await asyncio.wait_for(process.stderr.readline(), CLI_TIMEOUT_S)
        assert line.endswith(b" submitted\n"), line
    first_run = json.loads(state_file.read_text())["batches"]
    assert [(b["firstItem"], b["items"]) for b in first_run] == [(1, 100), (101, 100)]
    process.send_signal(signal.SIGKILL)
    await process.wait()

    # As if the kill had come after the server made the second batch but before the state file recorded it:
    # the re-run cuts the same chunk, sends the same Idempotency-Key and gets that batch back, not a new one.
    state = json.loads(state_file.read_text())
    state["batches"] = state["batches"][:1]
    state_file.write_text(json.dumps(state))

    resumed = await cli(pipeline, *args, stdin=b"".join(lines))
    assert resumed.code == 0, resumed.err
    assert one_line(resumed.out) == "500 items in 5 batches: 500 succeeded, 0 failed, 0 canceled, 0 expired"
    batches = json.loads(state_file.read_text())["batches"]
    assert [b["batchId"] for b in batches[:2]] == [b["batchId"] for b in first_run]
    assert [(b["firstItem"], b["items"]) for b in batches] == [(1 + 100 * i, 100) for i in range(5)]

    results = await cli(pipeline, "batch", "results", "--state", str(state_file), "--token", token)
    rows = [json.loads(line) for line in results.out.splitlines()]
    assert sorted(Counter(row["customId"] for row in rows).items()) == sorted((f"item-{i}", 1) for i in range(500))
    assert len({row["jobId"] for row in rows}) == 500
    assert await used_calls(pipeline, token) == 500


async def test_a_refused_chunk_names_its_input_lines_and_what_to_buy(pipeline: Pipeline, tmp_path: Path) -> None:
    lines = item_lines(pipeline, 5)
    lines[3] = json.dumps({"customId": "item-3", "serviceId": PAID, "input": {}}).encode() + b"\n"
    items = tmp_path / "items.jsonl"
    items.write_bytes(b"\n" + b"".join(lines))  # the bad item is on line 5
    token = await buy_token(pipeline, 5)

    invalid = await cli(pipeline, "batch", "submit", str(items), "--token", token)
    assert invalid.code == 1
    assert "items 1-5 (input lines 2-6) were not submitted" in invalid.err and "HTTP 422" in invalid.err
    assert "line 5 (customId 'item-3'): validation_failed: ImageURL is required" in invalid.err
    assert not (tmp_path / "items.jsonl.server402.json").exists()  # no batch was made

    items.write_bytes(b"".join(item_lines(pipeline, 5)))  # valid now, but sent without a token
    unpaid = await cli(pipeline, "batch", "submit", str(items))
    assert unpaid.code == 1 and "HTTP 402" in unpaid.err
    assert f"needs 5 call(s) of {PAID}: server402 buy {PAID} --calls 5 --wallet-key HEX" in unpaid.err
    assert await used_calls(pipeline, token) == 0


@pytest.mark.no_worker
async def test_batch_cancel_gives_back_what_has_not_started_and_a_call_outlasting_its_wait_prints_its_job(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    token = await buy_token(pipeline, 30)
    items = tmp_path / "items.jsonl"
    items.write_bytes(b"".join(item_lines(pipeline, 30)))
    hook = "http://127.0.0.1:9/hooks"
    submitted = await cli(pipeline, "batch", "submit", str(items), "--no-wait", "--webhook", hook,
                          "--webhook-events", "batch.completed,job.canceled", "--token", token)  # fmt: skip
    assert submitted.code == 0, submitted.err
    batch_id = one_line(submitted.out)
    assert await used_calls(pipeline, token) == 30

    canceled = await cli(pipeline, "--json", "batch", "cancel", batch_id, "--token", token)
    assert canceled.code == 0, canceled.err
    assert canceled.json()["status"] in ("canceling", "canceled")

    free = await cli(pipeline, "call", FREE, f"ImageURL={pipeline.sandbox.image('face.jpg')}", "--wait", "1")
    assert free.code == 0, free.err
    job = free.json()
    assert job["status"] == "queued" and f"jobs get {job['jobId']}" in free.err  # no worker: it waits in the queue
    dropped = await cli(pipeline, "jobs", "cancel", job["jobId"])
    assert dropped.code == 0 and dropped.json()["status"] == "canceled"

    pipeline.start_worker()  # the batch's fan-out runs and finds it canceled
    status = await cli(pipeline, "batch", "status", batch_id, "--wait", "30", "--json", "--token", token)
    view = status.json()
    assert view["status"] == "canceled" and view["requestCounts"]["canceled"] == 30
    assert view["webhook"] == {"url": hook, "events": ["batch.completed", "job.canceled"]}
    assert await used_calls(pipeline, token) == 0


def test_the_client_imports_nothing_of_the_server() -> None:
    """client/ is what a customer installs: loading all of it loads no module of api/, workers/, shared/ or the
    sandbox."""
    probe = (
        "import sys, client, client.cli, client.batch_commands, client.batch_submit, client.files; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'api', 'workers', 'shared', 'sandbox', 'scripts'}))"
    )
    ran = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert ran.stdout.strip() == "[]", ran.stdout + ran.stderr
