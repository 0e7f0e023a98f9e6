"""The dashboard's follow-up panels in a real browser (headless Chromium), against a gateway whose
read model followed real tasks-service events: plan progress as "done / total", the directives slow
to implement, petitions per agency and kind; the page shows what GetFollowUpKpis says, in
Vietnamese by default and in English on request. A screenshot lands in var/ for a human look."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from citydata.v1 import tasks_pb2 as pb

from kit.config import var_dir
from tests.e2e.gateway.test_gateway_dashboard_page import chromium
from tests.integration.gateway.follow_up_harness import (
    PETITIONS,
    START,
    FollowUpPlatform,
    auth,
    running_follow_up_platform,
)
from tests.integration.gateway.readmodel_harness import wait_until

SCREENSHOT = var_dir() / "gateway-dashboard-follow-up.png"


class FollowUpPanels(HTMLParser):
    """What the follow-up panels show: plan rows {(directive, agency): {kpi: text}}, petition rows
    {(agency, kind): {kpi: text}}, the slow list [(directive, text)] and the section's title."""

    def __init__(self) -> None:
        super().__init__()
        self.plans: dict[tuple[str, str], dict[str, str]] = {}
        self.petitions: dict[tuple[str, str], dict[str, str]] = {}
        self.slow: list[tuple[str, str]] = []
        self.title = ""
        self._table = ""
        self._row: tuple[str, str] | None = None
        self._kpi: str | None = None
        self._slow_item: str | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "table":
            self._table = a.get("id", "")
        elif tag == "tr" and self._table == "plans" and "data-directive" in a:
            self._row = (a["data-directive"], a["data-agency"])
        elif tag == "tr" and self._table == "petitions" and "data-kind" in a:
            self._row = (a["data-agency"], a["data-kind"])
        elif tag == "td" and self._row is not None and a.get("data-kpi"):
            self._kpi = a["data-kpi"]
        elif tag == "li" and "data-directive" in a:
            self._slow_item = a["data-directive"]
            self.slow.append((self._slow_item, ""))
        elif tag == "h2" and a.get("id") == "follow-up-title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._kpi = None
        elif tag == "tr":
            self._row = None
        elif tag == "table":
            self._table = ""
        elif tag == "li":
            self._slow_item = None
        elif tag == "h2":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._row is not None and self._kpi is not None:
            rows = self.plans if self._table == "plans" else self.petitions
            rows.setdefault(self._row, {})[self._kpi] = data.strip()
        if self._slow_item is not None:
            directive, text = self.slow[-1]
            self.slow[-1] = (directive, text + data)
        if self._in_title:
            self.title += data.strip()


@dataclass(frozen=True)
class Scenario:
    plan_id: str
    directive_id: str


