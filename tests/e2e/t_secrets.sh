#!/usr/bin/env bash
# t_secrets.sh - no secret value leaves the process: a key pasted where a variable name
# belongs is refused without being echoed, and a server that echoes the bearer token and a
# secret header in its 401 body leaves no trace of either on stdout, stderr, the store, the
# outputs or the card (docs/recipes.md, "Secrets").
source "$(dirname "$0")/lib.sh"
T=$E2E_TMP
"$AUTODATA" sim-sources --count 3 --seed 4 --out "$T/src.jsonl" 2>/dev/null

# recipe ENDPOINT_LINES...: a small recipe on endpoint 'e' whose settings are the arguments.
recipe() {
  { cat <<Y
name: secrets
task: rubric
goal: g
sources: {path: $T/src.jsonl}
endpoints:
  e:
    base_url: http://127.0.0.1:${PORT:-1}/v1
    max_retries: 0
Y
    for l in "$@"; do echo "    $l"; done
    cat <<Y
roles:
  orchestrator: {endpoint: e, model: m}
  challenger:   {endpoint: e, model: m}
  quality:      {endpoint: e, model: m}
  weak:         {endpoint: e, model: m}
  strong:       {endpoint: e, model: m}
  judge:        {endpoint: e, model: m}
accept: {preset: cs-deployed}
output: {folder: ${OUT:-$T/out}}
Y
  }
}

# A key pasted in place of the name: refused by validate and run, never printed.
KEY1=sk-proj-AbCdEf0123456789GhIjKl
recipe "api_key_env: $KEY1" >"$T/pasted.yaml"
"$AUTODATA" validate "$T/pasted.yaml" >"$T/p.out" 2>&1; rc=$?
check "pasted key: validate exits 2" test "$rc" -eq 2
check "pasted key: validate names the field" grep -q "api_key_env: not an environment variable name" "$T/p.out"
check "pasted key: validate never prints it" bash -c "! grep -q AbCdEf0123 '$T/p.out'"
"$AUTODATA" run "$T/pasted.yaml" >"$T/pr.out" 2>&1; rc=$?
check "pasted key: run exits 2" test "$rc" -eq 2
check "pasted key: run never prints it" bash -c "! grep -q AbCdEf0123 '$T/pr.out'"
check "pasted key: run creates no store" test ! -e "$T/out/store.db"

# A key without dashes that is a valid name ('hf_...'), unset: refused, never printed.
recipe "api_key_env: hf_aBcDeFgH1234567890xYz" >"$T/hf.yaml"
"$AUTODATA" validate "$T/hf.yaml" >"$T/hf.out" 2>&1; rc=$?
check "hf-style key: validate exits 2" test "$rc" -eq 2
check "hf-style key: never printed" bash -c "! grep -q aBcDeFgH '$T/hf.out'"

# '${VAR}' gives the key itself: refused with the fix, the key never printed.
export AUTODATA_T_CRED=Zq7wXy-secret-value-9911
recipe 'api_key_env: ${AUTODATA_T_CRED}' >"$T/interp.yaml"
"$AUTODATA" validate "$T/interp.yaml" >"$T/i.out" 2>&1; rc=$?
check "\${VAR} as api_key_env: validate exits 2" test "$rc" -eq 2
check "\${VAR} as api_key_env: says to give the NAME" grep -q "NAME without" "$T/i.out"
check "\${VAR} as api_key_env: key never printed" bash -c "! grep -q Zq7wXy '$T/i.out'"

# A password in a URL's userinfo is a secret too: masked in what validate prints.
sed -e 's|http://127.0.0.1:1/v1|https://bob:url-pass-31337-x@127.0.0.1:1/v1|' "$T/hf.yaml" |
  sed -e '/api_key_env/d' >"$T/url.yaml"
"$AUTODATA" validate --json "$T/url.yaml" >"$T/url.out" 2>&1
check "URL userinfo: validate --json passes" test $? -eq 0
check "URL userinfo: the password is masked" bash -c "grep -q 'bob:\[redacted\]@' '$T/url.out' && ! grep -q url-pass '$T/url.out'"

# A server that echoes the key and a secret header in its 401 body.
PORT=$(free_port)
python3 "$(dirname "$0")/echo_key_server.py" "$PORT" &
E2E_PIDS+=($!)
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/v1/models" && break; sleep 0.05; done
export AUTODATA_T_CRED2=Qv8-echo-me-if-you-dare-4242   # a name that does not look secret
export AUTODATA_T_HDR=hdrval-7777-do-not-store
OUT=$T/echo-out recipe "api_key_env: AUTODATA_T_CRED2" "headers: {X-Api-Key: \"\${AUTODATA_T_HDR}\"}" >"$T/echo.yaml"
"$AUTODATA" run "$T/echo.yaml" --progress plain >"$T/e.out" 2>"$T/e.err"; rc=$?
check "echoing server: run ends non-zero" test "$rc" -ne 0
check "echoing server: the server's message is shown, masked" grep -q "Incorrect API key provided: \[redacted\]" "$T/e.err"
leaks=$(cat "$T/e.out" "$T/e.err" "$T/echo-out"/* 2>/dev/null | grep -a -c -e "echo-me-if" -e "do-not-store")
check "echoing server: nothing printed or written holds a secret ($leaks lines)" test "$leaks" -eq 0
if [ -e "$T/echo-out/store.db" ]; then
  dump=$(sqlite3 "$T/echo-out/store.db" .dump 2>&1)
  check "echoing server: the store holds the masked message" bash -c "echo \"\$0\" | grep -q 'redacted'" "$dump"
  check "echoing server: the store holds no secret" bash -c "! echo \"\$0\" | grep -q -e echo-me-if -e do-not-store" "$dump"
  # bodies and records are compressed in the file: read them decoded too
  decoded=$("$AUTODATA" store calls "$T/echo-out/store.db" 2>&1)
  check "echoing server: the store's calls, decoded, hold no secret" bash -c "! echo \"\$0\" | grep -q -e echo-me-if -e do-not-store" "$decoded"
fi
"$AUTODATA" status --store "$T/echo-out/store.db" >"$T/st.out" 2>&1
check "echoing server: status holds no secret" bash -c "! grep -q -e echo-me-if -e do-not-store '$T/st.out'"
[ -n "${KEEP:-}" ] && cp -r "$T" /tmp/hh/keep
finish
