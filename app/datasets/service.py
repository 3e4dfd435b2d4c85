"""Reading datasets: what `/v1/datasets/{id}` and the dataset page both call."""
from __future__ import annotations

from sqlalchemy.orm import Session

from app.core.errors import NotFound
from app.core.models import Dataset


def get_dataset(session: Session, dataset_id: str) -> Dataset:
    """The dataset, or NotFound (404)."""
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFound("dataset", dataset_id)
    return dataset
