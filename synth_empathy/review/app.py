"""The review web app: a Starlette app over one output folder, for 127.0.0.1 only.

The page (static/index.html, review.js, review.css; no CDN, works offline) asks three JSON routes:
`GET /api/items` (the review order, with filters' facets and progress), `GET /api/items/{id}` (one
dialogue with its labels) and `POST /api/labels` (append a label). The server fills in the reviewer,
the time and each edited turn's original text, so a label always says what it replaced.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pydantic
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from synth_empathy.errors import UserError
from synth_empathy.filters.calibration import latest_labels
from synth_empathy.review.items import ReviewItem, keep_thresholds, load_items
from synth_empathy.review.labels import LabelStore, now
from synth_empathy.review.order import review_order
from synth_empathy.schema import FAILURE_MECHANISMS, Label

STATIC = Path(__file__).with_name("static")


class ReviewSession:
    """The folder's items in review order and its labels, shared by the request handlers."""

    def __init__(self, corpus_dir: Path, reviewer: str, seed: int = 0) -> None:
        self.corpus_dir = Path(corpus_dir)
        self.reviewer = reviewer
        self.thresholds = keep_thresholds(self.corpus_dir)
        self.items = review_order(load_items(self.corpus_dir), self.thresholds, seed)
        self.by_id: dict[str, ReviewItem] = {item.id: item for item in self.items}
        self.store = LabelStore(self.corpus_dir)
        self.labels = latest_labels(self.store.read())
        self._lock = threading.Lock()

    def labels_of(self, dialogue_id: str) -> list[Label]:
        return [label for label in self.labels if label.dialogue_id == dialogue_id]

    def add(self, label: Label) -> None:
        with self._lock:
            self.store.append(label)
            self.labels = latest_labels([*self.labels, label])

    def summary(self, item: ReviewItem) -> dict[str, Any]:
        d, s = item.dialogue, item.dialogue.scores
        reviewers = sorted({label.reviewer for label in self.labels_of(item.id)})
        return {"id": item.id, "emotion": d.seed.emotion, "problem_type": d.seed.problem_type, "stage": item.stage,
                "why": item.why, "persona": d.seed.persona.name,
                "sensibility": s.sensibility if s else None, "rationality": s.rationality if s else None,
                "reviewers": reviewers, "mine": self.reviewer in reviewers}

    def progress(self) -> dict[str, int]:
        mine = {label.dialogue_id for label in self.labels if label.reviewer == self.reviewer}
        return {"total": len(self.items), "mine": len(mine & set(self.by_id)),
                "labels": len(self.labels)}


def _label_from(body: Any, session: ReviewSession) -> Label:
    """A Label from the page's JSON; ValueError with one sentence for anything wrong."""
    if not isinstance(body, dict):
        raise ValueError("the label must be a JSON object")
    item = session.by_id.get(str(body.get("dialogue_id")))
    if item is None:
        raise ValueError(f"no dialogue {body.get('dialogue_id')!r} in this folder")
    turns = item.dialogue.turns
    edits = []
    for edit in body.get("edits") or []:
        index = edit.get("index") if isinstance(edit, dict) else None
        if not isinstance(index, int) or not 0 <= index < len(turns) or turns[index].role != "supporter":
            raise ValueError(f"edit index {index!r} is not a supporter turn of {item.id}")
        text = str(edit.get("text", "")).strip()
        if text and text != turns[index].text.strip():
            edits.append({"index": index, "original": turns[index].text, "text": text})
    try:
        return Label.model_validate({
            "dialogue_id": item.id, "reviewer": session.reviewer, "time": now(),
            "ratings": body.get("ratings") or {}, "keep": body.get("keep"), "edits": edits,
            "note": str(body.get("note") or "").strip()})
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ValueError(f"{where}: {err['msg']}") from exc


def create_app(corpus_dir: Path, reviewer: str, seed: int = 0) -> Starlette:
    """The app for `synth-empathy review DIR`; reading the folder fails here (UserError), not on a request."""
    session = ReviewSession(corpus_dir, reviewer, seed)

    async def index(request: Request) -> FileResponse:
        return FileResponse(STATIC / "index.html")

    async def items(request: Request) -> JSONResponse:
        facets = {key: dict(Counter(getattr(it.dialogue.seed, key) for it in session.items).most_common())
                  for key in ("emotion", "problem_type")}
        facets["stage"] = dict(Counter(it.stage for it in session.items).most_common())
        return JSONResponse({"corpus": str(session.corpus_dir), "reviewer": session.reviewer,
                             "thresholds": session.thresholds, "failures": list(FAILURE_MECHANISMS),
                             "facets": facets, "progress": session.progress(),
                             "items": [session.summary(it) for it in session.items]})

    async def item(request: Request) -> JSONResponse:
        found = session.by_id.get(request.path_params["dialogue_id"])
        if found is None:
            return JSONResponse({"error": "no such dialogue in this folder"}, status_code=404)
        labels = session.labels_of(found.id)
        mine = next((label for label in reversed(labels) if label.reviewer == session.reviewer), None)
        return JSONResponse({**session.summary(found), "reasons": found.reasons,
                             "dialogue": found.dialogue.model_dump(mode="json"),
                             "labels": [label.model_dump(mode="json") for label in labels],
                             "my_label": mine.model_dump(mode="json") if mine else None})

    async def add_label(request: Request) -> JSONResponse:
        try:
            label = _label_from(await request.json(), session)
        except ValueError as exc:  # a malformed body (JSONDecodeError) is a ValueError too
            return JSONResponse({"error": str(exc)}, status_code=400)
        session.add(label)
        return JSONResponse({"label": label.model_dump(mode="json"), "progress": session.progress(),
                             "item": session.summary(session.by_id[label.dialogue_id])})

    return Starlette(routes=[
        Route("/", index),
        Route("/api/items", items),
        Route("/api/items/{dialogue_id:str}", item),
        Route("/api/labels", add_label, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ])


def serve_app(app: Starlette, port: int) -> None:
    """Serve on 127.0.0.1:port until interrupted; nothing listens on another interface."""
    import uvicorn

    try:
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    except SystemExit as exc:  # uvicorn exits when it cannot bind (the port is taken)
        raise UserError(f"could not listen on 127.0.0.1:{port} (is the port in use? pick another with --port)") from exc
