"""Export run folders to MLflow (`python -m src.export_mlflow`, the [mlflow] extra; docs/mlflow.md)."""
