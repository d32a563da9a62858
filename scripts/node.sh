# Sourced by the scripts of this checkout: which Node runs mfc.
# mfc_node ROOT prints the path of a Node.js >= 20: the one set-up installed into ROOT/.tools/bin
# (when the node on PATH was too old), else the node on PATH if it is new enough. Prints nothing
# and returns 1 when there is none.

mfc_node_major() {
  # Not -p: it prints through util.inspect, coloured when FORCE_COLOR is set (node --test sets it
  # for its children when its own output is a terminal), and "[" cannot compare that.
  "$1" -e 'process.stdout.write(process.versions.node.split(".")[0])' 2>/dev/null || echo 0
}

mfc_node() {
  local root=$1 cand
  for cand in "$root/.tools/bin/node" "$(command -v node 2>/dev/null || true)"; do
    [ -n "$cand" ] && [ -x "$cand" ] || continue
    if [ "$(mfc_node_major "$cand")" -ge 20 ]; then
      printf '%s\n' "$cand"
      return 0
    fi
  done
  return 1
}
