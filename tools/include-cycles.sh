#!/bin/sh
# The module graph of proxy/ must have no cycle (docs/DESIGN.md, "Layers").
#
# A module X is proxy/X.c and include/sluice/X.h; X includes Y when either
# file says `#include <sluice/Y.h>` (Y other than X). The way back up from a
# lower module is a callback or an ops table, never a higher one's header.
#
# Prints every module with what it includes, then either "no cycle" (exit
# 0) or the first cycle found, as "cycle: a -> b -> a" (exit 1). Run from
# anywhere: the source tree is $SLUICE_SRCDIR, $srcdir (make check sets
# both) or the directory above this script.
set -u
top=${SLUICE_SRCDIR:-${srcdir:-$(dirname "$0")/..}}
if [ ! -d "$top/proxy" ] || [ ! -d "$top/include/sluice" ]; then
	echo "include-cycles.sh: no proxy/ and include/sluice/ under $top" >&2
	exit 2
fi

for f in "$top"/proxy/*.c "$top"/include/sluice/*.h; do
	m=$(basename "$f")
	m=${m%.*}
	sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*<sluice\/\([A-Za-z0-9_]*\)\.h>.*/\1/p' "$f" |
		while read -r dep; do
			echo "$m $dep"
		done
	echo "$m $m"
done | sort -u | awk '
{
	if (!($1 in seen)) { seen[$1] = 1; mods[++nmods] = $1 }
	if ($1 != $2) { deps[$1] = deps[$1] " " $2; ndeps[$1]++; dep[$1, ndeps[$1]] = $2 }
}
# Depth-first search with an explicit stack; colour 1 = on the path,
# 2 = done. The first back edge closes a cycle: the path from its target.
function search(start,    sp, top, i, d, k, out) {
	sp = 1; stack[1] = start; next_i[1] = 1; colour[start] = 1
	while (sp > 0) {
		top = stack[sp]; i = next_i[sp]
		if (i > ndeps[top]) { colour[top] = 2; sp--; continue }
		next_i[sp] = i + 1
		d = dep[top, i]
		if (colour[d] == 1) {
			for (k = 1; stack[k] != d; k++)
				;
			out = d
			for (k++; k <= sp; k++)
				out = out " -> " stack[k]
			cycle = out " -> " d
			return 1
		}
		if (colour[d] == 0) { sp++; stack[sp] = d; next_i[sp] = 1; colour[d] = 1 }
	}
	return 0
}
END {
	for (i = 1; i <= nmods; i++)
		printf "%-16s%s\n", mods[i] ":", deps[mods[i]]
	for (i = 1; i <= nmods; i++) {
		if (colour[mods[i]] == 0 && search(mods[i])) {
			print "cycle: " cycle
			exit 1
		}
	}
	print "no cycle"
}'
