

def test_log_axes_label_every_tick_in_full():
    from compresslab.plots.common import log_axis, short_number

    axis = log_axis([19_678, 23_309, 117_992])
    assert axis["type"] == "log" and axis["ticktext"] == ["10k", "20k", "50k", "100k", "200k"]
    wide = log_axis([1, 44_000])                       # more than two decades: powers of ten only
    assert wide["ticktext"] == ["1", "10", "100", "1k", "10k", "100k"]
    assert log_axis([5_000, 5_000])["ticktext"] == ["5k", "10k"]   # never a single label
    assert log_axis([]) == {"type": "log"} and short_number(1_500_000) == "1.5M"
