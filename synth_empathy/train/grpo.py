"""The environment in the two shapes TRL's GRPOTrainer (trl 1.16) takes for multi-turn training.

- `environment_factory=` (tool calling): `ToolSupportEnv` has `reset(**row)`, one tool, `reply(message)`, whose
  return value (the seeker's answer) TRL appends as a tool message before generating again, and `get_reward()`,
  which TRL adds as a reward source. It needs a model whose chat template renders tool calls (TRL checks).
- `rollout_func=` (any chat model, e.g. SmolLM2-135M, whose template has no tools): `make_rollout_func` plays each
  episode with the trainer's own model through transformers `generate`; the seeker's turns go into the completion
  with `env_mask` 0, so only the supporter's tokens are trained on, and the episode's return reaches the reward
  functions as the `env_reward` column (`env_reward` below is such a reward function).

Both take the rows of `episode_rows`: the prompt (system message and the seeker's opening) and the episode index,
so every rollout of a GRPO group starts from the same seeker and the same first message. torch, transformers and
trl are the optional extra `[train]`; this module imports them only inside the functions that need them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from synth_empathy.train.env import SupportEnv

ENDED = "(The conversation has ended.)"


def episode_rows(env: SupportEnv, n: int, start: int = 0) -> list[dict[str, Any]]:
    """`n` episodes' starting rows: {prompt: [system, user = the seeker's opening], episode, opening}. The
    openings are written once here (on the generator's LM), then replayed by every rollout."""
    rows = []
    for index in range(start, start + n):
        opening = env.reset(seed=index)
        rows.append({"prompt": env.messages(), "episode": index, "opening": opening})
    return rows


class ToolSupportEnv:
    """For GRPOTrainer(environment_factory=...): the supporter talks to the seeker through the `reply` tool.

    Example:
        >>> trainer = GRPOTrainer(model=..., train_dataset=Dataset.from_list(episode_rows(env, 64)),
        ...                       environment_factory=lambda: ToolSupportEnv(env_factory()))
    """

    def __init__(self, env: SupportEnv) -> None:
        self.env = env

    def reset(self, episode: int | None = None, opening: str | None = None, **row: Any) -> None:
        # The row's prompt already holds the opening, so nothing is appended to it (TRL appends a returned string).
        self.env.reset(seed=episode, opening=opening)
        return None

    def reply(self, message: str) -> str:
        """Say your next message to the person you are supporting; returns what they say back.

        Args:
            message: your reply to them, one to three sentences.

        Returns:
            Their answer, or a note that the conversation has ended.
        """
        if self.env.done:
            return ENDED
        observation, _, done, _ = self.env.step(message)
        if done and not observation:
            return ENDED
        return observation

    def get_reward(self) -> float:
        return self.env.total_reward


def env_reward(completions: list, env_reward: list[float], **kwargs: Any) -> list[float]:
    """A GRPO reward function for `make_rollout_func`: the episode's return the rollout recorded."""
    return list(env_reward)


def make_rollout_func(env: SupportEnv, rows: list[dict[str, Any]], max_new_tokens: int = 48,
                      temperature: float = 1.0) -> Callable[[list, Any], dict[str, list]]:
    """A GRPOTrainer `rollout_func` that plays `env` episodes with the trainer's model (one episode per prompt;
    the prompt is matched to its row by the opening message). Returns prompt_ids, completion_ids (supporter and
    seeker turns), logprobs (0 on the seeker's tokens), env_mask (1 on the supporter's) and env_reward."""
    episodes = {row["opening"]: row["episode"] for row in rows}

    def rollout(prompts: list, trainer: Any) -> dict[str, list]:
        import torch

        tokenizer = trainer.processing_class
        model = trainer.accelerator.unwrap_model(trainer.model)
        out: dict[str, list] = {"prompt_ids": [], "completion_ids": [], "logprobs": [], "env_mask": [],
                                "env_reward": []}
        for prompt in prompts:
            opening = prompt[-1]["content"]
            env.reset(seed=episodes[opening], opening=opening)
            chat = list(prompt)
            prompt_ids = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True,
                                                       return_dict=False)
            completion: list[int] = []
            logprobs: list[float] = []
            mask: list[int] = []
            done = False
            while not done:
                ids = torch.tensor([prompt_ids + completion])
                with torch.no_grad():
                    gen = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                         do_sample=True, temperature=temperature, output_scores=True,
                                         return_dict_in_generate=True, pad_token_id=tokenizer.pad_token_id)
                new = gen.sequences[0, ids.shape[1]:]
                scores = model.compute_transition_scores(gen.sequences, gen.scores, normalize_logits=True)[0]
                completion += new.tolist()
                logprobs += scores.tolist()
                mask += [1] * len(new)
                text = tokenizer.decode(new, skip_special_tokens=True)
                observation, _, done, _ = env.step(text)
                if done:
                    break
                between = _between_turns(tokenizer, chat, env.messages()[-2]["content"], observation,
                                         ended=bool(len(new)) and int(new[-1]) == tokenizer.eos_token_id)
                chat = env.messages()
                completion += between
                logprobs += [0.0] * len(between)
                mask += [0] * len(between)
            out["prompt_ids"].append(prompt_ids)
            out["completion_ids"].append(completion)
            out["logprobs"].append(logprobs)
            out["env_mask"].append(mask)
            out["env_reward"].append(env.total_reward)
        return out

    return rollout


def _between_turns(tokenizer: Any, chat: list[dict], reply: str, observation: str, ended: bool) -> list[int]:
    """The tokens the chat template puts between the supporter's reply and the next generation: the end of the
    assistant turn (less the end token the model generated itself) and the seeker's message as a user turn."""
    with_reply = tokenizer.apply_chat_template([*chat, {"role": "assistant", "content": reply}], tokenize=False)
    with_answer = tokenizer.apply_chat_template(
        [*chat, {"role": "assistant", "content": reply}, {"role": "user", "content": observation}],
        tokenize=False, add_generation_prompt=True)
    if not with_answer.startswith(with_reply):
        raise ValueError("the chat template is not prefix-preserving, so turns cannot be appended as tokens")
    tail = with_reply[with_reply.rindex(reply) + len(reply):] if reply else ""
    if ended and tokenizer.eos_token and tail.startswith(tokenizer.eos_token):
        tail = tail[len(tokenizer.eos_token):]
    return tokenizer.encode(tail + with_answer[len(with_reply):], add_special_tokens=False)
