#!/usr/bin/env bash
# System libraries the report renderers need (Debian), installed when missing:
#   - fonts-noto-cjk: Chinese glyphs for charts (matplotlib) and PDFs (WeasyPrint);
#   - libpango-1.0-0, libpangoft2-1.0-0: WeasyPrint's text layout (PDF);
#   - libharfbuzz-subset0 (recommended): WeasyPrint subsets the large CJK fonts with
#     HarfBuzz in well under a second; without it fontTools takes ~10 s per font and PDF.
# The Python packages (matplotlib, weasyprint) come with `pip install -e .`.
#
#   scripts/report-deps.sh      # as root: install what is missing; quiet when all present
set -euo pipefail
# (grep without -q below: an early exit of grep would fail the pipe under pipefail)

missing=()
fc-list : family 2>/dev/null | grep -i "Noto Sans CJK" >/dev/null || missing+=(fonts-noto-cjk)
ldconfig -p | grep "libpango-1.0" >/dev/null || missing+=(libpango-1.0-0)
ldconfig -p | grep "libpangoft2-1.0" >/dev/null || missing+=(libpangoft2-1.0-0)
recommended=()
ldconfig -p | grep "libharfbuzz-subset" >/dev/null || recommended+=(libharfbuzz-subset0)

if ((${#missing[@]} == 0 && ${#recommended[@]} == 0)); then
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  all="${missing[*]} ${recommended[*]}"
  all="${all# }"
  all="${all% }"
  if ((${#missing[@]})); then
    echo "报告渲染缺少系统依赖：${missing[*]}。请以 root 身份运行 scripts/report-deps.sh，或执行 apt-get install -y ${all}" >&2
    echo "Report rendering needs: ${missing[*]}. Run scripts/report-deps.sh as root, or: apt-get install -y ${all}" >&2
    exit 1
  fi
  echo "建议安装 ${all}（PDF 字体子集化更快）/ recommended for fast PDF font subsetting: apt-get install -y ${all}" >&2
  exit 0
fi

packages=("${missing[@]}" "${recommended[@]}")
echo "安装 / installing: ${packages[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
if ((${#missing[@]})) && [[ " ${missing[*]} " == *" fonts-noto-cjk "* ]]; then
  fc-cache -f >/dev/null 2>&1 || true
fi
