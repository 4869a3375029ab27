#!/usr/bin/env bash
# Kaldi-style option parsing, sourced by a recipe after it sets its defaults:
#   --stage 3  --stop-stage=5  --config conf/demo.conf  --help
# Each --some-name VALUE sets the existing shell variable some_name (dashes become underscores);
# an unknown option is an error. --config FILE sources FILE first (its values can be overridden after it).
# Positional arguments are left in "$@".

_usage="${help_message:-}"
while true; do
  [ -z "${1:-}" ] && break
  case "$1" in
    --help|-h)
      echo -e "$_usage"
      exit 0 ;;
    --*=*)
      _name="${1%%=*}"; _value="${1#*=}"; shift ;;
    --*)
      _name="$1"
      if [ $# -lt 2 ]; then echo "$0: option $1 needs a value" >&2; exit 2; fi
      _value="$2"; shift 2 ;;
    *) break ;;
  esac
  _var="${_name#--}"; _var="${_var//-/_}"
  if [ "$_var" = config ]; then
    if [ ! -f "$_value" ]; then echo "$0: config file $_value not found" >&2; exit 2; fi
    # shellcheck disable=SC1090
    . "$_value"
    continue
  fi
  if [ -z "${!_var+set}" ]; then
    echo "$0: unknown option $_name" >&2; exit 2
  fi
  printf -v "$_var" '%s' "$_value"
done
unset _name _value _var _usage
