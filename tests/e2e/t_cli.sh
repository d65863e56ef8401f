#!/usr/bin/env bash
# t_cli.sh - the binary starts, reports its version, rejects unknown commands.
source "$(dirname "$0")/lib.sh"
check "version prints" bash -c '"$AUTODATA" version | grep -q "^autodata "'
check "help lists commands" bash -c '"$AUTODATA" help | grep -q "commands:"'
"$AUTODATA" no-such-command >/dev/null 2>&1; rc=$?
check "unknown command exits 2" test "$rc" -eq 2
finish
