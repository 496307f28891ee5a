"""Scoring: how good is one response? Pure Python over text (plus `budget/` for token ids).

response.py   one generation split into thinking / answer / box (from token ids)
verifiers.py  accuracy per domain; DOMAINS, the one list of known domains
rewards.py    format gate, style penalties, the domain → reward registry
judge.py      optional LLM-judge blend over HTTP
score.py      score_parsed / score_response: the same score in training and over HTTP
stats.py      Wilson and bootstrap intervals, shared by `thinkcap eval` and every bench
"""