@pytest.fixture(scope="module")
def platform(infra: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[FollowUpPlatform]:
    with running_follow_up_platform(infra, tmp_path_factory.mktemp("follow-up-dashboard"), START) as running:
        yield running


def issue(platform: FollowUpPlatform, request: pb.IssueDirectiveRequest) -> pb.IssueDirectiveResponse:
    request.idempotency_key = str(uuid.uuid4())
    return platform.stub.IssueDirective(request, metadata=auth("tok-ubnd"), timeout=10)


def press_petition(platform: FollowUpPlatform, kind: int, agency: str) -> pb.Petition:
    petition = platform.stub.ReceivePetition(
        pb.ReceivePetitionRequest(
            kind=kind,  # type: ignore[arg-type]
            sender=pb.PetitionSender(kind=pb.PETITION_SENDER_KIND_PRESS, name="Báo Tuổi Trẻ"),
            subject="Phản ánh của báo chí",
            receiving_agency=agency,
        ),
        metadata=auth("tok-portal", PETITIONS),
        timeout=10,
    ).petition
    return platform.stub.AcceptPetition(
        pb.AcceptPetitionRequest(petition_id=petition.petition_id), metadata=auth("tok-sxd", PETITIONS), timeout=10
    ).petition


@pytest.fixture(scope="module")
def scenario(platform: FollowUpPlatform) -> Scenario:
    """A plan of three tasks (one done on time); a directive whose SXD task misses its deadline; a
    complaint answered on time and a feedback left overdue at SXD."""
    plan = issue(
        platform,
        pb.IssueDirectiveRequest(
            kind=pb.DIRECTIVE_KIND_PLAN,
            issued_on="2026-01-05",
            issuer_agency="UBND-TP",
            summary="Cải cách hành chính",
            plan_year=2026,
            tasks=[
                pb.NewTask(title="Số hóa", lead_agency="SXD", deadline=pb.TaskDeadline(due_date="2026-06-30")),
                pb.NewTask(title="Rà soát", lead_agency="STP", deadline=pb.TaskDeadline(due_date="2026-06-30")),
                pb.NewTask(title="Quy trình", lead_agency="STP", deadline=pb.TaskDeadline(due_date="2026-06-30")),
            ],
        ),
    )
    stp_task = plan.tasks[1].task_id
    platform.stub.ReportTaskProgress(
        pb.ReportTaskProgressRequest(task_id=stp_task, reported_by="STP", percent=100, text="Xong", completed=True),
        metadata=auth("tok-stp"),
        timeout=10,
    )
    platform.stub.DecideTaskCompletion(
        pb.DecideTaskCompletionRequest(task_id=stp_task, accept=True), metadata=auth("tok-ubnd"), timeout=10
    )
    directive = issue(
        platform,
        pb.IssueDirectiveRequest(
            kind=pb.DIRECTIVE_KIND_DIRECTIVE,
            number="15/CT-UBND",
            issued_on="2026-02-27",
            issuer_agency="UBND-TP",
            summary="Chấn chỉnh kỷ luật hành chính",
            tasks=[pb.NewTask(title="Báo cáo", lead_agency="SXD", deadline=pb.TaskDeadline(working_days=3))],
        ),
    )
    complaint = press_petition(platform, pb.PETITION_KIND_COMPLAINT, "SXD")
    feedback = press_petition(platform, pb.PETITION_KIND_FEEDBACK, "SXD")
    platform.stub.AnswerPetition(
        pb.AnswerPetitionRequest(
            petition_id=complaint.petition_id, summary="Đã trả lời", document=pb.AttachmentRef(uri="eoffice://sxd/1")
        ),
        metadata=auth("tok-sxd", PETITIONS),
        timeout=10,
    )
    # past the directive's task deadline and the feedback's: the watcher marks both overdue
    latest = max(directive.tasks[0].due_at.ToDatetime(tzinfo=UTC), feedback.due_at.ToDatetime(tzinfo=UTC))
    platform.tasks.clock.set(latest + timedelta(seconds=1))

    def settled() -> bool:
        kpis = platform.follow_up()
        overdue_petitions = sum(row.overdue for row in kpis.petitions)
        return len(kpis.slow_directives) == 1 and overdue_petitions == 1 and len(kpis.directives) == 2

    wait_until(settled, what="the read model to show the scenario")
    return Scenario(plan.directive.directive_id, directive.directive.directive_id)


def page_url(platform: FollowUpPlatform, **query: str) -> str:
    params = "&".join(f"{k}={v}" for k, v in query.items())
    return f"http://127.0.0.1:{platform.gateway.http_port}/?{params}#token=tok-dashboard"


def shown(row: pb.TaskKpi) -> dict[str, str]:
    return {
        "progress": f"{row.done}/{row.total}",
        "donePercent": f"{row.done_percent:.2f}",
        "doneOnTime": str(row.done_on_time),
        "overdue": str(row.overdue),
        "extended": str(row.extended),
    }


def test_the_follow_up_panels_show_the_read_models_kpis(
    platform: FollowUpPlatform, scenario: Scenario, tmp_path: Path
) -> None:
    html = chromium("--dump-dom", page_url(platform), profile=tmp_path / "profile")
    expected = platform.follow_up()
    panels = FollowUpPanels()
    panels.feed(html)

    assert 'data-follow-up="true"' in html, html[-2000:]
    assert panels.title == "Theo dõi thực hiện nhiệm vụ và đơn thư"
    assert panels.plans == {
        **{(row.directive_id, ""): shown(row) for row in expected.directives},
        **{(row.directive_id, row.agency): shown(row) for row in expected.agencies},
    }
    # what an operator reads: the plan is 1 of 3 done (33.33 %), the directive 0 of 1 and overdue
    assert panels.plans[(scenario.plan_id, "")]["progress"] == "1/3"
    assert panels.plans[(scenario.plan_id, "")]["donePercent"] == "33.33"
    assert panels.plans[(scenario.directive_id, "SXD")] == {
        "progress": "0/1",
        "donePercent": "0.00",
        "doneOnTime": "0",
        "overdue": "1",
        "extended": "0",
    }
    [(slow_id, slow_text)] = panels.slow
    assert slow_id == scenario.directive_id
    assert "15/CT-UBND" in slow_text and "1 nhiệm vụ quá hạn" in slow_text and "SXD" in slow_text
    assert panels.petitions == {
        ("SXD", "PETITION_KIND_FEEDBACK"): {
            "received": "1",
            "answered": "0",
            "answeredOnTime": "0",
            "overdue": "1",
            "open": "1",
        },
        ("SXD", "PETITION_KIND_COMPLAINT"): {
            "received": "1",
            "answered": "1",
            "answeredOnTime": "1",
            "overdue": "0",
            "open": "0",
        },
    }
    assert "Khiếu nại" in html and "Phản ánh, kiến nghị" in html


def test_the_follow_up_panels_speak_english_and_follow_the_agency_filter(
    platform: FollowUpPlatform, scenario: Scenario, tmp_path: Path
) -> None:
    url = page_url(platform, lang="en", agency="STP")
    html = chromium("--dump-dom", url, profile=tmp_path / "profile")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    chromium(
        f"--screenshot={SCREENSHOT}", "--window-size=1280,1600", page_url(platform, lang="en"), profile=tmp_path / "p2"
    )
    panels = FollowUpPanels()
    panels.feed(html)

    assert panels.title == "Directive follow-up and petitions"
    # only STP's tasks: the plan's two, both on time or open; STP handles no petition, leads no late task
    assert {key for key in panels.plans} == {(scenario.plan_id, ""), (scenario.plan_id, "STP")}
    assert panels.plans[(scenario.plan_id, "STP")]["progress"] == "1/2"
    assert panels.slow == [] and "No directive is behind" in html
    assert panels.petitions == {}
    assert SCREENSHOT.stat().st_size > 10_000


def test_an_agency_without_the_right_sees_an_error_not_figures(
    platform: FollowUpPlatform, scenario: Scenario, tmp_path: Path
) -> None:
    """The follow-up panels come from GetFollowUpKpis: a token of an agency without that right
    shows the refusal in the panel (the dossier part is refused on its own)."""
    url = f"http://127.0.0.1:{platform.gateway.http_port}/#token=tok-sxd"
    html = chromium("--dump-dom", url, profile=tmp_path / "profile")
    panels = FollowUpPanels()
    panels.feed(html)
    assert 'data-follow-up="error"' in html and "PERMISSION_DENIED" in html
    assert panels.plans == {} and panels.petitions == {}
