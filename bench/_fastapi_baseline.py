"""The common pattern the serving benchmark compares against: FastAPI, one
pandas DataFrame and one pyfunc `predict` per request. Not part of the product.

Run by bench/serving.py as `uvicorn _fastapi_baseline:app` with
MLFLOW_TRACKING_URI and BASELINE_MODEL_URI in the environment.
"""

import os
from typing import Any

import mlflow
import pandas as pd
from fastapi import FastAPI

model = mlflow.pyfunc.load_model(os.environ["BASELINE_MODEL_URI"])
app = FastAPI()


@app.get("/ping")
def ping() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/predict")
def predict(reading: dict[str, Any]) -> dict[str, Any]:
    frame = pd.DataFrame([reading])
    result = model.predict(frame)
    return {"predictions": result.to_dict(orient="records")}
