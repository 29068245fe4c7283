"""Gate test subjects: small pyfunc models logged "from code" by tests/gate.

Each subject is configured through `model_config`:

- kind "rules": a score from the data set's documented failure rules (heat
  dissipation, power, overstrain), blurred by seeded noise of size `noise`;
  `degrade_type` replaces the score of one product type by noise, to break a
  slice on purpose.
- kind "constant": the same probability for every reading ("never fails").
- kind "linear": a logistic model whose weights were fitted by the test
  (e.g. on shuffled labels); `mean`/`scale` standardise the inputs.

The file is self-contained (numpy, pandas, mlflow) because MLflow runs it
again in whichever process loads the model.
"""

from typing import Any

import mlflow
import numpy as np
import pandas as pd

_NUMERIC = [
    "Air temperature [K]",
    "Process temperature [K]",
    "Rotational speed [rpm]",
    "Torque [Nm]",
    "Tool wear [min]",
]
_LIMITS = {"L": 11_000.0, "M": 12_000.0, "H": 13_000.0}


def rule_margin(frame: pd.DataFrame) -> np.ndarray:
    """How far each reading is into a failure rule (> 0: inside one)."""
    air, process, speed, torque, wear = (
        frame[column].to_numpy(dtype=float) for column in _NUMERIC
    )
    power = torque * speed * 2 * np.pi / 60
    limits = frame["Type"].map(_LIMITS).to_numpy(dtype=float)
    heat = np.minimum((8.6 - (process - air)) / 0.5, (1380 - speed) / 30)
    power_margin = np.maximum((3500 - power) / 150, (power - 9000) / 150)
    strain = (wear * torque - limits) / 300
    return np.maximum.reduce([heat, power_margin, strain])


class SubjectModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        self.config = dict(context.model_config or {})
        self.threshold = float(self.config.get("threshold", 0.5))

    def _logit(self, frame: pd.DataFrame) -> np.ndarray:
        kind = self.config["kind"]
        rows = len(frame)
        rng = np.random.default_rng(int(self.config.get("seed", 0)))
        if kind == "constant":
            probability = float(self.config["probability"])
            return np.full(rows, np.log(probability / (1 - probability)))
        if kind == "linear":
            values = frame[_NUMERIC].to_numpy(dtype=float)
            scaled = (values - np.array(self.config["mean"])) / np.array(
                self.config["scale"]
            )
            return scaled @ np.array(self.config["coef"]) + self.config["intercept"]
        logit = 4.0 * rule_margin(frame) - 1.0
        logit = logit + float(self.config.get("noise", 0.0)) * rng.standard_normal(rows)
        broken = self.config.get("degrade_type")
        if broken:
            mask = frame["Type"].to_numpy() == broken
            logit[mask] = rng.normal(-2.5, 1.0, int(mask.sum()))
        return logit

    def predict(
        self,
        context: Any,
        model_input: pd.DataFrame,
        params: dict[str, str] | None = None,
    ) -> pd.DataFrame:
        probability = 1.0 / (1.0 + np.exp(-self._logit(model_input)))
        return pd.DataFrame(
            {
                "failure_probability": probability,
                "failure": probability >= self.threshold,
            }
        )


mlflow.models.set_model(SubjectModel())
