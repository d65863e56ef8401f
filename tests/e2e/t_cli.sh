#!/usr/bin/env bash
# t_cli.sh - the binary starts, reports its version, rejects unknown commands.
source "$(dirname "$0")/lib.sh"
check "version prints" bash -c '"$AUTODATA" version | grep -q "^autodata "'
check "help lists commands" bash -c '"$AUTODATA" help | grep -q "commands:"'
"$AUTODATA" no-such-command >/dev/null 2>&1; rc=$?
check "unknown command exits 2" test "$rc" -eq 2

# validate's text shows the settings merged into requests (extra_body, a role's extra),
# not only validate --json.
cat >"$E2E_TMP/extra.yaml" <<'YAML'
name: extra
sources: {path: /dev/null}
endpoints:
  local: {base_url: "http://127.0.0.1:9/v1", extra_body: {chat_template_kwargs: {enable_thinking: false}}}
roles:
  challenger: {endpoint: local, model: m, extra: {top_k: 20}}
  weak: {endpoint: local, model: m}
  strong: {endpoint: local, model: m}
  judge: {endpoint: local, model: m}
YAML
"$AUTODATA" validate "$E2E_TMP/extra.yaml" >"$E2E_TMP/extra.out" 2>&1
check "validate text shows an endpoint's extra_body" \
  grep -q 'extra_body *{"chat_template_kwargs":{"enable_thinking":false}}' "$E2E_TMP/extra.out"
check "validate text shows a role's extra" grep -q 'extra *{"top_k":20}' "$E2E_TMP/extra.out"

# ... and so does the data card, with each endpoint's structured-output mode.
"$AUTODATA" sim-sources --count 2 --out "$E2E_TMP/card-src.jsonl" 2>/dev/null
cat >"$E2E_TMP/card.yaml" <<YAML
name: extra-card
sources: {path: $E2E_TMP/card-src.jsonl}
endpoints:
  local: {base_url: sim, json_schema: basic, extra_body: {chat_template_kwargs: {enable_thinking: false}}}
roles:
  orchestrator: {endpoint: local, model: sim-orchestrator}
  challenger: {endpoint: local, model: sim-challenger, extra: {top_k: 20}}
  quality: {endpoint: local, model: sim-quality}
  weak: {endpoint: local, model: "sim-solver@0.35"}
  strong: {endpoint: local, model: "sim-solver@0.8"}
  judge: {endpoint: local, model: sim-judge}
output: {folder: $E2E_TMP/card-out}
YAML
"$AUTODATA" run "$E2E_TMP/card.yaml" --quiet >/dev/null 2>&1
check "card: a role's extra in the roles table" \
  grep -q '^| challenger | local | sim-challenger |.*| {"top_k":20} |' "$E2E_TMP/card-out/DATACARD.md"
check "card: an endpoint's schema mode and extra_body" \
  grep -qF '| local | sim | 64 | basic | {"chat_template_kwargs":{"enable_thinking":false}} |' \
  "$E2E_TMP/card-out/DATACARD.md"
finish
