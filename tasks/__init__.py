"""Tasks: the record format and the data sets written in it. No torch: `thinkcap eval` loads
records without paying for it.

records.py       JSONL records (+ media paths) and their validation
synthetic.py     the synthetic image tasks (counting, numeric, exact)
running_sums.py  the text task where thinking pays (domain `running_sum`)
fill_in.py       fill-in-the-blank records from plain text
convert.py       CSV/JSONL of another layout → records
"""
