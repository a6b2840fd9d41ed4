# SPDX-License-Identifier: MIT
# Bash completion for lupine: commands, options, their values, and the names
# of artifacts, runs, pipelines, stacks and stores in the catalog. The
# program itself says what can come next (`lupine __complete WORD...`), so
# this file stays right as commands change. Installed by `make install` in
# share/bash-completion/completions/lupine; or source it from ~/.bashrc.

_lupine() {
  local words=() i pos=0 skipped w cur out line=$COMP_LINE
  # The words up to the cursor, glued back where bash split them at a
  # COMP_WORDBREAKS character (":" in NAME:VERSION, "=" in --opt=value):
  # words the line does not separate by blanks are one word.
  for ((i = 0; i <= COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    skipped=0
    while [[ ${line:pos:1} == [[:blank:]] ]]; do ((pos++)); skipped=1; done
    if ((i > 0 && !skipped)); then words[${#words[@]} - 1]+=$w; else words+=("$w"); fi
    ((pos += ${#w}))
  done
  cur=${words[${#words[@]} - 1]}
  local program=${words[0]/#\~/$HOME}
  out=$("$program" __complete "${words[@]:1}" 2>/dev/null) || return 0
  case $out in
    @files) mapfile -t COMPREPLY < <(compgen -f -- "$cur"); compopt -o filenames 2>/dev/null; return 0 ;;
    @dirs) mapfile -t COMPREPLY < <(compgen -d -- "$cur"); compopt -o filenames 2>/dev/null; return 0 ;;
  esac
  # bash replaces only what follows the last word break in the word
  local breaks=${COMP_WORDBREAKS//[^:=]/} prefix=""
  if [[ -n $breaks && $cur == *["$breaks"]* ]]; then prefix=${cur%"${cur##*["$breaks"]}"}; fi
  COMPREPLY=()
  while IFS= read -r w; do
    w=${w#"$prefix"}
    printf -v w %q "$w"
    COMPREPLY+=("$w")
  done <<< "$out"
  [[ -z $out ]] && COMPREPLY=()
  return 0
}
complete -F _lupine lupine
