"""PlainAdapter: prose fields are written freely, structured fields are forced by a JSON schema.

DSPy's ChatAdapter wraps every field in `[[ ## name ## ]]` markers. Capable models follow
that; a 135M model echoes the markers instead of writing a reply. So:

* a signature whose only output is one `str` field gets a plain-text answer: the whole
  completion is that field;
* any other signature gets `response_format` with the JSON schema of its output fields,
  which the local engine turns into a grammar and OpenAI-compatible servers enforce (an endpoint
  that takes no schema gets it in the prompt instead: see `structured.py`).

A structured answer is parsed and validated with pydantic; one that does not fit is shown to the
model with the error and the schema, once, and the second answer stands or fails.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from typing import Annotated, Any

import json_repair
import pydantic
from dspy.adapters.base import Adapter
from dspy.adapters.utils import format_field_value
from dspy.clients._deprecation import adapter_message_call
from dspy.signatures.signature import Signature
from dspy.utils.exceptions import AdapterParseError

# Inputs that grow from call to call within a dialogue. They always start on their own line, so a one-line
# conversation renders as the first line of its longer next version and the two prompts share a prefix.
GROWING_FIELDS = frozenset({"conversation"})

_LABEL = re.compile(
    r"^\s*(?:\*\*)?(?:seeker|supporter|listener|friend|you|me|assistant|user|reply|response|message|"
    r"revised reply|answer)(?:\*\*)?\s*:\s*",
    re.IGNORECASE,
)


def is_prose(signature: type[Signature]) -> bool:
    outputs = list(signature.output_fields.values())
    return len(outputs) == 1 and outputs[0].annotation is str


def _description(field) -> str | None:
    desc = (field.json_schema_extra or {}).get("desc")
    return None if not desc or desc.startswith("${") else desc


@functools.lru_cache(maxsize=512)
def output_model(signature: type[Signature]) -> type[pydantic.BaseModel]:
    # Cached per signature class (an optimized program's new instructions make a new class): building a
    # pydantic model was a third of the pipeline's CPU time per call.
    # Annotated keeps the field's constraints (ge/le, lengths) so they reach the JSON schema.
    fields = {
        name: (
            Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation,
            pydantic.Field(description=_description(field)),
        )
        for name, field in signature.output_fields.items()
    }
    return pydantic.create_model(signature.__name__ + "Output", **fields)


def output_schema(signature: type[Signature]) -> dict[str, Any]:
    return copy.deepcopy(_output_schema(signature))  # a copy: callers may add to it


@functools.lru_cache(maxsize=512)
def _output_schema(signature: type[Signature]) -> dict[str, Any]:
    schema = output_model(signature).model_json_schema()
    schema["additionalProperties"] = False
    return schema


def clean_prose(text: str) -> str:
    """Strip what small models wrap a reply in: a leading speaker label, surrounding quotes."""
    text = text.strip()
    text = _LABEL.sub("", text, count=1)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


def _reason(error: AdapterParseError) -> str:
    cause = error.__cause__
    if isinstance(cause, pydantic.ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in cause.errors())
    return str(cause) if cause else "it is empty"


class PlainAdapter(Adapter):
    """Formats inputs as labelled plain text and parses prose or schema-forced JSON."""

    def __call__(self, lm, lm_kwargs, signature, demos, inputs):
        lm_kwargs = self._with_format(lm_kwargs, signature)
        try:
            return super().__call__(lm, lm_kwargs, signature, demos, inputs)
        except AdapterParseError as exc:
            if is_prose(signature):
                raise
            messages = self._corrective_messages(signature, demos, inputs, exc)
            with adapter_message_call(lm, messages):
                outputs = lm(messages=messages, **lm_kwargs)
            return self._call_postprocess(signature, signature, outputs, lm, lm_kwargs)

    async def acall(self, lm, lm_kwargs, signature, demos, inputs):
        lm_kwargs = self._with_format(lm_kwargs, signature)
        try:
            return await super().acall(lm, lm_kwargs, signature, demos, inputs)
        except AdapterParseError as exc:
            if is_prose(signature):
                raise
            messages = self._corrective_messages(signature, demos, inputs, exc)
            with adapter_message_call(lm, messages):
                outputs = await lm.acall(messages=messages, **lm_kwargs)
            return self._call_postprocess(signature, signature, outputs, lm, lm_kwargs)

    def _corrective_messages(self, signature, demos, inputs, error: AdapterParseError) -> list[dict[str, str]]:
        """The first request, the answer that did not fit, and what was wrong with it."""
        correction = (f"That answer does not fit: {_reason(error)}. Answer again with only a JSON object, no other "
                      f"text, that validates against this JSON schema:\n"
                      f"{json.dumps(output_schema(signature), ensure_ascii=False)}")
        return [*self.format(signature, demos, inputs),
                {"role": "assistant", "content": error.lm_response or ""},
                {"role": "user", "content": correction}]

    @staticmethod
    def request_kwargs(signature: type[Signature]) -> dict[str, Any]:
        """What a call for `signature` adds to the LM's own settings: a stop (prose) or the response_format."""
        return PlainAdapter._with_format({}, signature)

    @staticmethod
    def _with_format(lm_kwargs: dict[str, Any], signature: type[Signature]) -> dict[str, Any]:
        if is_prose(signature):
            # A turn is one paragraph; stopping at the line break keeps a small model from rambling on.
            return {"stop": ["\n"], **lm_kwargs}
        schema = {"name": signature.__name__, "schema": output_schema(signature)}
        return {**lm_kwargs, "response_format": {"type": "json_schema", "json_schema": schema}}

    def format_field_description(self, signature: type[Signature]) -> str:
        return ""

    def format_field_structure(self, signature: type[Signature]) -> str:
        if is_prose(signature):
            return ""
        names = ", ".join(signature.output_fields)
        return f"Answer with a JSON object with the keys: {names}."

    def format_task_description(self, signature: type[Signature]) -> str:
        return signature.instructions.strip()

    def format_system_message(self, signature: type[Signature]) -> str:
        parts = [self.format_task_description(signature), self.format_field_structure(signature)]
        return "\n\n".join(p for p in parts if p)

    def format_user_message_content(self, signature, inputs, prefix="", suffix="", main_request=False) -> str:
        blocks = [prefix] if prefix else []
        for name, field in signature.input_fields.items():
            if name not in inputs or inputs[name] in (None, ""):
                continue
            label = (field.json_schema_extra or {}).get("prefix") or name.replace("_", " ").capitalize() + ":"
            value = inputs[name]
            # Scalars render as str() does; dspy's formatter builds a pydantic TypeAdapter per value.
            value = str(value) if type(value) in (str, int, float, bool) else format_field_value(field, value)
            block = "\n" in value or name in GROWING_FIELDS
            blocks.append(f"{label.rstrip(':')}:\n{value}" if block else f"{label.rstrip(':')}: {value}")
        if suffix:
            blocks.append(suffix)
        return "\n\n".join(blocks)

    def format_assistant_message_content(self, signature, outputs, missing_field_message=None) -> str:
        if is_prose(signature):
            (name,) = signature.output_fields
            return str(outputs.get(name, missing_field_message or ""))
        data = {name: outputs.get(name) for name in signature.output_fields}
        return json.dumps(data, ensure_ascii=False)

    def parse(self, signature: type[Signature], completion: str) -> dict[str, Any]:
        if is_prose(signature):
            (name,) = signature.output_fields
            text = clean_prose(completion)
            if not text:
                raise AdapterParseError(adapter_name="PlainAdapter", signature=signature, lm_response=completion,
                                        message="The LM returned an empty reply.")
            return {name: text}
        try:
            data = json_repair.loads(completion)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            return output_model(signature).model_validate(data).model_dump()
        except (ValueError, pydantic.ValidationError) as exc:
            raise AdapterParseError(adapter_name="PlainAdapter", signature=signature, lm_response=completion,
                                    message=f"The answer does not match the output schema: {exc}") from exc
