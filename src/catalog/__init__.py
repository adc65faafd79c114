"""The catalog of runs: the SQLite run index (index.py), its queries (query.py), run references
(refs.py) and garbage collection (gc.py). Above compare (it reads folders as compare does),
below the runner (every run adds its row); `python -m src.runs` is its command line."""
