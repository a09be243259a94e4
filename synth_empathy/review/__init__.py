"""The local review app (`synth-empathy review DIR`) and the human labels it writes to DIR/labels.jsonl.

`labels` (the store) and `order` (what to review first) need no web framework; `app` builds the Starlette app.
"""
