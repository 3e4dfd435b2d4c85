"""The HTTP API: `app.create_app`, shared dependencies, schemas and one router per resource."""
