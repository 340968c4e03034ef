"""Evaluation: LTU-AS's tasks on clips no training step saw, scored by stated rules, written to docs/RESULTS.md.

    python -m engine.eval --limit 10                 # every task, every mode
    python -m engine.eval --tasks asr,sound --modes soft,cascade --json

Stages, one module each: sets.py (the evaluation clips and where they come from) -> run.py (listen once per
clip, ask each task's question in each mode, through an answer cache; measure cost) -> tasks.py (the
questions and the scoring rules; text.py: normaliser and WER; match.py: answer -> class by sentence
embedding) -> report.py (RESULTS.md, plots, JSON).
"""
