"""One FastAPI router per resource; each calls services, never another route."""
