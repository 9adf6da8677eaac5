"""The HTML report: one self-contained page, charts inline, user input inert."""

from __future__ import annotations

from html.parser import HTMLParser

from modelhub.monitoring.html_report import render
from tests.unit.monitoring.figures import sample_report

HOSTILE = "<script>alert(1)</script>"


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend(name for name, _ in attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def test_the_page_holds_every_section_and_its_charts() -> None:
    report = sample_report()
    page = parse(render(report))
    text = " ".join(page.text)
    for heading in (
        "Health",
        "Performance",
        "Over the window",
        "Degradation",
        "Drift of version 3",
        "Accuracy from feedback",
        "Cost",
        "Deployments",
        "Alerts",
        "Recommendations",
        "Not in this report",
    ):
        assert heading in text
    assert f"{report.health.score}/100" in text
    assert page.tags.count("svg") == 4  # latency, throughput, error rate, accuracy
    assert page.tags.count("polyline") >= 5  # p99 has a gap: two segments
    assert "modelhub deployments scale intents" in text


def test_the_page_loads_nothing_and_runs_nothing() -> None:
    html = render(sample_report())
    page = parse(html)
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(page.tags)
    assert not {"src", "href"} & set(page.attributes)
    assert not [name for name in page.attributes if name.startswith("on")]
    for needle in ("http:", "https:", "url(", "@import", "javascript:"):
        assert needle not in html.lower()


def test_a_script_in_a_name_or_a_message_is_shown_as_text_never_run() -> None:
    html = render(sample_report(model=HOSTILE, message=HOSTILE))
    page = parse(html)
    assert "script" not in page.tags
    assert "<script" not in html.lower()
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5  # title, h1, alert, drift ...
    assert any(HOSTILE in chunk for chunk in page.text)


def test_an_empty_report_still_renders() -> None:
    report = sample_report().model_copy(
        update={
            "performance": None,
            "drift": None,
            "accuracy": None,
            "cost": None,
            "alerts": [],
            "degradation": [],
            "recommendations": [],
            "trends": [],
        }
    )
    text = " ".join(parse(render(report)).text)
    assert "none: nothing to act on" in text and "Over the window" not in text
