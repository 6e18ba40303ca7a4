"""A real two-node Ray cluster on this machine, with token authentication, driven by Ray's own CLI.

* `python -m pipeline fetch-models` against a local stand-in for the Hugging Face hub (the REST
  endpoints huggingface_hub downloads through), including a gated checkpoint and HF_TOKEN;
* `ray start --head` + a second `ray start --address ...`, every port pinned outside Ray's
  default worker-port range, object stores pinned small, each node in its own process group;
* `ray job submit --working-dir . --runtime-env jobs/runtime_env.yaml -- python jobs/mask_dataset.py`
  with the parser given as a hub id and read from the fetched cache only (HF_HUB_OFFLINE=1);
* a job that cannot run is FAILED; a request without the token (or with a wrong one) is refused;
* the second node's processes are killed in the middle of a job, which still finishes with every
  input row exactly once in the manifest.

Everything is torn down at the end, also on failure: only the processes these tests started are
killed (never `ray stop`, which would stop every Ray on the machine).
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

from pipeline.testing.synthetic import make_person

ROOT = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).with_name("ray")) if Path(sys.executable).with_name("ray").exists() else "ray"
PARSER_REPO = "vton-test/tiny-parser"
OBJECT_STORE_BYTES = 200 * 1024 * 1024


# ---------------------------------------------------------------------------------------------
# A stand-in for the Hugging Face hub: the endpoints snapshot_download and hf_hub_download use
# ---------------------------------------------------------------------------------------------

class FakeHub:
    """Serves folders as hub repos on 127.0.0.1 (HF_ENDPOINT); a repo with a token is gated."""

    def __init__(self):
        self.repos: dict[str, dict] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                hub.serve(self, body=False)

            def do_GET(self):
                hub.serve(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def add(self, repo: str, files: dict[str, bytes], token: str | None = None) -> None:
        sha = hashlib.sha1((repo + "".join(sorted(files))).encode()).hexdigest()
        self.repos[repo] = {"files": files, "sha": sha, "token": token}

    def start(self) -> "FakeHub":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def send(handler, status: int, payload: bytes = b"", headers: dict | None = None, body: bool = True) -> None:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        if body:
            handler.wfile.write(payload)

    def serve(self, handler, body: bool) -> None:
        path = unquote(urlsplit(handler.path).path)
        self.requests.append((handler.command, path, handler.headers.get("authorization")))
        parts = path.strip("/").split("/")
        api = parts[:2] == ["api", "models"]
        repo, rest = ("/".join(parts[2:4]), parts[4:]) if api else ("/".join(parts[:2]), parts[2:])
        info = self.repos.get(repo)
        if info is None:
            return self.send(handler, 404, b"", {"X-Error-Code": "RepoNotFound",
                                                 "X-Error-Message": "Repository not found"}, body)
        files = info["files"]
        if api and rest[:1] == ["revision"]:
            document = {"id": repo, "modelId": repo, "sha": info["sha"], "private": False,
                        "siblings": [{"rfilename": name} for name in sorted(files)]}
            return self.send(handler, 200, json.dumps(document).encode(), {"Content-Type": "application/json"}, body)
        if api and rest[:1] == ["tree"]:
            document = [{"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                        for name, data in sorted(files.items())]
            return self.send(handler, 200, json.dumps(document).encode(), {"Content-Type": "application/json"}, body)
        if not api and rest[:1] == ["resolve"]:
            name = "/".join(rest[2:])
            if info["token"] and handler.headers.get("authorization") != f"Bearer {info['token']}":
                return self.send(handler, 401, b"", {"X-Error-Code": "GatedRepo",
                                                     "X-Error-Message": f"Access to model {repo} is restricted."}, body)
            if name not in files:
                return self.send(handler, 404, b"", {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": info["sha"]},
                                 body)
            data = files[name]
            return self.send(handler, 200, data, {"X-Repo-Commit": info["sha"],
                                                  "ETag": f'"{hashlib.sha256(data).hexdigest()}"'}, body)
        return self.send(handler, 404, b"", {}, body)


def folder_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def fetch_models(hf_home: Path, hub: FakeHub, *args: str, token: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HOME=str(hf_home), HF_ENDPOINT=hub.url, HF_HUB_DISABLE_TELEMETRY="1", PYTHONPATH=str(ROOT))
    if token:
        env["HF_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "pipeline", "fetch-models", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def hub(tiny_parser_dir):
    hub = FakeHub()
    hub.add(PARSER_REPO, {**folder_files(tiny_parser_dir), "onnx/model.onnx": b"not needed", "README.md": b"card"})
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture(scope="module")
def hf_home(hub, tmp_path_factory) -> Path:
    """A hub cache filled by fetch-models: what a shared HF_HOME on a cluster holds."""
    home = tmp_path_factory.mktemp("hf-home")
    result = fetch_models(home, hub, "--parser", PARSER_REPO, "--pose", "none")
    assert result.returncode == 0, result.stderr[-3000:]
    return home


def test_fetch_models_caches_only_what_the_parser_loads(hf_home, hub):
    [snapshot] = (hf_home / "hub" / f"models--{PARSER_REPO.replace('/', '--')}" / "snapshots").iterdir()
    assert sorted(p.name for p in snapshot.iterdir()) == ["config.json", "model.safetensors",
                                                          "preprocessor_config.json"]
    assert not any(path.endswith("onnx/model.onnx") for _, path, _ in hub.requests)
    # Fetched once, the cache answers offline: what the actors do with HF_HUB_OFFLINE=1.
    before = len(hub.requests)
    again = fetch_models(hf_home, hub, "--parser", PARSER_REPO, "--pose", "none")
    assert again.returncode == 0, again.stderr[-3000:]
    env = dict(os.environ, HF_HOME=str(hf_home), HF_HUB_OFFLINE="1", HF_ENDPOINT="http://127.0.0.1:9",
               PYTHONPATH=str(ROOT))
    offline = subprocess.run([sys.executable, "-m", "pipeline", "fetch-models", "--parser", PARSER_REPO, "--pose",
                              "none"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert offline.returncode == 0, offline.stderr[-3000:]
    assert "loads offline" in offline.stdout and "HF_HUB_OFFLINE=1" in offline.stdout
    assert not any(path.endswith("/model.safetensors") for _, path, _ in hub.requests[before:])  # no new download


def test_fetch_models_gated_checkpoints_need_hf_token_and_old_weights_are_found(hub, tiny_parser_dir, tmp_path):
    import torch
    from safetensors.torch import load_file

    files = folder_files(tiny_parser_dir)
    state = load_file(str(tiny_parser_dir / "model.safetensors"))
    buffer = tmp_path / "pytorch_model.bin"
    torch.save(state, buffer)  # a checkpoint from before safetensors
    files = {**{k: v for k, v in files.items() if not k.endswith(".safetensors")},
             "pytorch_model.bin": buffer.read_bytes(), "training_args.bin": b"not needed"}
    hub.add("vton-test/gated-parser", files, token="hf_right")
    hub.add("vton-test/gated-pose", {"body_pose_model.pth": b"weights", "hand_pose_model.pth": b"x"}, token="hf_right")
    home = tmp_path / "hf"

    refused = fetch_models(home, hub, "--parser", "vton-test/gated-parser", "--pose", "none")
    assert refused.returncode == 1
    assert "HF_TOKEN is not set" in refused.stderr and "gated" in refused.stderr
    wrong = fetch_models(home, hub, "--parser", "vton-test/gated-parser", "--pose", "none", token="hf_wrong")
    assert wrong.returncode == 1 and "HF_TOKEN is set but was refused" in wrong.stderr

    fetched = fetch_models(home, hub, "--parser", "vton-test/gated-parser", "--pose", "vton-test/gated-pose",
                           token="hf_right")
    assert fetched.returncode == 0, fetched.stderr[-3000:]
    snapshots = home / "hub" / "models--vton-test--gated-parser" / "snapshots"
    [snapshot] = snapshots.iterdir()
    assert sorted(p.name for p in snapshot.iterdir()) == ["config.json", "preprocessor_config.json",
                                                          "pytorch_model.bin"]
    [pose] = (home / "hub" / "models--vton-test--gated-pose" / "snapshots").iterdir()
    assert [p.name for p in pose.iterdir()] == ["body_pose_model.pth"]
    assert "pose vton-test/gated-pose: cached" in fetched.stdout


# ---------------------------------------------------------------------------------------------
# The job entrypoint's decisions, without a cluster
# ---------------------------------------------------------------------------------------------

def load_job_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("mask_dataset_job", ROOT / "jobs" / "mask_dataset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_summary(rows: int) -> dict:
    return {"output": "out", "rows": rows, "status": {"ok": rows}, "complete": True,
            "this_run": {"rows": rows, "seconds": 1.0, "images_per_s": float(rows)}}


def test_the_job_reruns_the_missing_rows_after_a_cluster_failure_only(monkeypatch, capsys):
    import ray.exceptions
    from ray.data import DataContext
    from ray.data.exceptions import ExecutionTimeoutError

    import pipeline.dataflow as dataflow

    context = DataContext.get_current()  # run_job sets its stall timeout: restore it for other tests
    monkeypatch.setattr(context, "execution_no_progress_timeout_s", context.execution_no_progress_timeout_s)
    job = load_job_module()
    monkeypatch.setattr(job, "wait_for_writes_to_settle", lambda: None)
    parser = job.build_parser()
    calls = []

    def scripted(*outcomes):
        def fake_run(config, overwrite=False, retry_errors=False):
            calls.append((overwrite, retry_errors))
            outcome = outcomes[len(calls) - 1]
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        monkeypatch.setattr(dataflow, "run", fake_run)
        calls.clear()

    args = ["photos", "--output", "out", "--pose", "none", "--overwrite", "--retry-errors", "--stall-timeout", "30"]
    lost_node = ray.exceptions.ActorDiedError()
    scripted(lost_node, ExecutionTimeoutError("no progress"), fake_summary(5))
    assert job.run_job(parser.parse_args(args)) == 0
    assert calls == [(True, True), (False, False), (False, False)]  # never --overwrite a half-done rerun
    assert "done: 5 rows" in capsys.readouterr().out

    scripted(lost_node, lost_node)
    assert job.run_job(parser.parse_args(args + ["--attempts", "2"])) == 1
    assert "failed in 2 runs in a row" in capsys.readouterr().err

    scripted(dataflow.RunError("input folder 'photos' does not exist"))
    assert job.run_job(parser.parse_args(args)) == 1 and len(calls) == 1  # could not run: no rerun

    scripted(ValueError("a bug"))
    with pytest.raises(ValueError):  # a bug is not retried: the traceback goes to the job log, status FAILED
        job.run_job(parser.parse_args(args))
    assert len(calls) == 1


def test_the_job_takes_the_cli_options_from_their_one_definition():
    from pipeline.cli import build_parser

    job_options = {a.dest for a in load_job_module().build_parser()._actions}
    cli = build_parser()
    run_options = {a.dest for a in cli._subparsers._group_actions[0].choices["run"]._actions}
    assert run_options <= job_options
    assert job_options - run_options == {"attempts", "stall_timeout"}


# ---------------------------------------------------------------------------------------------
# The cluster: nodes started with Ray's CLI, killed by process group
# ---------------------------------------------------------------------------------------------

def _bindable(port: int) -> bool:
    for host in ("127.0.0.1", "0.0.0.0"):
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                return False
    return True


def free_port_block(size: int = 100) -> int:
    """A base port with `size` free ports above it, in 20000-29999: outside Ray's default worker-port
    range (10002-19999), which `ray start` refuses other ports in, and outside the ephemeral range."""
    for _ in range(100):
        base = random.randrange(20000, 30000 - size, 10)
        if all(_bindable(port) for port in range(base, base + size)):
            return base
    raise RuntimeError("no block of free ports in 20000-29999")


MARKER = "VTON_TEST_RAY_NODE"  # in the environment of every process of a test node, inherited by all


def _marked(marker: str) -> list[int]:
    """The processes whose environment carries this node's marker: only what the test started."""
    needle = f"{MARKER}={marker}".encode() + b"\0"
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as handle:
                    if needle in handle.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


