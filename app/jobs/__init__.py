"""Jobs: their settings, durable rows (`store`), the business rules (`service`), the worker and executors."""
