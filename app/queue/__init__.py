"""The job queue: durable rows (`store`), an executor interface (`base`) and its implementations."""
from app.queue.base import Executor
from app.queue.local import LocalExecutor

__all__ = ["Executor", "LocalExecutor"]
