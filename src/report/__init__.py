"""`python -m src.report RUN [RUN ...] -o report.html`: one self-contained HTML page per run or comparison."""
