"""LiveFigure, the panels' chart widget: what a change sends to the browser (tests/e2e draw it for real)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest

from compresslab.widgets._base import figure_widget


@pytest.fixture
def sent():
    """A chart and the list of state messages its comm sends to the browser."""
    chart = figure_widget(go.Figure(go.Scatter(x=[1, 2, 3], y=[3.0, 4.0, 5.0]), layout=dict(title="a", height=300)))
    messages = []
    chart.comm.send = lambda *args, **kwargs: messages.append(kwargs["data"]["state"])
    return chart, messages


def test_the_first_state_travels_with_the_widget_and_the_template_apart():
    chart = figure_widget(go.Figure(go.Bar(x=["a"], y=[1]), layout=dict(title="first", height=250)))
    assert chart.fig_data[0]["type"] == "bar" and chart.fig_layout["title"]["text"] == "first"
    assert "template" not in chart.fig_layout and chart.fig_template["layout"]  # plotly's default template
    assert chart.render_count == 1


def test_a_data_change_sends_the_traces_only(sent):
    chart, messages = sent
    chart.data[0].y = np.array([7.0, 8.0, 9.0])
    assert len(messages) == 1 and set(messages[0]) == {"fig_data"}
    y = messages[0]["fig_data"][0]["y"]
    assert y["dtype"] == "f8" and np.frombuffer(__import__("base64").b64decode(y["bdata"])).tolist() == [7, 8, 9]
    assert chart.render_count == 2


def test_a_batch_sends_one_message_and_the_layout_only_when_it_changed(sent):
    chart, messages = sent
    with chart.batch_update():
        chart.data[0].y = [1, 2, 3]
        chart.layout.title.text = "b"
        chart.layout.height = 320
    assert len(messages) == 1 and set(messages[0]) == {"fig_data", "fig_layout"}
    assert messages[0]["fig_layout"]["title"]["text"] == "b" and chart.render_count == 2
    with chart.hold():
        pass
    assert len(messages) == 1  # nothing changed, nothing sent
    chart.layout.title.text = "b"
    assert len(messages) == 1 or set(messages[-1]) <= {"fig_data"}  # same layout: not resent


def test_every_chart_shares_one_plotly_library_widget():
    first = figure_widget(go.Figure(go.Scatter(y=[1])))
    second = figure_widget(go.Figure(go.Scatter(y=[2])))
    assert first._library is second._library
    assert len(first._library.source) > 1_000_000 and "plotly" in first._library.source[:2000].lower()
    assert first._library.version == first._plotly_version


def test_the_browser_module_ships_with_the_package():
    import compresslab.widgets

    source = (Path(compresslab.widgets.__file__).parent / "static" / "chart.js").read_text()
    chart = figure_widget(go.Figure())
    assert chart._esm == source  # anywidget sends this file's text as the chart's module
    assert "Plotly.react" in source and "export default" in source
    assert chart.to_figure().to_dict()["data"] == []


@pytest.mark.usefixtures("english_afterwards")
def test_what_a_chart_says_while_waiting_or_failing_follows_the_language():
    import compresslab as cl

    assert figure_widget(go.Figure())._waiting_text == "drawing chart…"
    cl.set_language("zh")
    chart = figure_widget(go.Figure())
    assert (chart._waiting_text, chart._failed_text) == ("正在绘制图表…", "图表未能绘制：")
