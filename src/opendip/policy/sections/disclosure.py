"""Public disclosure (信息公开): what the agency discloses, without login, for each published
settlement run (issue 22 item 5; Lhasa published settlement, QC evaluation and surplus/deficit
data more than 50 times).

Only runs the agency has published (status 已公示) are ever listed or downloadable; this
section chooses which of their documents are public.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from opendip.policy.sections.base import Section

DisclosedDocument = Literal["settlement", "qc", "surplus_deficit"]

#: Chinese names of the disclosed documents (page headings, download names).
DOCUMENT_LABELS: dict[str, str] = {
    "settlement": "结算公示表",
    "qc": "结算清单质控评价",
    "surplus_deficit": "医疗机构结余超支情况",
}


class DisclosurePolicy(Section):
    #: The public page 信息公开 (/public, no login) is open; false: the page and its
    #: downloads answer 404 (the agency discloses elsewhere).
    public_page: bool = True
    #: Documents disclosed for each published run: settlement = the run's 结算公示表 (PDF and
    #: Excel); qc = QC evaluation by hospital (cases checked, passed, pass rate); and
    #: surplus_deficit = each hospital's DIP vs fee-for-service result of an annual clearing
    #: (结余/超支 and the amounts). Unlisted documents are neither shown nor downloadable.
    contents: list[DisclosedDocument] = Field(
        default=["settlement", "qc", "surplus_deficit"], max_length=3
    )
