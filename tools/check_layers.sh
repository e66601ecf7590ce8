#!/bin/sh
# make check-layers: the module layering and the table ownership written in
# docs/ARCHITECTURE.md ("Layers", "Tables and their owners"), checked
# against the sources. Fails (exit 1), naming file and line, on
#   - an #include of a module in the same layer or above (programs: core
#     only);
#   - an #include of a provider's header (adapters/<provider>/...) outside
#     adapters/, or of a *_int.h outside its own folder;
#   - SQL in a module's C sources that writes (INSERT INTO, UPDATE,
#     DELETE FROM, TRUNCATE) a table another module owns.
# Tests, fuzz targets and benchmarks are not modules and are not checked.
#
# A grep, not a parser: SQL is found in the text of the sources, so a write
# spelled across two string literals ("UPDATE " "nodes") would pass. The
# sources keep each statement's verb and table together.
#
# Usage: tools/check_layers.sh [ROOT]   (ROOT: the source tree, default .)
set -eu
root=${1:-.}
arch="$root/docs/ARCHITECTURE.md"
[ -r "$arch" ] || { echo "check-layers: $arch not found" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# module -> layer ("programs" for the three programs), from the Layers table.
awk '
	/^### Layers/ { on = 1; next }
	/^##/ { on = 0 }
	on && /^\| [0-9a-z]+ \| `/ {
		layer = $2
		line = $0
		while (match(line, /`[a-z_]+`/)) {
			print substr(line, RSTART + 1, RLENGTH - 2), layer
			line = substr(line, RSTART + RLENGTH)
		}
	}' "$arch" >"$tmp/layers"
# table -> owner, from the ownership table (a row may name several tables).
awk -F'|' '
	/^### Tables and their owners/ { on = 1; next }
	/^##/ { on = 0 }
	on && /^\| `/ {
		owner = $3; gsub(/[ `]/, "", owner)
		line = $2
		while (match(line, /`[a-z_]+`/)) {
			print substr(line, RSTART + 1, RLENGTH - 2), owner
			line = substr(line, RSTART + RLENGTH)
		}
	}' "$arch" >"$tmp/owners"
[ -s "$tmp/layers" ] || { echo "check-layers: no Layers table in $arch" >&2; exit 2; }
[ -s "$tmp/owners" ] || { echo "check-layers: no ownership table in $arch" >&2; exit 2; }

modules=$(awk '{print $1}' "$tmp/layers")
# Every module folder is in the table, and every table in sql/ has an owner.
for d in "$root"/*/; do
	d=${d%/}; d=${d##*/}
	case $d in tests|fuzz|bench|build*|docs|sql|tools|etc|dist|man|web|debian) continue ;; esac
	[ -n "$(find "$root/$d" -name '*.c' | head -1)" ] || continue
	grep -q "^$d " "$tmp/layers" ||
		echo "$d/: a module in no layer of docs/ARCHITECTURE.md's Layers table" >>"$tmp/bad"
done
grep -ho 'CREATE TABLE \(IF NOT EXISTS \)\?[a-z_]*' "$root"/sql/*.sql "$root"/core/db.c 2>/dev/null |
	awk '{print $NF}' | sort -u | while read -r t; do
	grep -q "^$t " "$tmp/owners" ||
		echo "table $t: no owner in docs/ARCHITECTURE.md's ownership table" >>"$tmp/bad"
done

for m in $modules; do
	[ -d "$root/$m" ] || continue
	mlayer=$(awk -v m="$m" '$1 == m {print $2}' "$tmp/layers")
	find "$root/$m" -name '*.[ch]' | sort | while read -r f; do
		rel=${f#"$root"/}
		# Includes.
		grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[a-z_]*/' "$f" 2>/dev/null |
			sed 's/^\([0-9]*\):.*include[[:space:]]*"\([^"]*\)".*/\1 \2/' |
			while read -r ln path; do
				to=${path%%/*}
				[ "$to" = "$m" ] && continue
				case $path in
				*_int.h) echo "$rel:$ln: includes $path, another module's internals" ;;
				adapters/*/*) echo "$rel:$ln: includes $path, a provider's header (only adapters/adapter.h outside adapters/)" ;;
				esac
				tlayer=$(awk -v m="$to" '$1 == m {print $2}' "$tmp/layers")
				[ -n "$tlayer" ] || continue # not a module (a system header's path)
				if [ "$mlayer" = programs ]; then
					[ "$to" = core ] || echo "$rel:$ln: $m is a program of its own and includes $path (core only)"
				elif [ "$tlayer" = programs ] || [ "$tlayer" -ge "$mlayer" ]; then
					echo "$rel:$ln: $m (layer $mlayer) includes $path ($to, layer $tlayer): an include must point down"
				fi
			done >>"$tmp/bad"
		# SQL writes.
		case $f in *.c) ;; *) continue ;; esac
		grep -noE '(INSERT INTO|UPDATE|DELETE FROM|TRUNCATE( TABLE)?) +[a-z_]+' "$f" |
			while IFS=: read -r ln what; do
				t=${what##* }
				owner=$(awk -v t="$t" '$1 == t {print $2}' "$tmp/owners")
				[ -n "$owner" ] || continue # not a table (UPDATE SET, FOR UPDATE OF)
				[ "$owner" = "$m" ] ||
					echo "$rel:$ln: $m writes table $t, which $owner owns ($what)"
			done >>"$tmp/bad"
	done
done

if [ -s "$tmp/bad" ]; then
	cat "$tmp/bad" >&2
	echo "check-layers: $(wc -l <"$tmp/bad") breach(es) of docs/ARCHITECTURE.md's layers or table owners" >&2
	exit 1
fi
echo "check-layers: $(echo "$modules" | wc -w) modules, $(wc -l <"$tmp/owners") tables: every include points down, every table is written by its owner"