def _name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return ""


class Node:
    """One `ray start --block` and every process it starts (raylet, agents, workers, job drivers)."""

    def __init__(self, name: str, args: list[str], env: dict, log: Path):
        self.name, self.log = name, log
        self.marker = f"{secrets.token_hex(8)}-{name}"
        with open(log, "wb") as handle:
            self.process = subprocess.Popen([RAY, "start", "--block", *args], env={**env, MARKER: self.marker},
                                            stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)

    def processes(self) -> list[int]:
        """Found by the marker, so that workers orphaned by a killed raylet are found too."""
        return [pid for pid in _marked(self.marker) if pid != os.getpid()]

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> list[str]:
        """SIGKILL to every process of the node at once (what a vanished rented box looks like)."""
        pids = self.processes()
        names = [_name(pid) for pid in pids]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.process.wait(timeout=30)
        deadline = time.monotonic() + 10  # gone, not only signalled: nothing writes to its folders any more
        while time.monotonic() < deadline and any(_name(pid) for pid in self.processes()):
            time.sleep(0.2)
        return names


class Cluster:
    """A head and a worker node on 127.0.0.1 with token authentication, pinned ports and small object stores."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.temp_dir = tempfile.mkdtemp(prefix="vtr-", dir="/tmp")  # short: Ray's socket paths have a length limit
        self.temp_dirs = [self.temp_dir]
        self.token_path = workdir / "auth_token"
        self.token_path.write_text(secrets.token_hex(32))
        self.token_path.chmod(0o600)
        self.base = free_port_block()
        self.gcs_port, self.dashboard_port = self.base, self.base + 4
        self.dashboard = f"http://127.0.0.1:{self.dashboard_port}"
        self.nodes: list[Node] = []
        self.worker: Node | None = None

    def node_env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "HF_", "AWS_"))}
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(self.token_path), RAY_USAGE_STATS_ENABLED="0")
        return env

    def client_env(self, token: str | None = "file") -> dict:
        """The environment of `ray job ...` on a user's machine: with the token file, a given token, or none."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env.update(RAY_USAGE_STATS_ENABLED="0", RAY_ADDRESS=self.dashboard)
        if token == "file":
            env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(self.token_path))
        elif token is None:
            env.update(RAY_AUTH_MODE="disabled")
        else:
            env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
        return env

    def start_head(self) -> None:
        b = self.base
        args = ["--head", "--node-ip-address=127.0.0.1", f"--temp-dir={self.temp_dir}", f"--port={b}",
                f"--node-manager-port={b + 1}", f"--object-manager-port={b + 2}", f"--ray-client-server-port={b + 3}",
                "--dashboard-host=127.0.0.1", f"--dashboard-port={b + 4}", f"--dashboard-agent-listen-port={b + 5}",
                f"--dashboard-agent-grpc-port={b + 6}", f"--runtime-env-agent-port={b + 7}",
                f"--metrics-export-port={b + 8}", f"--min-worker-port={b + 20}", f"--max-worker-port={b + 49}",
                "--num-cpus=2", f"--object-store-memory={OBJECT_STORE_BYTES}", "--disable-usage-stats"]
        self.nodes.append(Node("head", args, self.node_env(), self.workdir / "head.log"))

    def start_worker(self) -> Node:
        b = self.base + 50
        # Its own temp dir, as on a real second machine: nodes sharing one would unpack a job's
        # working_dir into the same folder, under the feet of the driver running in it.
        temp_dir = tempfile.mkdtemp(prefix="vtr-", dir="/tmp")
        self.temp_dirs.append(temp_dir)
        args = [f"--address=127.0.0.1:{self.gcs_port}", "--node-ip-address=127.0.0.1", f"--temp-dir={temp_dir}",
                f"--node-manager-port={b + 1}", f"--object-manager-port={b + 2}",
                f"--dashboard-agent-listen-port={b + 5}", f"--dashboard-agent-grpc-port={b + 6}",
                f"--runtime-env-agent-port={b + 7}", f"--metrics-export-port={b + 8}",
                f"--min-worker-port={b + 20}", f"--max-worker-port={b + 49}",
                "--num-cpus=2", f"--object-store-memory={OBJECT_STORE_BYTES}", "--disable-usage-stats"]
        self.worker = Node("worker", args, self.node_env(), self.workdir / f"worker-{len(self.nodes)}.log")
        self.nodes.append(self.worker)
        return self.worker

    def api(self, path: str, token: str | None = None) -> tuple[int, bytes]:
        token = self.token_path.read_text() if token is None else token
        request = urllib.request.Request(self.dashboard + path,
                                         headers={"Authorization": f"Bearer {token}"} if token else {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except OSError:
            return 0, b""

    def job_status(self, submission_id: str) -> str:
        """What `ray job status` reports, from the same job API."""
        status, body = self.api(f"/api/jobs/{submission_id}")
        assert status == 200, body
        return json.loads(body)["status"]

    def alive_nodes(self) -> int:
        status, body = self.api("/api/v0/nodes?limit=100")
        if status != 200:
            return 0
        return sum(node["state"] == "ALIVE" for node in json.loads(body)["data"]["result"]["result"])

    def wait_for_nodes(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.name == "head" and not node.alive():
                    raise RuntimeError("the head node exited:\n" + node.log.read_text()[-3000:])
            if self.alive_nodes() >= count:
                return
            time.sleep(0.5)
        raise RuntimeError(f"fewer than {count} nodes after {timeout} s:\n" + self.nodes[0].log.read_text()[-3000:])

    def ensure_worker(self) -> Node:
        if self.worker is None or not self.worker.alive():
            self.start_worker()
            self.wait_for_nodes(2)
        return self.worker

    def ray(self, *args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([RAY, *args], cwd=ROOT, env=env or self.client_env(), capture_output=True, text=True,
                              timeout=timeout)

    def teardown(self) -> None:
        for node in reversed(self.nodes):
            try:
                node.kill()
            except Exception:  # keep tearing down the others
                pass
        for folder in self.temp_dirs:
            shutil.rmtree(folder, ignore_errors=True)
            if os.path.exists(folder):
                time.sleep(1)
                shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start_head()
        cluster.wait_for_nodes(1)
        cluster.start_worker()
        cluster.wait_for_nodes(2)
        yield cluster
    finally:
        cluster.teardown()


def runtime_env_file(folder: Path, **env_vars: str) -> Path:
    """jobs/runtime_env.yaml as documented, plus this test's own environment variables."""
    document = yaml.safe_load((ROOT / "jobs" / "runtime_env.yaml").read_text())
    document.setdefault("env_vars", {}).update(env_vars)
    path = folder / "runtime_env.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def submit_args(runtime_env: Path, *job_args: str) -> list[str]:
    return ["job", "submit", "--working-dir", str(ROOT), "--runtime-env", str(runtime_env), "--",
            "python", "jobs/mask_dataset.py", *job_args]


def write_photos(folder: Path, count: int, seed: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        Image.fromarray(make_person(seed + index, 96, 128).image).save(folder / f"p{index:03d}.jpg", quality=85)
    return folder


def job_id(output: str) -> str:
    for word in output.replace("'", " ").split():
        if word.startswith("raysubmit_"):
            return word
    raise AssertionError("no job id in:\n" + output[-3000:])


def manifest_ids(out: Path) -> list[str]:
    return pq.read_table(out / "manifest", columns=["id"]).column("id").to_pylist()


# ---------------------------------------------------------------------------------------------
# Jobs
# ---------------------------------------------------------------------------------------------

def test_a_submitted_job_runs_on_both_nodes_with_models_from_the_cache_only(cluster, hf_home, hub, tmp_path):
    photos = write_photos(tmp_path / "photos", 24, seed=400)
    whole = (photos / "p000.jpg").read_bytes()
    (photos / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    out = tmp_path / "out"
    # HF_HUB_OFFLINE=1 comes from the file; any request the actors made would reach the stand-in hub.
    runtime_env = runtime_env_file(tmp_path, HF_HOME=str(hf_home), HF_ENDPOINT=hub.url)
    requests_before = len(hub.requests)

    result = cluster.ray(*submit_args(runtime_env, str(photos), "--output", str(out), "--parser", PARSER_REPO,
                                      "--pose", "none", "--width", "96", "--height", "128"))
    logs = result.stdout + result.stderr
    assert result.returncode == 0, logs[-5000:]
    assert "connected to the Ray cluster" in logs and "2 nodes, 4 CPUs" in logs
    assert "done: 25 rows in the manifest (error 1, ok 24)" in logs  # error rows counted, job SUCCEEDED
    assert "\r" not in logs and "it/s]" not in logs  # plain lines, no progress bars
    assert cluster.job_status(job_id(logs)) == "SUCCEEDED"
    assert len(hub.requests) == requests_before  # the actors read the cache only: not one hub request

    ids = manifest_ids(out)
    assert sorted(ids) == sorted(["cut"] + [f"p{i:03d}" for i in range(24)])  # every row exactly once
    rows = {row["id"]: row for row in pq.read_table(out / "manifest").to_pylist()}
    assert rows["cut"]["status"] == "error" and "truncated" in rows["cut"]["error"]
    assert {row["parser"] for row in rows.values()} == {PARSER_REPO}
    assert sorted(p.stem for p in (out / "masks").iterdir()) == [f"p{i:03d}" for i in range(24)]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is True and summary["status"] == {"error": 1, "ok": 24}


def test_a_job_that_cannot_run_is_reported_failed(cluster, tmp_path):
    runtime_env = runtime_env_file(tmp_path)
    result = cluster.ray(*submit_args(runtime_env, str(tmp_path / "no-such-folder"), "--output",
                                      str(tmp_path / "out"), "--pose", "none"))
    logs = result.stdout + result.stderr
    assert result.returncode == 1, logs[-3000:]
    assert "does not exist" in logs
    assert cluster.job_status(job_id(logs)) == "FAILED"


def test_requests_without_the_right_token_are_refused(cluster, tmp_path):
    assert cluster.api("/api/jobs/", token="")[0] == 401
    assert cluster.api("/api/jobs/", token="not-the-token")[0] == 403
    assert cluster.api("/api/jobs/")[0] == 200
    jobs_before = len(json.loads(cluster.api("/api/jobs/")[1]))
    marker = tmp_path / "must-not-exist"
    entrypoint = ["--", "python", "-c", f"open({str(marker)!r}, 'w')"]
    for env in (cluster.client_env(token=None), cluster.client_env(token="not-the-token")):
        refused = cluster.ray("job", "submit", "--no-wait", *entrypoint, env=env, timeout=120)
        assert refused.returncode != 0
        assert any(word in refused.stdout + refused.stderr for word in ("401", "403", "Unauthorized", "Forbidden",
                                                                         "uthentication")), refused.stderr[-2000:]
    time.sleep(1)
    assert not marker.exists()
    assert len(json.loads(cluster.api("/api/jobs/")[1])) == jobs_before


def test_a_job_survives_losing_a_node_midway_with_every_row_once(cluster, hf_home, tmp_path):
    """Kill every process of the second node while the job runs; the same submission still finishes."""
    worker = cluster.ensure_worker()
    # Enough rows that writing them takes a while: the kill lands between the first and the last part.
    count = 400
    photos = write_photos(tmp_path / "photos", 8, seed=500)
    for index in range(8, count):
        shutil.copy(photos / f"p{index % 8:03d}.jpg", photos / f"p{index:03d}.jpg")
    out = tmp_path / "out"
    runtime_env = runtime_env_file(tmp_path, HF_HOME=str(hf_home))
    with open(tmp_path / "submit.log", "w+") as log:
        submit = subprocess.Popen([RAY, *submit_args(runtime_env, str(photos), "--output", str(out), "--parser",
                                                     PARSER_REPO, "--pose", "none", "--width", "96", "--height",
                                                     "128", "--rows-per-part", "8", "--stall-timeout", "20")],
                                  cwd=ROOT, env=cluster.client_env(), stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        try:
            # Kill once rows are being written and the victim is busy with pipeline work.
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                assert submit.poll() is None, "the job ended before the node could be killed"
                done = len(manifest_ids(out)) if list(out.glob("manifest/*.parquet")) else 0
                busy = [name for name in map(_name, worker.processes()) if name.startswith("ray::Map")]
                if 0 < done <= count // 2 and busy:
                    break
                time.sleep(0.2)
            else:
                raise AssertionError("the job never reached the point to kill the node")
            killed = worker.kill()
            done_before = len(manifest_ids(out))
            submit.wait(timeout=300)
        finally:
            if submit.poll() is None:
                os.killpg(submit.pid, signal.SIGKILL)
                submit.wait()
        log.seek(0)
        logs = log.read()
    assert submit.returncode == 0, logs[-6000:]
    assert cluster.job_status(job_id(logs)) == "SUCCEEDED"
    assert 0 < done_before < count
    ids = manifest_ids(out)
    assert len(ids) == len(set(ids)) == count, logs[-6000:]  # every input row exactly once
    assert sorted(ids) == [f"p{i:03d}" for i in range(count)]
    assert json.loads((out / "summary.json").read_text())["complete"] is True
    mechanism = ("the job re-ran the rows without a manifest row" if "running the rows that have no manifest row"
                 in logs else "Ray's own retries (tasks retried, actors restarted, lost blocks rebuilt)")
    work = sorted(set(busy) | {name for name in killed if name.startswith("ray::Map")})  # pipeline work it ran
    print(f"\nnode killed with {done_before}/{count} rows done, running {', '.join(work)}; recovered by {mechanism}")
