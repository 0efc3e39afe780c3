"""The power table `llm-mia plan` prints: the packaged measurement, read for the nearest design."""

from __future__ import annotations

import json

from llm_mia.stats.work_test_power import TABLE, nearest_power, power_sentence


def test_the_packaged_table_is_read_for_the_nearest_control_count_and_every_epoch():
    table = json.loads(TABLE.read_text(encoding="utf-8"))
    assert "--parts power" in table["command"]
    measured = {(r["controls"], r["statistic"], r["epoch"]): (r["hits"], r["reps"]) for r in table["rows"]}
    for controls, nearest in ((5, 19), (30, 19), (40, 49), (80, 99), (500, 99)):
        for statistic in ("scores", "reference-gap"):
            summary = nearest_power(controls, statistic)
            assert summary["controls"] == nearest and summary["statistic"] == statistic
            epochs = sorted(e for (m, s, e) in measured if m == nearest and s == statistic)
            assert [r["epoch"] for r in summary["found"]] == epochs
            for row in summary["found"]:
                assert (row["found"], row["draws"]) == measured[(nearest, statistic, row["epoch"])]
    sentence = power_sentence(nearest_power(30, "scores"))
    assert "one work against 19 control works" in sentence and "order of magnitude" in sentence
