#!/usr/bin/env bash
# Prints deb822 `deb-src` stanzas for every `deb` source the host's apt already
# uses (one-line and deb822 formats), so source packages come from the same mirror.
set -euo pipefail
shopt -s nullglob

emit() { # uri suite components signed_by
  printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: %s\n' "$1" "$2" "$3"
  [ -n "$4" ] && printf 'Signed-By: %s\n' "$4"
  printf '\n'
}

for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
  [ -f "$f" ] || continue
  while read -r type rest; do
    [ "$type" = deb ] || continue
    opts=""
    if [[ $rest == \[* ]]; then opts=${rest%%]*}; rest=${rest#*] }; fi
    read -r uri suite comps <<<"$rest"
    signed=""
    [[ $opts =~ signed-by=([^ \]]+) ]] && signed=${BASH_REMATCH[1]}
    emit "$uri" "$suite" "$comps" "$signed"
  done <"$f"
done

for f in /etc/apt/sources.list.d/*.sources; do
  awk -v RS='' '
    /(^|\n)Types:[^\n]*deb([ \n]|$)/ && !/(^|\n)Enabled: *no/ {
      uris=""; suites=""; comps=""; signed=""
      n = split($0, lines, "\n")
      for (i = 1; i <= n; i++) {
        line = lines[i]
        if (line ~ /^URIs:/) { sub(/^URIs: */, "", line); uris = line }
        else if (line ~ /^Suites:/) { sub(/^Suites: */, "", line); suites = line }
        else if (line ~ /^Components:/) { sub(/^Components: */, "", line); comps = line }
        else if (line ~ /^Signed-By:/) { sub(/^Signed-By: */, "", line); signed = line }
      }
      if (uris == "") next
      printf "Types: deb-src\nURIs: %s\nSuites: %s\nComponents: %s\n", uris, suites, comps
      if (signed != "") printf "Signed-By: %s\n", signed
      printf "\n"
    }' "$f"
done
