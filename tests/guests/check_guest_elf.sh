#!/bin/sh
# Checks one guest executable against DESIGN.md section 8 and the soft
# engine's integer subset:
#   ELF64, little-endian, x86-64, ET_EXEC, no interpreter or dynamic section;
#   every PT_LOAD at or above 1 MiB with p_paddr == p_vaddr;
#   the entry point is _start and lies in an executable PT_LOAD;
#   no SSE/AVX/AVX-512 (xmm/ymm/zmm/k) or x87/MMX (st/mm) register anywhere
#   in the disassembly.
# Usage: check_guest_elf.sh <readelf> <objdump> <guest.elf>
set -eu
readelf=$1
objdump=$2
elf=$3
fail() {
  echo "FAIL $elf: $*" >&2
  exit 1
}
[ -f "$elf" ] || fail "missing (build the guests first: cmake --build <build> --target guests)"

header=$("$readelf" -hW "$elf") || fail "not an ELF file"
field() { echo "$header" | sed -n "s/^ *$1: *//p"; }
[ "$(field Class)" = "ELF64" ] || fail "class is '$(field Class)', want ELF64"
case "$(field Data)" in *"little endian"*) ;; *) fail "not little-endian" ;; esac
[ "$(field Machine)" = "Advanced Micro Devices X86-64" ] || fail "machine is '$(field Machine)'"
case "$(field Type)" in "EXEC "*) ;; *) fail "type is '$(field Type)', want EXEC" ;; esac
entry=$(($(field "Entry point address")))

segments=$("$readelf" -lW "$elf")
for kind in INTERP DYNAMIC TLS; do
  if echo "$segments" | grep -q "^ *$kind "; then fail "has a PT_$kind segment"; fi
done

loads=0
entry_ok=0
# LOAD Offset VirtAddr PhysAddr FileSiz MemSiz Flg... Align (Flg may hold spaces).
echo "$segments" | awk '$1 == "LOAD" { flags = ""; for (i = 7; i < NF; i++) flags = flags $i; print $3, $4, $6, flags }' >"${TMPDIR:-/tmp}/guest_elf_loads.$$"
while read -r vaddr paddr memsz flags; do
  loads=$((loads + 1))
  [ $((vaddr)) -ge $((0x100000)) ] || fail "PT_LOAD at $vaddr is below 1 MiB"
  [ $((vaddr)) -eq $((paddr)) ] || fail "PT_LOAD p_vaddr $vaddr != p_paddr $paddr"
  [ $((memsz)) -gt 0 ] || fail "empty PT_LOAD at $vaddr"
  if [ "$entry" -ge $((vaddr)) ] && [ "$entry" -lt $((vaddr + memsz)) ]; then
    case "$flags" in *E*) entry_ok=1 ;; *) fail "entry $entry in a non-executable segment" ;; esac
  fi
done <"${TMPDIR:-/tmp}/guest_elf_loads.$$"
rm -f "${TMPDIR:-/tmp}/guest_elf_loads.$$"
[ "$loads" -gt 0 ] || fail "no PT_LOAD segment"
[ "$entry_ok" -eq 1 ] || fail "entry $entry is not inside a PT_LOAD"

start=$("$readelf" -sW "$elf" | awk '$8 == "_start" { print $2 }')
[ -n "$start" ] || fail "no _start symbol"
[ $((0x$start)) -eq "$entry" ] || fail "entry $entry is not _start (0x$start)"

disassembly=$("$objdump" -d -M att --no-show-raw-insn "$elf") || fail "objdump failed"
bad=$(echo "$disassembly" | grep -E '%([xyz]mm[0-9]|k[0-7]\b|st\b|st\(|mm[0-9])' || true)
[ -z "$bad" ] || fail "uses SSE/AVX/x87 registers:
$bad"

echo "ok $elf: $loads PT_LOAD segment(s), entry $(printf '0x%x' "$entry")"
