"""The AI4I 2020 data set shipped with CloudGuard (see ATTRIBUTION.md)."""

from pathlib import Path
from typing import Final

DATASET_PATH: Final = Path(__file__).with_name("ai4i2020.csv")
DATASET_SHA256: Final = "53d0e7b71f760829a91ec3a9df54c0f044836074a227fe5be5a06bedd0cb1125"
